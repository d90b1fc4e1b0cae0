"""The Python Nostr relay ``forum bench ingest --versus nostr-relay`` compares the forum with.

nostr-relay 1.14 (the pobblelabs relay: falcon ASGI app under gunicorn with one
uvicorn worker, SQLAlchemy + aiosqlite) is installed into its **own**
virtualenv, made on first use in ``$XDG_CACHE_HOME/mycelium-bench/`` (or
``~/.cache/mycelium-bench/``) and reused afterwards; the project never
depends on it. Each run starts it as a subprocess on a free loopback port,
on a fresh SQLite file in a temporary directory, and kills it afterwards.

What the relay does with an ``["EVENT", ev]`` (read in that virtualenv,
``nostr_relay/web.py`` and ``storage/db.py``): per connection it handles one
message at a time; it checks the event (size, BIP-340 signature with
coincurve in a thread, age, "p" tag count), inserts it in its own
transaction (``INSERT OR IGNORE`` into ``events``; kind 1 with no tags
writes no ``tags`` rows) and sends ``["OK", id, true, ""]`` only after the
commit returned. SQLite runs with the relay's hard-coded pragmas
``journal_mode=wal, synchronous=normal``: a commit survives the relay's
crash, but not a power loss or OS crash (WAL is synced at checkpoints, not
at each commit); the forum's default is ``synchronous=FULL`` (every commit
synced). :data:`CONFIG` is the configuration the bench writes.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

VERSION = "1.14"
REQUIREMENTS = [
    f"nostr-relay=={VERSION}",
    # The rest of its measured path, pinned at the versions the figures in
    # docs/performance.md were taken with (nostr-relay itself pins nothing).
    "aionostr==0.20.0",
    "coincurve==21.0.0",
    "SQLAlchemy==2.1.9",
    "aiosqlite==0.22.1",
    "falcon==4.4.0",
    "gunicorn==27.0.1",
    "uvicorn==0.55.0",
    "websockets==17.4",
    "uvloop==0.23.0",
    "python-rapidjson==1.25",
]
INSTALL_TIMEOUT_S = 600.0
"""Creating the virtualenv and installing ~45 wheels: about a minute here; ten leaves room for a slow mirror."""
START_TIMEOUT_S = 60.0
"""From spawn to a listening socket (its migrations, then gunicorn and its worker): ~3 s here."""

# The relay's shipped config.yaml with what a benchmark needs changed, nothing else:
# no rate_limits key (its NullRateLimiter), no proof-of-work validator (is_pow is not in
# the default list), authentication off, NIP-05 off, its default validators and
# concurrency (num_concurrent_adds 2: "sqlite can only support 1 writer at a time"),
# one gunicorn worker unless asked (its shipped default; with more, each worker is a
# process writing the same SQLite file and a notifier process relays their events), and its per-event INFO log line off ("added <id> from <pubkey>",
# which the forum has no equivalent of; keeping it would cost the relay time).
CONFIG = """\
DEBUG: false
relay_name: forum bench
storage:
  sqlalchemy.url: sqlite+aiosqlite:///{db}
  num_concurrent_reqs: 10
  num_concurrent_adds: 2
  validators:
    - nostr_relay.validators.is_not_too_large
    - nostr_relay.validators.is_signed
    - nostr_relay.validators.is_recent
    - nostr_relay.validators.is_not_hellthread
verification:
  nip05_verification: disabled
  expiration: 2592000
  update_frequency: 3600
gunicorn:
  bind: 127.0.0.1:{port}
  workers: {workers}
  loglevel: warning
  reload: false
authentication:
  enabled: false
message_timeout: 1800
subscription_limit: 32
max_limit: 6000
hellthread_limit: 100
logging:
  version: 1
  formatters:
    simple:
      format: "%(asctime)s %(name)s %(levelname)s %(message)s"
  handlers:
    console:
      class: logging.StreamHandler
      formatter: simple
      stream: ext://sys.stdout
  root:
    level: WARNING
    handlers: [console]
"""


class VersusError(Exception):
    """The relay could not be installed, started or loaded; ``reason`` is machine-readable."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail

    def as_error(self) -> dict[str, str]:
        return {"reason": self.reason, "detail": self.detail}


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mycelium-bench" / f"nostr-relay-{VERSION}"


def _tail(text: str, lines: int = 12) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def ensure_venv(note: Any = print, where: Path | None = None) -> Path:
    """The relay virtualenv's directory, made (venv + pip install) when missing.

    A lock file next to it serializes concurrent runs; ``installed.txt`` (its pip
    freeze) is written last, so its presence means the virtualenv is complete.
    """
    import fcntl

    root = where or cache_dir()
    done = root / "installed.txt"
    if done.exists():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    with (root.parent / f"{root.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists():
            return root
        shutil.rmtree(root, ignore_errors=True)
        note(f"installing nostr-relay {VERSION} into its own virtualenv {root} (once) …")
        base = getattr(sys, "_base_executable", sys.executable)
        py = str(root / "bin" / "python")
        steps = [
            ("venv-failed", [base, "-m", "venv", str(root)]),
            ("relay-install-failed", [py, "-m", "pip", "install", "--disable-pip-version-check", "-q", *REQUIREMENTS]),
            ("relay-install-failed", [py, "-c", "import nostr_relay.web, coincurve"]),
            ("relay-install-failed", [py, "-m", "pip", "freeze", "--disable-pip-version-check"]),
        ]
        r = None
        for reason, cmd in steps:
            try:
                r = subprocess.run(cmd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
            except (OSError, subprocess.TimeoutExpired) as e:
                shutil.rmtree(root, ignore_errors=True)
                raise VersusError(reason, f"{cmd[0]}: {e}") from e
            if r.returncode:
                shutil.rmtree(root, ignore_errors=True)
                raise VersusError(reason, _tail(r.stderr or r.stdout))
        assert r is not None
        done.write_text(r.stdout)
    return root


def installed(root: Path) -> dict[str, str]:
    """Package -> version in the relay's virtualenv (its pip freeze)."""
    out = {}
    for line in (root / "installed.txt").read_text().splitlines():
        name, sep, ver = line.partition("==")
        if sep:
            out[name.lower().replace("_", "-")] = ver
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Relay:
    """nostr-relay serving a fresh SQLite file in ``workdir`` on a free loopback port."""

    def __init__(self, venv: Path, workdir: Path, workers: int = 1) -> None:
        self.venv = venv
        self.workdir = workdir
        self.workers = workers
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / "relay.log"

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def config_text(self) -> str:
        return CONFIG.format(db=self.workdir / "nostr.sqlite3", port=self.port, workers=self.workers)

    def start(self) -> Relay:
        self.port = free_port()
        cfg = self.workdir / "config.yaml"
        cfg.write_text(self.config_text())
        with self.log.open("wb") as log:
            try:
                self.proc = subprocess.Popen(
                    [str(self.venv / "bin" / "nostr-relay"), "-c", str(cfg), "serve"],
                    cwd=self.workdir,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group: gunicorn's worker is stopped with it
                )
            except OSError as e:
                raise VersusError("relay-did-not-start", f"{e} (delete {self.venv} to reinstall)") from e
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.proc.poll() is not None:
                raise VersusError("relay-did-not-start", _tail(self.log.read_text(errors="replace")))
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise VersusError(
                        "relay-did-not-start", f"not listening after {START_TIMEOUT_S:.0f} s"
                    ) from None
                time.sleep(0.1)

    def stop(self) -> None:
        """SIGTERM to the relay's process group (gunicorn and its worker), SIGKILL after 10 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        pgid = self.proc.pid  # start_new_session: the group is the one this object started
        try:
            os.killpg(pgid, signal.SIGTERM)
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            self.proc.wait(10)
        except ProcessLookupError:
            pass

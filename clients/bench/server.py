"""Servers the bench starts itself: ``forum`` on SQLite or on a throwaway PostgreSQL.

Why a copy and not ``tests.support``: ``forum bench`` is part of the installed
``clients`` package, and ``tests/`` is neither installed nor importable from
a wheel. Importing it "when available" would make the command behave
differently in a checkout and in an install. What the bench needs is small
(``initdb`` + ``pg_ctl`` as the ``postgres`` user when run as root, one
``CREATE DATABASE``, stop and delete), so it lives here in ~100 lines; the
test suite keeps its richer fixture (external servers, per-test databases).

The forum runs as ``python -m forum`` in its own process (the load generator
must never share its event loop), configured only through ``FORUM_*``
variables, on port 0; its URL is read from the line it prints.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

_LISTENING = re.compile(r"Mycelium listening on (http://\S+)")

# Settings a bench-started forum runs with unless --server-env says otherwise: the bench is
# one client address publishing as fast as it can, so the abuse limits would measure themselves.
BENCH_SETTINGS = {
    "AUTHOR_RATE": "0",
    "ADDRESS_RATE": "0",
    "MAX_CONNECTIONS_PER_ADDRESS": "0",
    "LOG_LEVEL": "warning",
}

PG_OPTIONS = (
    "-c fsync=on -c synchronous_commit=on -c full_page_writes=on "
    "-c max_connections=200 -c shared_buffers=256MB"
)


class BenchServerError(RuntimeError):
    pass


def raise_fd_limit(want: int = 65536) -> int:
    """Raise this process's open-files soft limit (children inherit it); returns the new limit."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ThrowawayPostgres:
    """initdb in a temporary directory and a private postgres on 127.0.0.1, deleted on stop."""

    def __init__(self, options: str = PG_OPTIONS) -> None:
        self.options = options
        self.tmpdir: Path | None = None
        self.port = 0
        self.bindir = self._find_bindir()

    @staticmethod
    def _find_bindir() -> Path:
        def version(p: str) -> tuple[int, ...]:
            m = re.search(r"/postgresql/([0-9.]+)/bin$", p)
            return tuple(int(x) for x in m.group(1).split(".") if x) if m else (0,)

        candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)
        if which := shutil.which("pg_ctl"):
            candidates.append(str(Path(which).parent))
        for c in candidates:
            if all(os.access(Path(c) / n, os.X_OK) for n in ("initdb", "pg_ctl", "postgres")):
                return Path(c)
        raise BenchServerError(
            "no PostgreSQL server binaries (initdb, pg_ctl) found; install postgresql or use --url"
        )

    def _run(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        if os.geteuid() == 0:  # initdb and pg_ctl refuse to run as root
            argv = [shutil.which("runuser") or "/usr/sbin/runuser", "-u", "postgres", "--", *argv]
        assert self.tmpdir is not None
        out = self.tmpdir / f".cmd-{time.monotonic_ns()}.out"
        with open(out, "w+") as f:  # a file, not a pipe: the postmaster must not hold our pipe
            proc = subprocess.run(
                argv,
                cwd=self.tmpdir,
                stdin=subprocess.DEVNULL,
                stdout=f,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=180,
                check=False,
            )
            f.seek(0)
            text = f.read()
        out.unlink(missing_ok=True)
        return subprocess.CompletedProcess(argv, proc.returncode, text, "")

    @property
    def datadir(self) -> Path:
        assert self.tmpdir is not None
        return self.tmpdir / "data"

    def start(self) -> ThrowawayPostgres:
        self.tmpdir = Path(tempfile.mkdtemp(prefix="forum-bench-pg-"))
        if os.geteuid() == 0:
            import pwd

            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise BenchServerError(
                    "running as root but there is no 'postgres' user to run initdb as"
                ) from None
            os.chown(self.tmpdir, pw.pw_uid, pw.pw_gid)
        r = self._run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.datadir),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-locale",
            ]
        )
        if r.returncode:
            self.stop()
            raise BenchServerError(f"initdb failed:\n{r.stdout}")
        for _ in range(5):
            self.port = _free_port()
            opts = f"-p {self.port} -k {self.tmpdir} -c listen_addresses=127.0.0.1 {self.options}"
            r = self._run(
                [
                    str(self.bindir / "pg_ctl"),
                    "start",
                    "-D",
                    str(self.datadir),
                    "-l",
                    str(self.tmpdir / "postgresql.log"),
                    "-w",
                    "-t",
                    "120",
                    "-o",
                    opts,
                ]
            )
            if r.returncode == 0:
                break
        else:
            self.stop()
            raise BenchServerError(f"pg_ctl start failed:\n{r.stdout}")
        asyncio.run(self._create_database("forum"))
        return self

    async def _create_database(self, name: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(
            f"postgresql://postgres@127.0.0.1:{self.port}/postgres", timeout=30
        )
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/forum"

    @property
    def postmaster_pid(self) -> int | None:
        try:
            return int((self.datadir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError, AssertionError):
            return None

    def settings(self) -> dict[str, str]:
        async def show() -> dict[str, str]:
            import asyncpg

            conn = await asyncpg.connect(
                f"postgresql://postgres@127.0.0.1:{self.port}/postgres", timeout=30
            )
            try:
                out = {}
                for name in (
                    "server_version",
                    "fsync",
                    "synchronous_commit",
                    "wal_level",
                    "shared_buffers",
                    "full_page_writes",
                ):
                    out[name] = str(await conn.fetchval(f"SHOW {name}"))
                return out
            finally:
                await conn.close()

        return asyncio.run(show())

    def stop(self) -> None:
        if self.tmpdir is None:
            return
        if (self.datadir / "postmaster.pid").exists():
            for mode in ("fast", "immediate"):
                if (
                    self._run(
                        [
                            str(self.bindir / "pg_ctl"),
                            "stop",
                            "-D",
                            str(self.datadir),
                            "-m",
                            mode,
                            "-w",
                            "-t",
                            "60",
                        ]
                    ).returncode
                    == 0
                ):
                    break
        shutil.rmtree(self.tmpdir, ignore_errors=True)
        self.tmpdir = None


class BenchServer:
    """``python -m forum`` on SQLite (a temporary data directory) or a throwaway PostgreSQL."""

    def __init__(self, database: str = "sqlite", env: dict[str, str] | None = None) -> None:
        if database not in ("sqlite", "postgres"):
            raise ValueError("database must be sqlite or postgres")
        self.database = database
        self.settings = {
            **BENCH_SETTINGS,
            **{k.upper().removeprefix("FORUM_"): str(v) for k, v in (env or {}).items()},
        }
        self.pg: ThrowawayPostgres | None = None
        self.tmpdir: Path | None = None
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.output: list[str] = []

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1) + "/ws"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> BenchServer:
        raise_fd_limit()
        self.tmpdir = Path(tempfile.mkdtemp(prefix="forum-bench-"))
        env = {k: v for k, v in os.environ.items() if not k.startswith("FORUM_")}
        env["FORUM_DATA_DIR"] = str(self.tmpdir / "data")
        env["FORUM_PORT"] = "0"
        env["FORUM_HOST"] = "127.0.0.1"
        try:
            if self.database == "postgres":
                self.pg = ThrowawayPostgres().start()
                env["FORUM_DATABASE_URL"] = self.pg.url
            env.update({f"FORUM_{k}": v for k, v in self.settings.items()})
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "forum"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            found = threading.Event()

            def pump() -> None:
                assert self.proc is not None and self.proc.stdout is not None
                for line in self.proc.stdout:
                    if len(self.output) < 2000:
                        self.output.append(line)
                    if (m := _LISTENING.search(line)) and not found.is_set():
                        self.url = m.group(1)
                        found.set()
                found.set()

            self._pump = threading.Thread(target=pump, daemon=True)
            self._pump.start()
            if not found.wait(60) or not self.url:
                raise BenchServerError("the forum did not start:\n" + "".join(self.output[-50:]))
        except BaseException:
            self.stop()
            raise
        return self

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "started_by_bench": True,
            "database": self.database,
            "pid": self.pid,
            "settings": {f"FORUM_{k}": v for k, v in sorted(self.settings.items())},
        }
        if self.pg is not None:
            with contextlib.suppress(Exception):
                out["postgresql"] = self.pg.settings()
        return out

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc is not None and self.proc.stdout is not None:
            self._pump.join(5)
            self.proc.stdout.close()
        self.proc = None
        if self.pg is not None:
            self.pg.stop()
            self.pg = None
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None

    def __enter__(self) -> BenchServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

"""Starting a forum process and a throwaway PostgreSQL: the one place demo, bench and tests do it.

:class:`ForumProcess` runs ``python -m forum`` (or the command line's ``forum
serve``) in its own process group, on port 0 unless told otherwise, configured
only through ``FORUM_*`` variables as an operator would (docs/settings.md), and
finds its URL in the line the forum prints once it accepts connections::

    with ForumProcess(data_dir, settings={"author_rate": 0}) as forum:
        client = Client(forum.ws_url)
        ...

:class:`PostgresServer` runs ``initdb`` in a fresh temporary directory and a
private ``postgres`` on a free 127.0.0.1 port with trust authentication (as the
``postgres`` user through ``runuser`` when run as root: initdb and pg_ctl refuse
root), or uses a server you already run, given by URL::

    with PostgresServer() as pg:
        url = pg.create_database("bench")  # postgresql+asyncpg://postgres@127.0.0.1:PORT/bench

Both are tools of the installed ``clients`` package (``forum demo``, ``forum
bench``); the test suite wraps them in thin fixtures. The database drivers are
imported only when a PostgreSQL server is used.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import concurrent.futures
import contextlib
import glob
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

if TYPE_CHECKING:
    import asyncpg
    from sqlalchemy.engine import URL

__all__ = ["LISTENING", "ForumProcess", "LaunchError", "PostgresError", "PostgresServer"]

LISTENING = re.compile(r"Mycelium listening on (http://\S+)")
"""The line ``forum.server`` prints once it accepts connections (``port=0`` resolved)."""

_T = TypeVar("_T")


class LaunchError(RuntimeError):
    """A forum process did not start (its last output lines are in the message)."""


def forum_environment(
    settings: Mapping[str, object], base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """``base`` (default: this process's environment) without its FORUM_* variables, plus ``settings``.

    Setting names may be given as ``author_rate``, ``AUTHOR_RATE`` or ``FORUM_AUTHOR_RATE``.
    """
    env = {k: v for k, v in (os.environ if base is None else base).items()}
    env = {k: v for k, v in env.items() if not k.startswith("FORUM_")}
    for name, value in settings.items():
        env["FORUM_" + name.upper().removeprefix("FORUM_")] = str(value)
    return env


def port_is_free(host: str, port: int) -> bool:
    """Whether ``host:port`` can be bound right now."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that was free a moment ago."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- the forum


class ForumProcess:
    """A forum server in a subprocess of its own process group.

    ``via="module"`` runs ``python -m forum``; ``via="serve"`` runs the command
    line, ``python -m clients serve --host H --port P --data-dir D [--database-url U]``.
    Settings (``FORUM_*`` without the prefix, any case) go through the
    environment; the caller's own FORUM_* variables are not inherited.
    ``LOG_LEVEL`` defaults to ``warning``. The last ``keep_lines`` lines of the
    forum's output are kept in ``output``. ``time_unit`` stretches every wait
    (the tests' scalable timeout unit).

    Once started: ``url``, ``ws_url``, ``port``, ``pid``. ``stop()`` sends
    SIGINT (a graceful shutdown) and falls back to ``kill()``, which sends
    SIGKILL to the whole process group (worker processes too): no shutdown
    code runs. ``start()`` again restarts on the port it had, on the same data.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        database_url: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        settings: Mapping[str, object] | None = None,
        via: Literal["module", "serve"] = "module",
        keep_lines: int = 2000,
        time_unit: float = 1.0,
        cwd: Path | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.database_url = database_url
        self.host = host
        self.port = port
        self.via = via
        self.time_unit = time_unit
        self.cwd = cwd
        self.settings: dict[str, str] = {"LOG_LEVEL": "warning"}
        for name, value in (settings or {}).items():
            self.settings[name.upper().removeprefix("FORUM_")] = str(value)
        self.url = ""
        self.proc: subprocess.Popen[str] | None = None
        self.output: collections.deque[str] = collections.deque(maxlen=keep_lines)
        self._pump: threading.Thread | None = None

    @property
    def env(self) -> dict[str, str]:
        """The environment the forum process gets."""
        settings: dict[str, object] = dict(self.settings)
        if self.via == "module":
            settings.update(DATA_DIR=self.data_dir, HOST=self.host, PORT=self.port)
            if self.database_url:
                settings["DATABASE_URL"] = self.database_url
        return forum_environment(settings)

    @property
    def argv(self) -> list[str]:
        if self.via == "module":
            return [sys.executable, "-m", "forum"]
        argv = [sys.executable, "-m", "clients", "serve", "--host", self.host]
        argv += ["--port", str(self.port), "--data-dir", str(self.data_dir)]
        if self.database_url:
            argv += ["--database-url", self.database_url]
        return argv

    @property
    def ws_url(self) -> str:
        return "ws" + self.url[len("http") :] + "/ws"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self, timeout: float | None = 60.0, *, retry_for: float = 10.0) -> ForumProcess:
        """Start and wait until it listens (``timeout=None``: as long as it runs).

        On a fixed port (a restart), retries for ``retry_for`` seconds while the
        old socket lingers. Raises :class:`LaunchError` with its output if it
        exits or does not listen in time.
        """
        deadline = time.monotonic() + retry_for * self.time_unit
        while True:
            try:
                return self._start_once(timeout)
            except LaunchError:
                if not self.port or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def _start_once(self, timeout: float | None) -> ForumProcess:
        self.output.clear()
        self.url = ""
        self.proc = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=self.cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # Ctrl-C at a terminal reaches the caller, who stops us in order
        )
        found = threading.Event()
        proc = self.proc

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                self.output.append(line)
                if not found.is_set() and (m := LISTENING.search(line)):
                    self.url = m.group(1)
                    found.set()
            found.set()  # it exited (without listening, if url is still empty)

        self._pump = threading.Thread(target=pump, daemon=True, name="forum-output")
        self._pump.start()
        found.wait(None if timeout is None else timeout * self.time_unit)
        if not self.url:
            self.kill()
            raise LaunchError("the forum did not start:\n" + "".join(list(self.output)[-50:]))
        self.port = int(self.url.rsplit(":", 1)[1])
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """SIGINT (a graceful shutdown); SIGKILL to the group if it takes longer than ``timeout``."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout * self.time_unit)
            except subprocess.TimeoutExpired:
                self.kill()
        self._reap()

    def kill(self) -> None:
        """SIGKILL to the whole process group: no shutdown code runs, connections are cut."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10 * self.time_unit)
        self._reap()

    def _reap(self) -> None:
        if self.proc is None:
            return
        if self._pump is not None:
            self._pump.join(5 * self.time_unit)
        # Closing the pipe while the pump still reads it would block on its lock.
        if self.proc.stdout is not None and not (self._pump and self._pump.is_alive()):
            self.proc.stdout.close()

    def get_text(self, path: str, timeout: float = 30.0) -> str:
        with urllib.request.urlopen(self.url + path, timeout=timeout * self.time_unit) as resp:
            return str(resp.read().decode("utf-8"))

    def get_json(self, path: str, timeout: float = 30.0) -> Any:
        return json.loads(self.get_text(path, timeout))

    def __enter__(self) -> ForumProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --------------------------------------------------------------------------- PostgreSQL

SUPERUSER = "postgres"
_DBNAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class PostgresError(RuntimeError):
    """The PostgreSQL server could not be set up."""


def find_bindir() -> Path | None:
    """The directory holding initdb, pg_ctl and postgres, newest version first."""

    def version(path: str) -> tuple[int, ...]:
        m = re.search(r"/postgresql/([0-9.]+)/bin$", path)
        return tuple(int(p) for p in m.group(1).split(".") if p) if m else (0,)

    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)
    if pg_config := shutil.which("pg_config"):
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0:
            candidates.append(out.stdout.strip())
    if initdb := shutil.which("initdb"):
        candidates.append(str(Path(initdb).parent))
    return next((Path(c) for c in candidates if _has_server_binaries(Path(c))), None)


def _has_server_binaries(bindir: Path) -> bool:
    return all(os.access(bindir / name, os.X_OK) for name in ("initdb", "pg_ctl", "postgres"))


def check_dbname(name: str) -> str:
    if not _DBNAME.match(name):
        raise ValueError(f"unsafe database name {name!r} (want [a-z_][a-z0-9_]*, <= 63 chars)")
    return name


class PostgresServer:
    """A throwaway PostgreSQL started here, or a server you run given by ``external_url``.

    Once started: ``url`` (SQLAlchemy ``postgresql+asyncpg://`` URL of database
    ``dbname``, created on start; for an external server, the URL's own
    database), ``dsn`` (plain ``postgresql://`` for asyncpg), ``port``,
    ``startup_seconds``, ``log_path`` (a server started here). ``options`` are
    extra ``postgres`` command-line options (``-c name=value ...``).
    ``hint`` is appended to setup errors (how to get PostgreSQL).
    """

    def __init__(
        self,
        *,
        dbname: str = "mycelium",
        external_url: str | None = None,
        bindir: Path | None = None,
        options: str = "-c fsync=on -c max_connections=300",
        hint: str = "Install PostgreSQL (initdb, pg_ctl) or give the URL of a server you run.",
    ) -> None:
        self.dbname = check_dbname(dbname)
        self.external = external_url is not None
        self.options = options
        self.hint = hint
        self._base: URL | None = None
        if external_url is not None:
            from sqlalchemy.engine import make_url

            parsed = make_url(external_url)
            if not parsed.drivername.startswith("postgresql"):
                raise PostgresError(f"not a postgresql:// URL: {external_url!r}")
            self._base = parsed.set(drivername="postgresql+asyncpg")
        if bindir is not None and not _has_server_binaries(bindir):
            raise PostgresError(f"{bindir} has no initdb, pg_ctl and postgres")
        self.bindir = bindir
        self.tmpdir: Path | None = None
        self.port: int | None = None
        self.startup_seconds: float | None = None
        self._admin_db = "postgres"
        self._started = False

    # -- URLs -------------------------------------------------------------

    def url_for(self, dbname: str) -> str:
        """SQLAlchemy URL (``postgresql+asyncpg://``) of database ``dbname``."""
        if self._base is None:
            raise PostgresError("PostgresServer is not started")
        return self._base.set(database=dbname).render_as_string(hide_password=False)

    def dsn_for(self, dbname: str) -> str:
        """libpq/asyncpg DSN (``postgresql://``) of database ``dbname``."""
        return self.url_for(dbname).replace("postgresql+asyncpg://", "postgresql://", 1)

    @property
    def url(self) -> str:
        return self.url_for(self.dbname)

    @property
    def dsn(self) -> str:
        return self.dsn_for(self.dbname)

    @property
    def log_path(self) -> Path | None:
        return self.tmpdir / "postgresql.log" if self.tmpdir else None

    def log_text(self, tail: int = 200) -> str:
        path = self.log_path
        if path is None or not path.exists():
            return "(no server log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-tail:])

    @property
    def postmaster_pid(self) -> int | None:
        """The server's main process (a server started here), for resource figures."""
        if self.tmpdir is None:
            return None
        try:
            return int((self.tmpdir / "data" / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    # -- lifecycle --------------------------------------------------------

    def start(self) -> PostgresServer:
        if self._started:
            return self
        began = time.monotonic()
        if self.external:
            assert self._base is not None
            self._admin_db = self._base.database or "postgres"
            self.port = self._base.port or 5432
            try:
                self.fetchval("SELECT 1", dbname=self._admin_db)
            except Exception as exc:
                raise PostgresError(
                    f"cannot connect to {self._base.render_as_string()}: {exc!r}"
                ) from exc
            if self._base.database is None:
                self._base = self._base.set(database=self._admin_db)
            self.dbname = self._admin_db  # `url` is the operator's own database
        else:
            self._start_local()
            atexit.register(self.stop)
        self._started = True
        try:
            self.create_database(self.dbname, exist_ok=True)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        return self

    def stop(self) -> None:
        """Stop a server started here (fast, else immediate shutdown) and delete its directory."""
        self._started = False
        if self.external or self.tmpdir is None:
            return
        tmpdir, datadir = self.tmpdir, self.tmpdir / "data"
        if (datadir / "postmaster.pid").exists():
            for mode in ("fast", "immediate"):
                pg_ctl = [str(self._bindir() / "pg_ctl"), "stop", "-D", str(datadir)]
                if self._pg_run([*pg_ctl, "-m", mode, "-w", "-t", "60"], tmpdir).returncode == 0:
                    break
        self.tmpdir = None
        shutil.rmtree(tmpdir, ignore_errors=True)
        atexit.unregister(self.stop)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- databases --------------------------------------------------------

    def create_database(self, name: str, *, exist_ok: bool = False) -> str:
        """Create database ``name`` (owned by the server's user); return its URL."""
        check_dbname(name)

        async def create() -> None:
            conn = await self._connect(self._admin_db)
            try:
                if exist_ok and await conn.fetchval(
                    "SELECT 1 FROM pg_database WHERE datname = $1", name
                ):
                    return
                await conn.execute(f'CREATE DATABASE "{name}"')
            finally:
                await conn.close()

        self._run_async(create)
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name``, disconnecting any sessions still using it."""
        check_dbname(name)

        async def drop() -> None:
            conn = await self._connect(self._admin_db)
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await conn.close()

        self._run_async(drop)

    def fetchval(self, query: str, *args: Any, dbname: str | None = None) -> Any:
        """Run one query synchronously and return the first column of the first row."""

        async def one() -> Any:
            conn = await self._connect(dbname or self.dbname)
            try:
                return await conn.fetchval(query, *args)
            finally:
                await conn.close()

        return self._run_async(one)

    def settings(self) -> dict[str, str]:
        """The server settings that shape write figures (for benchmark reports)."""
        names = "server_version fsync synchronous_commit wal_level shared_buffers full_page_writes"
        return {n: str(self.fetchval(f"SHOW {n}", dbname=self._admin_db)) for n in names.split()}

    # -- internals --------------------------------------------------------

    async def _connect(self, dbname: str) -> asyncpg.Connection:
        import asyncpg

        return await asyncpg.connect(self.dsn_for(dbname), timeout=30)

    @staticmethod
    def _run_async(fn: Callable[[], Awaitable[_T]]) -> _T:
        # A private thread gets its own event loop, so these helpers work from synchronous
        # code called inside a running loop (pytest-asyncio's, a benchmark's) too.
        async def main() -> _T:
            return await fn()

        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="pg-admin") as pool:
            return pool.submit(lambda: asyncio.run(main())).result()

    def _bindir(self) -> Path:
        if self.bindir is None:
            self.bindir = find_bindir()
        if self.bindir is None:
            raise PostgresError(
                "No PostgreSQL server binaries (initdb, pg_ctl) found in "
                "/usr/lib/postgresql/*/bin, `pg_config --bindir` or PATH. " + self.hint
            )
        return self.bindir

    @staticmethod
    def _pg_run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
        """Run a server command, as the postgres user when we are root."""
        if os.geteuid() == 0:
            argv = [shutil.which("runuser") or "/usr/sbin/runuser", "-u", SUPERUSER, "--", *argv]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        # Output goes to a file, not a pipe: the forked postmaster must not
        # hold our pipe open (subprocess would wait for it forever).
        out_path = cwd / f".command-{os.getpid()}-{time.monotonic_ns()}.out"
        with open(out_path, "w+") as out:
            proc = subprocess.run(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=180,
                check=False,
            )
            out.seek(0)
            output = out.read()
        out_path.unlink(missing_ok=True)
        return subprocess.CompletedProcess(argv, proc.returncode, output, "")

    def _fail(self, what: str, result: subprocess.CompletedProcess[str]) -> PostgresError:
        return PostgresError(
            f"{what} failed (exit {result.returncode}): {shlex.join(result.args)}\n"
            f"--- output ---\n{result.stdout.strip()}\n"
            f"--- server log ({self.log_path}) ---\n{self.log_text()}"
        )

    def _start_local(self) -> None:
        from sqlalchemy.engine import URL

        bindir = self._bindir()
        tmpdir = Path(tempfile.mkdtemp(prefix="mycelium-pg-"))
        self.tmpdir = tmpdir
        try:
            if os.geteuid() == 0:
                import pwd

                try:
                    pw = pwd.getpwnam(SUPERUSER)
                except KeyError:
                    raise PostgresError(
                        "Running as root, but there is no 'postgres' user to run initdb "
                        "and pg_ctl as (Debian's postgresql package creates it). " + self.hint
                    ) from None
                os.chown(tmpdir, pw.pw_uid, pw.pw_gid)
            datadir = tmpdir / "data"
            locale = ["--locale=C.UTF-8"] if _has_c_utf8() else ["--no-locale"]
            initdb = [
                str(bindir / "initdb"), "-D", str(datadir), "-A", "trust", "-U", SUPERUSER,
                "--no-sync", "-E", "UTF8", *locale,
            ]  # fmt: skip
            result = self._pg_run(initdb, tmpdir)
            if result.returncode != 0:
                raise self._fail("initdb", result)
            for _attempt in range(5):
                self.port = free_port()
                options = f"-p {self.port} -k {tmpdir} -c listen_addresses=127.0.0.1 {self.options}"
                pg_ctl = [
                    str(bindir / "pg_ctl"), "start", "-D", str(datadir), "-l", str(self.log_path),
                    "-w", "-t", "120", "-o", options,
                ]  # fmt: skip
                result = self._pg_run(pg_ctl, tmpdir)
                if result.returncode == 0:
                    break
                if "already in use" not in self.log_text(20):
                    raise self._fail("pg_ctl start", result)
            else:
                raise self._fail("pg_ctl start (no free port after 5 tries)", result)
            self._base = URL.create(
                "postgresql+asyncpg", username=SUPERUSER, host="127.0.0.1", port=self.port
            )
        except BaseException:
            self.stop()
            raise


def _has_c_utf8() -> bool:
    return any(os.path.isdir(f"/usr/lib/locale/{name}") for name in ("C.utf8", "C.UTF-8"))

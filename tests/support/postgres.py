"""A throwaway PostgreSQL server for the test suite.

``PostgresServer`` runs ``initdb`` in a fresh temporary directory and starts a
private ``postgres`` on a free 127.0.0.1 port with trust authentication, so
tests need no system service, password or configuration::

    server = PostgresServer.from_environment().start()
    try:
        server.create_database("t_example")
        url = server.url_for("t_example")   # postgresql+asyncpg://postgres@127.0.0.1:PORT/t_example
        ...
        server.drop_database("t_example")
    finally:
        server.stop()

initdb and pg_ctl refuse to run as root; when the tests run as root the
server runs as the ``postgres`` user (created by Debian's packages) through
``runuser``.  As any other user they run directly.

Environment:

``MYCELIUM_TEST_POSTGRES_URL``
    Use a server you already run instead of starting one, e.g.
    ``postgresql://me:secret@localhost:5432/postgres``.  Its user needs
    CREATEDB: tests create and drop their own databases there.
``MYCELIUM_TEST_POSTGRES_BINDIR``
    Directory with ``initdb``/``pg_ctl`` when auto-detection does not find it.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import glob
import os
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from sqlalchemy.engine import URL, make_url

URL_ENV = "MYCELIUM_TEST_POSTGRES_URL"
BINDIR_ENV = "MYCELIUM_TEST_POSTGRES_BINDIR"
SUPERUSER = "postgres"
DEFAULT_DBNAME = "mycelium"

_DBNAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_T = TypeVar("_T")


class PostgresError(RuntimeError):
    """The test PostgreSQL server could not be set up."""


HINT = (
    "Run the suite with scripts/test (it installs PostgreSQL), set "
    f"{URL_ENV} to a server you run, or deselect these tests with -m 'not postgres'."
)


def find_bindir() -> Path | None:
    """The directory holding initdb and pg_ctl, newest version first."""
    env = os.environ.get(BINDIR_ENV)
    if env:
        if not _has_server_binaries(Path(env)):
            raise PostgresError(f"{BINDIR_ENV}={env} has no initdb, pg_ctl and postgres")
        return Path(env)

    def version(path: str) -> tuple[int, ...]:
        m = re.search(r"/postgresql/([0-9.]+)/bin$", path)
        return tuple(int(p) for p in m.group(1).split(".") if p) if m else (0,)

    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True):
        if _has_server_binaries(Path(candidate)):
            return Path(candidate)
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0 and _has_server_binaries(Path(out.stdout.strip())):
            return Path(out.stdout.strip())
    initdb = shutil.which("initdb")
    if initdb and _has_server_binaries(Path(initdb).parent):
        return Path(initdb).parent
    return None


def _has_server_binaries(bindir: Path) -> bool:
    return all(os.access(bindir / name, os.X_OK) for name in ("initdb", "pg_ctl", "postgres"))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def check_dbname(name: str) -> str:
    if not _DBNAME_RE.match(name):
        raise ValueError(f"unsafe database name {name!r} (want [a-z_][a-z0-9_]*, <= 63 chars)")
    return name


class PostgresServer:
    """A PostgreSQL server for tests: started here, or given by ``MYCELIUM_TEST_POSTGRES_URL``.

    Attributes once started: ``url`` (SQLAlchemy asyncpg URL of the ``mycelium``
    database it creates; for an external server, the URL's own database), ``dsn`` (plain ``postgresql://`` form for ``asyncpg.connect``),
    ``port``, ``startup_seconds``; ``log_path`` for a server started here.
    """

    def __init__(
        self,
        *,
        dbname: str = DEFAULT_DBNAME,
        external_url: str | None = None,
        bindir: Path | None = None,
    ) -> None:
        self.dbname = check_dbname(dbname)
        self.external = external_url is not None
        self._base: URL | None = None
        if external_url is not None:
            parsed = make_url(external_url)
            if not parsed.drivername.startswith("postgresql"):
                raise PostgresError(f"{URL_ENV} is not a postgresql:// URL: {external_url!r}")
            self._base = parsed.set(drivername="postgresql+asyncpg")
        self.bindir = bindir
        self.tmpdir: Path | None = None
        self.port: int | None = None
        self.startup_seconds: float | None = None
        self._admin_db = "postgres"
        self._started = False

    @classmethod
    def from_environment(cls) -> PostgresServer:
        return cls(external_url=os.environ.get(URL_ENV) or None)

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
        lines = path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-tail:])

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
                self._run_async(lambda: self._fetchval("SELECT 1", self._admin_db))
            except Exception as exc:
                raise PostgresError(
                    f"cannot connect to {URL_ENV}={self._base.render_as_string()}: {exc!r}"
                ) from exc
            if self._base.database is None:
                self._base = self._base.set(database=self._admin_db)
            self.dbname = self._admin_db  # `url` is the developer's own database
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
        """Stop a server started here (fast shutdown) and delete its directory."""
        self._started = False
        if self.external or self.tmpdir is None:
            return
        tmpdir, self.tmpdir = self.tmpdir, None
        datadir = tmpdir / "data"
        if (datadir / "postmaster.pid").exists():
            for mode in ("fast", "immediate"):
                result = self._pg_run(
                    [
                        str(self._bindir() / "pg_ctl"),
                        "stop",
                        "-D",
                        str(datadir),
                        "-m",
                        mode,
                        "-w",
                        "-t",
                        "60",
                    ],
                    cwd=tmpdir,
                )
                if result.returncode == 0:
                    break
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
        return self._run_async(lambda: self._fetchval(query, dbname or self.dbname, *args))

    # -- internals --------------------------------------------------------

    async def _connect(self, dbname: str) -> asyncpg.Connection:
        return await asyncpg.connect(self.dsn_for(dbname), timeout=30)

    async def _fetchval(self, query: str, dbname: str, *args: Any) -> Any:
        conn = await self._connect(dbname)
        try:
            return await conn.fetchval(query, *args)
        finally:
            await conn.close()

    @staticmethod
    def _run_async(fn: Callable[[], Awaitable[_T]]) -> _T:
        # A private thread gets its own event loop, so these helpers work from
        # sync fixtures without touching the loop pytest-asyncio manages.
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
                "/usr/lib/postgresql/*/bin, `pg_config --bindir` or PATH. " + HINT
            )
        return self.bindir

    def _pg_run(self, argv: list[str], *, cwd: Path) -> subprocess.CompletedProcess[str]:
        """Run a server command as the postgres user when we are root."""
        if os.geteuid() == 0:
            runuser = shutil.which("runuser") or "/usr/sbin/runuser"
            argv = [runuser, "-u", SUPERUSER, "--", *argv]
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
                        "and pg_ctl as (Debian's postgresql package creates it). " + HINT
                    ) from None
                os.chown(tmpdir, pw.pw_uid, pw.pw_gid)
            datadir = tmpdir / "data"
            locale = ["--locale=C.UTF-8"] if _has_c_utf8() else ["--no-locale"]
            initdb = [
                str(bindir / "initdb"), "-D", str(datadir), "-A", "trust", "-U", SUPERUSER,
                "--no-sync", "-E", "UTF8", *locale,
            ]  # fmt: skip
            result = self._pg_run(initdb, cwd=tmpdir)
            if result.returncode != 0:
                raise self._fail("initdb", result)

            for _attempt in range(5):
                self.port = free_port()
                options = (
                    f"-p {self.port} -k {tmpdir} -c listen_addresses=127.0.0.1 "
                    "-c fsync=on -c max_connections=300"
                )
                pg_ctl = [
                    str(bindir / "pg_ctl"), "start", "-D", str(datadir), "-l", str(self.log_path),
                    "-w", "-t", "120", "-o", options,
                ]  # fmt: skip
                result = self._pg_run(pg_ctl, cwd=tmpdir)
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

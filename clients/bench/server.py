"""Servers the bench starts itself: ``forum`` on SQLite or on a throwaway PostgreSQL.

Both come from :mod:`clients.launch`: the forum runs as ``python -m forum`` in
its own process (the load generator must never share its event loop),
configured only through ``FORUM_*`` variables, on port 0; its URL is read from
the line it prints.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path
from typing import Any

from clients.launch import ForumProcess, LaunchError, PostgresError, PostgresServer

# Settings a bench-started forum runs with unless --server-env says otherwise: the bench is
# one client address publishing as fast as it can, so the abuse limits would measure themselves.
BENCH_SETTINGS = {
    "AUTHOR_RATE": "0",
    "ADDRESS_RATE": "0",
    "ADDRESS_READ_RATE": "0",
    "CONNECTION_FRAME_RATE": "0",
    "ADDRESS_UPGRADE_RATE": "0",
    "CONNECTION_BYTE_RATE": "0",
    "MAX_CONNECTIONS_PER_ADDRESS": "0",
    # fan-out: 2,000 subscribers from one address would otherwise hit the address's SUBSCRIBE
    # bucket (burst 400) and its shared 64 MiB of queued frames (one backlogged second at 100/s)
    "ADDRESS_SUBSCRIBE_RATE": "0",
    "ADDRESS_QUEUE_BYTES": "0",
    "LOG_LEVEL": "warning",
}

PG_HINT = "install postgresql or use --url"
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


SERVER_PACKAGES = ("forum", "feeds", "raters")


def compile_bytecode() -> bool:
    """Compile the server's packages to bytecode where it is missing or stale (True: compiled).

    A forum installed from a wheel has its bytecode written at install; a source checkout
    writes it on the first start, unless ``PYTHONDONTWRITEBYTECODE`` is set (as in this
    project's agent sessions), in which case every start compiles ~100 modules again:
    0.2-0.3 s of CPU that ``forum bench scale``'s restart time would count.
    """
    import compileall
    import importlib.util

    ok = True
    for name in SERVER_PACKAGES:
        spec = importlib.util.find_spec(name)
        for folder in (spec.submodule_search_locations or []) if spec else []:
            ok = bool(compileall.compile_dir(folder, quiet=1)) and ok
    return ok


class BenchServer:
    """``python -m forum`` on SQLite (a temporary data directory) or a throwaway PostgreSQL."""

    def __init__(
        self,
        database: str = "sqlite",
        env: dict[str, str] | None = None,
        *,
        base: dict[str, str] | None = None,
        seed: Path | None = None,
        data_dir: Path | None = None,
    ) -> None:
        """``base``: the settings under ``env`` (default :data:`BENCH_SETTINGS`; ``{}``: the forum's own defaults);
        ``seed``: a prepared data directory (:mod:`clients.bench.scaledata`, SQLite) whose database is
        copied into the temporary one before the forum starts; ``data_dir`` (SQLite only, not with
        ``seed``): the forum's data directory, created when missing and kept after ``stop()`` (a
        filled log reused by the next run); default: a temporary one."""
        if data_dir is not None and (database != "sqlite" or seed is not None):
            raise ValueError("a kept data directory is for SQLite only, without a seed")
        self.seed = seed
        self.seed_copy_s: float | None = None
        if database not in ("sqlite", "postgres"):
            raise ValueError("database must be sqlite or postgres")
        self.database = database
        self.settings = {
            **(BENCH_SETTINGS if base is None else base),
            **{k.upper().removeprefix("FORUM_"): str(v) for k, v in (env or {}).items()},
        }
        self.pg: PostgresServer | None = None
        self.tmpdir: Path | None = None
        self.forum: ForumProcess | None = None
        self.data_dir = data_dir

    @property
    def url(self) -> str:
        return self.forum.url if self.forum else ""

    @property
    def ws_url(self) -> str:
        return self.forum.ws_url if self.forum else ""

    @property
    def pid(self) -> int | None:
        return self.forum.pid if self.forum else None

    @property
    def output(self) -> list[str]:
        return list(self.forum.output) if self.forum else []

    def start(self) -> BenchServer:
        raise_fd_limit()
        data = self.data_dir
        if data is None:
            self.tmpdir = Path(tempfile.mkdtemp(prefix="forum-bench-"))
            data = self.tmpdir / "data"
        try:
            database_url = None
            if self.seed is not None:
                from clients.bench.scaledata import seed_copy

                self.seed_copy_s = round(seed_copy(self.seed, data), 1)
            if self.database == "postgres":
                self.pg = PostgresServer(dbname="forum", options=PG_OPTIONS, hint=PG_HINT).start()
                database_url = self.pg.url
            self.forum = ForumProcess(data, database_url=database_url, settings=self.settings)
            self.forum.start(60.0)
        except (LaunchError, PostgresError) as e:
            self.stop()
            raise BenchServerError(str(e)) from None
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
        if self.seed is not None:
            out["seed"] = {"data_dir": str(self.seed), "copy_s": self.seed_copy_s}
        if self.pg is not None:
            with contextlib.suppress(Exception):
                out["postgresql"] = self.pg.settings()
        return out

    def stop(self) -> None:
        if self.forum is not None:
            self.forum.stop(20.0)
            self.forum = None
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

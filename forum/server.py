"""Run the forum under uvicorn: ``forum serve``."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import socket
import sys
from typing import Any

import structlog
import uvicorn
from starlette.applications import Starlette
from uvicorn.importer import import_from_string
from uvicorn.supervisors import Multiprocess

from forum.db import create_engine, migrate
from forum.settings import Settings

APP = "feeds.site:create_app"
"""The app ``forum serve`` and ``python -m forum`` serve, named (``module:factory``) so that
the forum core never imports the public web: ``factory(settings)`` returns the forum's app
(:func:`forum.app.create_app`) with the public web of ``feeds/`` as its site."""


def full_app(settings: Settings | None = None) -> Starlette:
    """The app :data:`APP` names, built for ``settings`` (from FORUM_* variables if None)."""
    factory = import_from_string(APP)
    app: Starlette = factory(settings)
    return app


class _Server(uvicorn.Server):
    """Prints the URL once the socket accepts connections (also for port 0)."""

    def __init__(self, config: uvicorn.Config, sock: socket.socket, settings: Settings) -> None:
        super().__init__(config)
        self.sock = sock
        self.settings = settings

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        _print_url(self.sock)


class _Workers(Multiprocess):
    """uvicorn's process supervisor, printing the URL once every worker is ready."""

    def __init__(self, config: uvicorn.Config, sock: socket.socket) -> None:
        super().__init__(config, sockets=[sock])
        self.sock = sock

    def init_processes(self) -> None:
        super().init_processes()
        for p in self.processes:
            if not p.wait_until_ready(60, self.should_exit):
                raise SystemExit("a forum worker did not start")
        _print_url(self.sock)


def _print_url(sock: socket.socket) -> None:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"Mycelium listening on http://{shown}:{port}", flush=True)


def _export(settings: Settings) -> None:
    """Worker processes build their Settings from the environment: put every explicit value there."""
    for name in settings.model_fields_set:
        value = getattr(settings, name)
        if value is not None:
            os.environ[f"FORUM_{name.upper()}"] = str(value)


GC_THRESHOLDS = (100_000, 50, 1000)
"""Queued frames are small tuples the collector tracks; with Python's default
thresholds (700, 10, 10) a fan-out to 2,000 subscribers spent a quarter of its
time in collections (docs/performance.md). Startup objects are frozen too."""


def tune_gc() -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def create_worker_app() -> Starlette:
    """The app factory each worker process runs (settings from FORUM_* variables)."""
    tune_gc()
    return full_app()


async def _migrate(settings: Settings) -> None:
    engine = create_engine(settings.resolved_database_url, sqlite_synchronous=settings.sqlite_synchronous)
    try:
        await migrate(engine)
    finally:
        await engine.dispose()


def configure_logging(level: str) -> None:
    lvl = getattr(logging, level.upper(), logging.INFO)
    logging.basicConfig(level=lvl, format="%(message)s", stream=sys.stderr)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(lvl))


def run(settings: Settings) -> None:
    """Serve until interrupted. Binds the socket first so port 0 works."""
    configure_logging(settings.log_level)
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio turns Nagle off only on sockets that name it,
    # and with Nagle on, replies of a few KiB waited 40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.host, settings.port))
    sock.listen(2048)
    sock.set_inheritable(True)
    common: dict[str, Any] = dict(
        log_level=settings.log_level,
        ws_max_size=settings.max_frame_bytes * 4,
        ws_per_message_deflate=False,
        ws="forum.wsguard:GuardedWebSocketProtocol",  # corked writes (one per loop pass), sliced parsing and a frame/byte budget per connection
        ws_ping_interval=20.0,
        ws_ping_timeout=60.0,
        access_log=False,
        http="forum.httpguard:GuardedH11Protocol",  # per-address cap and header timeout (config.forum_guard)
        h11_max_incomplete_event_size=16 * 1024,  # request line and headers: at most 16 KiB
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    guard = (
        settings.max_http_connections_per_address,
        settings.http_header_timeout_s,
        settings.address_upgrade_rate,
        settings.address_upgrade_burst,
    )
    ws_budget = (
        settings.connection_frame_rate,
        float(settings.connection_frame_burst),
        settings.connection_byte_rate,
        float(settings.connection_byte_burst),
    )
    if settings.workers > 1:
        # Migrate once before the workers start (SQLite has no lock that would serialize theirs).
        asyncio.run(_migrate(settings))
        _export(settings)
        config = uvicorn.Config("forum.server:create_worker_app", factory=True, workers=settings.workers, **common)
        config.forum_guard = guard  # type: ignore[attr-defined]
        config.forum_ws_budget = ws_budget  # type: ignore[attr-defined]
        _Workers(config, sock).run()
        return
    config = uvicorn.Config(full_app(settings), **common)
    config.forum_guard = guard  # type: ignore[attr-defined]
    config.forum_ws_budget = ws_budget  # type: ignore[attr-defined]
    tune_gc()
    _Server(config, sock, settings).run(sockets=[sock])

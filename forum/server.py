"""Run the forum under uvicorn: ``forum serve``."""

from __future__ import annotations

import logging
import socket
import sys

import structlog
import uvicorn

from forum.app import create_app
from forum.settings import Settings


class _Server(uvicorn.Server):
    """Prints the URL once the socket accepts connections (also for port 0)."""

    def __init__(self, config: uvicorn.Config, sock: socket.socket, settings: Settings) -> None:
        super().__init__(config)
        self.sock = sock
        self.settings = settings

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        host, port = self.sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        print(f"Mycelium listening on http://{shown}:{port}", flush=True)


def configure_logging(level: str) -> None:
    lvl = getattr(logging, level.upper(), logging.INFO)
    logging.basicConfig(level=lvl, format="%(message)s", stream=sys.stderr)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(lvl))


def run(settings: Settings) -> None:
    """Serve until interrupted. Binds the socket first so port 0 works."""
    configure_logging(settings.log_level)
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.host, settings.port))
    sock.listen(2048)
    sock.set_inheritable(True)
    config = uvicorn.Config(
        create_app(settings),
        log_level=settings.log_level,
        ws_max_size=settings.max_frame_bytes * 4,
        ws_per_message_deflate=False,  # compression costs more CPU than the bytes it saves here
        ws_ping_interval=20.0,
        ws_ping_timeout=60.0,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    _Server(config, sock, settings).run(sockets=[sock])

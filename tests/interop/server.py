"""A real forum in a subprocess for the interoperability tests.

The server is started exactly as an operator would (``python -m forum``,
configured by FORUM_* variables, ``port=0``) through :mod:`clients.launch`, and
found through the line it prints once it accepts connections:
``Mycelium listening on http://HOST:PORT``. The tests talk to it only over the
network, through tests/interop/minimal_client.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clients.launch import ForumProcess
from tests.support.timeouts import UNIT

Server = ForumProcess


def start_server(data_dir: Path, **settings: Any) -> Server:
    """A started forum on SQLite in ``data_dir`` with ``settings`` (FORUM_* names, any case)."""
    return ForumProcess(data_dir, settings=settings, time_unit=UNIT).start(30.0)


def stop_server(server: Server) -> None:
    server.stop()

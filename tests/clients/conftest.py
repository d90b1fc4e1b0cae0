"""Fixtures for the client tests: a real forum started with ``forum serve`` (our CLI) on port 0.

``forum_serve`` yields a :class:`ServeProcess`: ``url``/``ws_url`` once it
listens, ``kill()`` (SIGKILL), ``stop()`` (SIGINT) and ``start()`` again on
the same port and database, so tests can restart the server under a client.
Rate limits are off (through FORUM_* variables, as an operator would set them).

``tamper_event`` changes a stored event in a forum's SQLite database behind its
back, as an attacker holding the database could: the forum then serves a forged
or unreadable event, which is how the client tests meet those for real.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from clients import launch
from tests.support.timeouts import UNIT, timeout


def tamper_event(database: Path, event_id: str, column: str, value: str) -> None:
    """Overwrite the stored ``payload`` or ``sig`` of one event in a forum's SQLite database."""
    if column not in ("payload", "sig"):
        raise ValueError(f"not a column to tamper with: {column!r}")
    with contextlib.closing(sqlite3.connect(database, timeout=timeout(10))) as db, db:
        changed = db.execute(f"UPDATE events SET {column} = ? WHERE id = ?", (value, event_id))
        if changed.rowcount != 1:
            raise LookupError(f"no stored event {event_id}")


class ServeProcess(launch.ForumProcess):
    """``python -m clients serve --host 127.0.0.1 --port P --data-dir D [--database-url U]``."""

    def __init__(self, data_dir: Path, database_url: str | None = None) -> None:
        super().__init__(
            data_dir,
            database_url=database_url,
            settings={"author_rate": 0, "address_rate": 0},
            via="serve",
            time_unit=UNIT,
        )

    def start(self, timeout: float | None = 30.0, *, retry_for: float = 20.0) -> ServeProcess:
        """Start (again, on the same port once one was picked); returns when it listens."""
        super().start(timeout, retry_for=retry_for)
        return self


@pytest.fixture
def forum_serve(tmp_path: Path) -> Iterator[ServeProcess]:
    """A started forum on SQLite in ``tmp_path``, killed after the test."""
    server = ServeProcess(tmp_path / "forum").start()
    try:
        yield server
    finally:
        server.kill()

"""Learn of other processes' commits on SQLite and tell the hub.

Several forum processes may share one SQLite file (``FORUM_WORKERS`` > 1, or
processes started separately on the same data directory). SQLite has no
LISTEN/NOTIFY, so every process watches the log's head itself:

* every ``sqlite_poll_ms`` it ``stat``s the write-ahead log (``forum.db-wal``),
  a system call of a few microseconds on the event loop; every commit
  appends to that file, so its size or modification time changes;
* when it changed (and at least once a second regardless, in case a
  checkpoint restarted the file at the same size within the same clock tick),
  it reads ``max(seq)`` and advances the hub to it. The hub reads the events
  it has not delivered from the database, in seq order.

Writers serialize on SQLite's write lock and assign seqs under it, so commit
order equals seq order and a head of N means every seq up to N is committed.
A subscriber of any process therefore gets every event once, in order, at
most about one poll interval after its commit (its own process's commits: at
once).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path

import structlog

from forum.hub import Hub
from forum.store import Store

log = structlog.get_logger("forum.sqlitewatch")


def sqlite_path(url: str) -> Path | None:
    """The database file of a ``sqlite+aiosqlite:///PATH`` URL (None for in-memory)."""
    path = url.split("///", 1)[-1] if "///" in url else ""
    return Path(path) if path and path != ":memory:" else None


class HeadWatcher:
    def __init__(self, db_file: Path, store: Store, hub: Hub, interval_s: float) -> None:
        self.wal = Path(f"{db_file}-wal")
        self.store = store
        self.hub = hub
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="sqlite-watch")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _signature(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.wal)
        except FileNotFoundError:
            return None
        return (st.st_size, st.st_mtime_ns)

    async def _run(self) -> None:
        last_sig = self._signature()
        last_read = time.monotonic()
        while True:
            await asyncio.sleep(self.interval_s)
            sig = self._signature()
            now = time.monotonic()
            if sig == last_sig and now - last_read < 1.0:
                continue
            last_sig, last_read = sig, now
            try:
                head = await self.store.head()
            except Exception as e:  # a busy or briefly unavailable file: try again next tick
                log.warning("could not read the log head", error=str(e))
                continue
            if head > self.hub.head:
                self.hub.committed(self.hub.head + 1, head)

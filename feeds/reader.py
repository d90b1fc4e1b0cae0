"""One database round trip per page: page queries are plain synchronous functions.

A page gathers what it shows with a handful of small indexed queries. Run one
by one through the async drivers, each costs several hand-offs between the
event loop and the driver (aiosqlite runs every cursor call in its own thread),
and on a busy machine those hand-offs, not the queries, dominate a page's
latency. So page queries in :mod:`feeds.queries` take a synchronous
:class:`sqlalchemy.engine.Connection`, and :class:`Reader` runs a whole batch
of them at once:

* **SQLite**: in a worker thread, on read-only connections of its own to the
  same database file (WAL lets readers run beside the single writer), kept in a
  small pool that is disposed of when the forum's store goes away; they read
  the file memory-mapped (:data:`MMAP_BYTES`).
* **PostgreSQL**: on a connection of the forum's async engine through
  ``AsyncConnection.run_sync`` (asyncpg; no threads involved), in autocommit
  mode: a page only reads, and each statement sees the log as committed when
  it starts either way (PostgreSQL's default isolation, read committed, takes a
  snapshot per statement), so the ``BEGIN`` and ``ROLLBACK`` round trips of a
  transaction around the page's queries bought nothing.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import anyio.to_thread
from sqlalchemy import create_engine
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Connection, Engine
from starlette.requests import Request

T = TypeVar("T")

MMAP_BYTES = 1 << 30
"""Page reads map up to this much of the database file instead of copying each page in with a
system call (address space, not memory: the pages are the operating system's file cache, shared
by every connection). At 1,000,000 events a common word's search (about 500 matches, each
joined to its event) took 5.0 ms with reads, 2.9 ms mapped."""


class Reader:
    def __init__(self, store: Any) -> None:
        self.store = store
        self.sync_engine: Engine | None = None
        url = store.engine.url
        if url.get_backend_name() == "sqlite":
            self.sync_engine = create_engine(
                url.set(drivername="sqlite"),
                pool_size=8,
                max_overflow=32,
                connect_args={"check_same_thread": False},  # one thread at a time, handed over by the pool
            )
            weakref.finalize(store, self.sync_engine.dispose)

            @sa_event.listens_for(self.sync_engine, "connect")
            def _pragmas(dbapi_conn: Any, _record: Any) -> None:
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA busy_timeout=10000")
                cur.execute("PRAGMA query_only=1")
                cur.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
                cur.close()

    async def run(self, fn: Callable[[Connection], T]) -> T:
        """``fn(connection)``, with every query it makes, in one trip."""
        if self.sync_engine is not None:
            return await anyio.to_thread.run_sync(self._in_thread, fn)
        async with self.store.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")  # reset when the pool takes it back
            return await conn.run_sync(fn)

    def _in_thread(self, fn: Callable[[Connection], T]) -> T:
        assert self.sync_engine is not None
        with self.sync_engine.connect() as conn:
            return fn(conn)


def reader(request: Request) -> Reader:
    """The app's reader (made on first use, for the app's current store)."""
    state = request.app.state
    r: Reader | None = getattr(state, "feeds_reader", None)
    if r is None or r.store is not state.store:
        r = Reader(state.store)
        state.feeds_reader = r
    return r

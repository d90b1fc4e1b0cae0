"""LISTEN for other processes' commits on PostgreSQL and tell the hub.

Each commit NOTIFYs ``mycelium_log`` with ``"first:last:instance"``; notifications are
delivered in commit order, which the writer lock makes equal to seq order.
After a lost connection the listener reconnects and advances the hub to the
database's head, so nothing committed meanwhile is missed.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import asyncpg
import structlog
from sqlalchemy.engine import make_url

from forum.hub import Hub
from forum.store import NOTIFY_CHANNEL, Store

log = structlog.get_logger("forum.pglisten")


def asyncpg_dsn(sqlalchemy_url: str) -> str:
    return make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)


class Listener:
    def __init__(self, url: str, store: Store, hub: Hub) -> None:
        self.dsn = asyncpg_dsn(url)
        self.store = store
        self.hub = hub
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="pg-listen")
        await asyncio.wait_for(self._ready.wait(), 30)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        first, last, instance = payload.split(":")
        if instance != self.store.instance:  # our own commits reach the hub from the writer
            self.hub.committed(int(first), int(last))

    async def _run(self) -> None:
        delay = 0.1
        while True:
            conn = None
            try:
                conn = await asyncpg.connect(self.dsn)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await conn.add_listener(NOTIFY_CHANNEL, self._on_notify)
                head = await self.store.head()  # anything committed while we were not listening
                self.hub.committed(head, head)
                self._ready.set()
                delay = 0.1
                await lost.wait()
                log.warning("LISTEN connection lost; reconnecting")
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("LISTEN connection failed", error=str(e))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await conn.close()

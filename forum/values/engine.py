"""Keeps the moral graph and the cases documents current without blocking ingest.

    hub (every delivered batch) ──► queue ──► one worker thread: apply the batches,
                                              then recompute both documents (coalesced)

The state is touched only by that thread (drawing opinion groups for a case is
a fit; it never runs on the event loop). Requests read the last published
documents, each stamped with the seq it reflects (``as_of_seq``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
import structlog
from sqlalchemy import select

from forum.hub import Hub
from forum.schema import events
from forum.store import Store, Stored
from forum.values.state import BODY_KINDS, ValuesState
from raters.arbitration import Rules

log = structlog.get_logger("forum.values.engine")

_PAGE = 5000


class ValuesEngine:
    def __init__(self, store: Store, hub: Hub, rules: Rules | None = None) -> None:
        self.store = store
        self.hub = hub
        self.state = ValuesState(rules)
        self.moral_graph: dict[str, Any] | None = None
        self.cases: dict[str, Any] | None = None
        self._batches: asyncio.Queue[Sequence[Stored]] = asyncio.Queue()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="values")
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()
        self.on_applied: list[Callable[[], None]] = []
        """Called on the event loop each time events were applied (the score engine takes
        the remedies in force from ``state.remedies``)."""

    def _applied(self) -> None:
        for fn in self.on_applied:
            try:
                fn()
            except Exception:
                log.exception("values listener failed", as_of_seq=self.state.head)

    async def start(self) -> None:
        """Follow the log; the replay runs in the background (the forum serves at once;
        the documents are None, and ``ready`` unset, until it is done)."""
        self.hub.listeners.append(self._batches)  # before the replay: nothing falls between
        self._task = asyncio.create_task(self._replay_then_run(), name="values")

    async def _replay_then_run(self) -> None:
        head = self.hub.head
        loop = asyncio.get_running_loop()
        cursor = 0
        while cursor < head:
            async with self.store.engine.connect() as conn:
                rows = (
                    await conn.execute(
                        select(events.c.seq, events.c.id, events.c.author, events.c.kind, events.c.created_at, events.c.payload)
                        .where(events.c.seq > cursor, events.c.seq <= head)
                        .order_by(events.c.seq)
                        .limit(_PAGE)
                    )
                ).all()
            if not rows:
                break
            await loop.run_in_executor(self._pool, self._replay, rows)
            self._applied()
            cursor = rows[-1].seq
        await self._publish()
        await self._run()

    def _replay(self, rows: Sequence[Any]) -> None:
        for r in rows:
            body = orjson.loads(r.payload)["body"] if r.kind in BODY_KINDS else {}
            self.state.apply_parts(r.seq, r.id, r.author, r.kind, r.created_at, body)

    async def stop(self) -> None:
        with contextlib.suppress(ValueError):
            self.hub.listeners.remove(self._batches)
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _apply(self, batches: list[Sequence[Stored]]) -> None:
        for batch in batches:
            for stored in batch:
                self.state.apply(stored.seq, stored.event)

    def _documents(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return self.state.moral_graph_document(), self.state.cases_document()

    async def _publish(self) -> None:
        loop = asyncio.get_running_loop()
        self.moral_graph, self.cases = await loop.run_in_executor(self._pool, self._documents)
        self.ready.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batches = [await self._batches.get()]
            while not self._batches.empty():
                batches.append(self._batches.get_nowait())
            try:
                await loop.run_in_executor(self._pool, self._apply, batches)
                self._applied()
                await self._publish()
            except Exception:
                log.exception("values documents failed", as_of_seq=self.state.head)

    # ------------------------------------------------------------------ reads

    def case(self, case_id: str) -> dict[str, Any] | None:
        for c in (self.cases or {}).get("cases", ()):
            if c["case"] == case_id:
                return c
        return None

    def remedies(self) -> dict[str, Any]:
        return (self.cases or {}).get("remedies", {})

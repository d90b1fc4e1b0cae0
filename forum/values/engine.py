"""Keeps the moral graph and the cases documents current without blocking ingest.

    hub (every delivered batch) ──► queue ──► one worker thread: apply the batches,
                                              then recompute both documents (coalesced)

The state is touched only by that thread (drawing opinion groups for a case is
a fit; it never runs on the event loop). Requests read the last published
documents, each stamped with the seq it reflects (``as_of_seq``).

With a state file (``DATA_DIR/values-state.bin``, :mod:`forum.statefile`) the
engine serves the saved documents at once, loads the saved state in its thread,
replays only the log after it, and then checks it against a full replay in
another thread (on a mismatch: one log line, ``mycelium_state_mismatches_total``,
and the replay is kept). It writes the file from its own thread (so the state
is consistent) at most every max(``state_save_interval_s``, 10 x the last write).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import structlog
from sqlalchemy import select

from forum import statefile
from forum.hub import Hub
from forum.metrics import Metrics
from forum.schema import events
from forum.store import Store, Stored
from forum.values.state import BODY_KINDS, ValuesState
from raters.arbitration import Rules

log = structlog.get_logger("forum.values.engine")

_PAGE = 5000
_VERIFY_ROUNDS = 50  # catch-up rounds of the background check before it gives up (ingest outran it)


class ValuesEngine:
    def __init__(
        self, store: Store, hub: Hub, rules: Rules | None = None, *, state_dir: Path | None = None, save_interval_s: float = 0.0
    ) -> None:
        self.store = store
        self.hub = hub
        self.rules = rules
        self.metrics: Metrics = hub.metrics
        self.state = ValuesState(rules)
        self.state_dir = state_dir
        self.save_interval_s = save_interval_s
        self._statefile: statefile.StateFile | None = None
        self._restored: statefile.Header | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.moral_graph: dict[str, Any] | None = None
        self.cases: dict[str, Any] | None = None
        self._batches: asyncio.Queue[Sequence[Stored]] = asyncio.Queue()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="values")
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()
        self.on_applied: list[Callable[[], None]] = []
        """Called on the event loop each time events were applied (the score engine takes
        the remedies in force from ``state.remedies``)."""
        self.on_state: list[Callable[[ValuesState], None]] = []
        """Called on the event loop when the state object is replaced (loaded from the
        state file, or a full replay kept after a mismatch)."""

    def _applied(self) -> None:
        for fn in self.on_applied:
            try:
                fn()
            except Exception:
                log.exception("values listener failed", as_of_seq=self.state.head)

    def _replaced(self) -> None:
        for fn in self.on_state:
            fn(self.state)

    async def start(self) -> None:
        """Follow the log; the replay runs in the background (the forum serves at once;
        the documents are None, and ``ready`` unset, until it is done)."""
        self.hub.listeners.append(self._batches)  # before the replay: nothing falls between
        if self.state_dir is not None and self.save_interval_s > 0:
            code = await asyncio.to_thread(statefile.code_key, "values", repr(self.rules))
            self._statefile = statefile.StateFile(self.state_dir / "values-state.bin", "values", code)
            await self._restore_documents()
        self._task = asyncio.create_task(self._replay_then_run(), name="values")

    async def _restore_documents(self) -> None:
        """Serve the state file's documents at once (when it is valid for this log)."""
        assert self._statefile is not None
        restored = await statefile.restore(self._statefile, self.hub.head, self.store.id_at)
        if restored is None:
            return
        header, docs = restored
        self.moral_graph, self.cases = docs["moral_graph"], docs["cases"]
        self._restored = header
        self.metrics.state_restored_seq.labels("values").set(header.head)
        self.ready.set()

    def _load_state(self, header: statefile.Header) -> ValuesState | None:
        assert self._statefile is not None
        try:
            state = self._statefile.section(header, 1)
        except Exception as e:
            self._statefile.ignored(f"state section unreadable: {e!r}")
            return None
        if not isinstance(state, ValuesState) or state.head != header.head:
            self._statefile.ignored("state section does not match its header")
            return None
        return state

    async def _replay_then_run(self) -> None:
        head = self.hub.head
        loop = asyncio.get_running_loop()
        if self._restored is not None:
            state = await loop.run_in_executor(self._pool, self._load_state, self._restored)
            if state is None:
                self._restored = None
            else:
                self.state = state
                self._replaced()
        await self._replay_into(self.state, self.state.head, head, self._pool)
        await self._publish()
        if self._statefile is not None:
            self._tasks.append(asyncio.create_task(self._save_loop(), name="values-save"))
        if self._restored is not None:
            self._tasks.append(asyncio.create_task(self._verify(), name="values-verify"))
        await self._run()

    async def _replay_into(self, state: ValuesState, cursor: int, head: int, pool: ThreadPoolExecutor) -> None:
        """Apply the log's events in (cursor, head] to ``state``, in ``pool``'s thread."""
        loop = asyncio.get_running_loop()
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
            await loop.run_in_executor(pool, _replay, state, rows)
            if state is self.state:
                self._applied()
            cursor = rows[-1].seq

    async def _save_loop(self) -> None:
        """The values engine's state file, written by :func:`statefile.save_loop`."""
        assert self._statefile is not None
        loop = asyncio.get_running_loop()

        async def fork() -> tuple[int, statefile.Forked]:  # in the state's own thread: consistent
            return await loop.run_in_executor(self._pool, self._fork_dump)

        await statefile.save_loop(
            self._statefile, "values", head=lambda: self.state.head, fork=fork, id_at=self.store.id_at,
            metrics=self.metrics, interval=self.save_interval_s,
            saved=self._restored.head if self._restored is not None else -1,
        )  # fmt: skip

    def _dump(self) -> list[Any]:
        """The sections, pickled by :func:`statefile.fork_dump` in its child."""
        return [{"moral_graph": self.moral_graph, "cases": self.cases}, self.state]

    def _fork_dump(self) -> tuple[int, statefile.Forked]:
        assert self._statefile is not None
        return self.state.head, statefile.fork_dump(self._statefile, self._dump)

    async def _verify(self) -> None:
        """Check the restored state against a full replay of the log; keep the replay on a mismatch."""
        loop = asyncio.get_running_loop()
        pool = ThreadPoolExecutor(1, thread_name_prefix="values-verify")
        try:
            fresh = ValuesState(self.rules)
            for _ in range(_VERIFY_ROUNDS):
                await self._replay_into(fresh, fresh.head, self.state.head, pool)
                result = await loop.run_in_executor(self._pool, self._compare, fresh)
                if result is not None:
                    break
            else:
                log.warning("restored values state not checked: the log grew faster than the replay", as_of_seq=fresh.head)
                return
            if result:
                log.warning("restored values state differs from a full replay of the log; keeping the replay", as_of_seq=fresh.head)
                self.metrics.state_mismatches.labels("values").inc()
                self._replaced()
                self._applied()
                await self._publish()
            self.metrics.state_verified.labels("values").set(1)
            log.info("restored values state checked against a full replay", as_of_seq=fresh.head, matched=not result)
        except Exception:
            log.exception("restored values state could not be checked against the log")
        finally:
            pool.shutdown(wait=False)

    def _compare(self, fresh: ValuesState) -> bool | None:
        """In the state's thread: None when the heads differ (replay more), else whether the
        documents differ (then the fresh state replaces the live one)."""
        if fresh.head != self.state.head:
            return None
        differ = (
            fresh.moral_graph_document() != self.state.moral_graph_document()
            or fresh.cases_document() != self.state.cases_document()
        )
        if differ:
            self.state = fresh
        return differ

    async def stop(self) -> None:
        with contextlib.suppress(ValueError):
            self.hub.listeners.remove(self._batches)
        for task in [self._task, *self._tasks]:
            if task:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
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


def _replay(state: ValuesState, rows: Sequence[Any]) -> None:
    for r in rows:
        body = orjson.loads(r.payload)["body"] if r.kind in BODY_KINDS else {}
        state.apply_parts(r.seq, r.id, r.author, r.kind, r.created_at, body)

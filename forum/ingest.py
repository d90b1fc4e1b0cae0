"""The ingest path: verify in parallel, commit in batches, acknowledge after commit.

    submit() ──► verifier task ──► worker processes (forum.verifypool: parse,
                                      │  strict JSON, schema, signature)
                                      │ ready fields of verified events
                                      ▼
                 writer task ──► Store.write_batch (one transaction per batch)
                                      │ committed
                                      ├──► futures resolved: OK frames go out
                                      └──► Hub.committed: subscribers get the events

Nothing is acknowledged before its transaction has committed. A batch that
fails to commit is refused as a whole with ``error:`` and nothing of it is
stored; the client may simply publish again (the id makes that safe).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import structlog

from forum.hub import Hub
from forum.metrics import Metrics
from forum.protocol.errors import ProtocolError, StorageError
from forum.protocol.events import Event, Limits
from forum.ratelimit import TokenBuckets
from forum.store import Accepted, Duplicate, Store, Stored
from forum.verifypool import VerifyPool, envelope_id, event_of

__all__ = ["Ingest", "Result", "envelope_id", "id_of_submitted"]

log = structlog.get_logger("forum.ingest")


T = TypeVar("T")


class Lane(Generic[T]):
    """A bounded FIFO between tasks of one event loop: items go in one at a time and are
    taken many at once. What asyncio.Queue did here, without its per-item bookkeeping
    (unfinished-task counts, getter and putter futures): 0.72 -> 0.19 µs per item and lane
    (micro-benchmark, process CPU, loaded; docs/performance.md)."""

    def __init__(self, limit: int) -> None:
        self.items: deque[T] = deque()
        self.limit = limit
        self._ready = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()

    def full(self) -> bool:
        return len(self.items) >= self.limit

    def put_nowait(self, item: T) -> None:
        """Raises asyncio.QueueFull when full."""
        if len(self.items) >= self.limit:
            raise asyncio.QueueFull
        self.items.append(item)
        self._ready.set()

    async def put(self, item: T) -> None:
        while len(self.items) >= self.limit:
            self._room.clear()
            await self._room.wait()
        self.items.append(item)
        self._ready.set()

    async def take(self, most: int) -> list[T]:
        """The oldest items, at least one and at most ``most`` (waits for the first)."""
        items = self.items
        while not items:
            self._ready.clear()
            await self._ready.wait()
        if len(items) <= most:
            out = list(items)
            items.clear()
        else:
            out = [items.popleft() for _ in range(most)]
        if len(items) < self.limit:
            self._room.set()
        return out


@dataclass(slots=True)  # not frozen: built per event on the event loop, and frozen init costs ~4x
class Result:
    """What an OK frame says about one published envelope."""

    id: str
    accepted: bool
    message: str = ""
    seq: int | None = None
    retry_after: float | None = None
    notice: bool = False  # the frame was not a valid PUBLISH message: answer with NOTICE, not OK

    @property
    def reason(self) -> str | None:
        return self.message.split(":", 1)[0] if self.message else None


class Ingest:
    """Owns the verifier pool and the single writer of this process."""

    def __init__(
        self,
        store: Store,
        hub: Hub,
        metrics: Metrics,
        *,
        limits: Limits,
        workers: int,
        batch_max: int,
        author_buckets: TokenBuckets,
        max_pending: int = 100_000,
        max_pending_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self.store = store
        self.hub = hub
        self.metrics = metrics
        self.limits = limits
        self.batch_max = batch_max
        self.author_buckets = author_buckets
        self.workers = workers
        self.pool = VerifyPool(workers)
        self._inbox: Lane[tuple[Any, asyncio.Future[Result]]] = Lane(max_pending)
        # Bounded too: when the writer falls behind, the verifier waits, the inbox fills
        # and submit_nowait refuses ("the forum is busy") instead of memory growing.
        self._verified: Lane[tuple[Event, asyncio.Future[Result]]] = Lane(4 * batch_max)
        self.max_pending_bytes = max_pending_bytes
        self.pending_bytes = 0  # frame bytes of every envelope submitted and not yet answered
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self.pool.warm()
        self._tasks = [
            asyncio.create_task(self._verifier(), name="verifier"),
            asyncio.create_task(self._writer(), name="writer"),
        ]

    async def stop(self) -> None:
        """Stop the tasks. Work not yet committed is dropped unacknowledged: its
        publishers saw no OK and will publish it again (the id makes that safe)."""
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self.pool.shutdown()

    # ------------------------------------------------------------------ API

    def submit_nowait(self, envelope: Any, size: int = 0) -> asyncio.Future[Result]:
        """Queue an envelope (a dict) or a whole ``["PUBLISH", envelope]`` frame (its raw
        text, parsed by a worker); ``size`` is its bytes as received. The future resolves
        with its OK once committed (or refused). Refused at once while the queue is full
        (``max_pending`` envelopes or ``max_pending_bytes``)."""
        fut: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        if size and self.pending_bytes and self.pending_bytes + size > self.max_pending_bytes:
            fut.set_result(Result(id_of_submitted(envelope), False, "rate-limited: the forum is busy, retry shortly", retry_after=1.0))
            return fut
        try:
            self._inbox.put_nowait((envelope, fut))
        except asyncio.QueueFull:
            fut.set_result(Result(id_of_submitted(envelope), False, "rate-limited: the forum is busy, retry shortly", retry_after=1.0))
            return fut
        if size:
            self.pending_bytes += size
            fut.add_done_callback(lambda _: self._answered(size))
        return fut

    def _answered(self, size: int) -> None:
        self.pending_bytes -= size

    async def submit(self, envelope: Any, size: int = 0) -> Result:
        return await self.submit_nowait(envelope, size)

    # ------------------------------------------------------------------ tasks

    def _refuse(self, fut: asyncio.Future[Result], eid: str, err: ProtocolError, retry_after: float | None = None) -> None:
        self.metrics.refused.labels(err.reason).inc()
        if not fut.done():
            fut.set_result(Result(eid, False, err.message, retry_after=retry_after))

    async def _verifier(self) -> None:
        while True:
            items = await self._inbox.take(4096)
            now_ms = int(time.time() * 1000)
            results = await self.pool.check([env for env, _ in items], self.limits, now_ms)
            take = self.author_buckets.take if self.author_buckets.rate else None
            verified = self._verified
            for (_, fut), res in zip(items, results, strict=True):
                tag = res[0]
                if tag == "e":
                    if take is not None and (wait := take(res[3])):
                        self._refuse(fut, res[1], ProtocolError("rate-limited", f"author over its rate limit, retry in {wait:.2f}s"), wait)
                        continue
                    if verified.full():
                        await verified.put((event_of(res), fut))  # the writer is behind: wait for it
                    else:
                        verified.put_nowait((event_of(res), fut))
                elif tag == "r":
                    self.metrics.refused.labels(res[2]).inc()
                    if not fut.done():
                        fut.set_result(Result(res[1], False, res[3]))
                else:
                    self.metrics.refused.labels("invalid").inc()
                    if not fut.done():
                        fut.set_result(Result("", False, res[1], notice=True))

    async def _writer(self) -> None:
        while True:
            items = await self._verified.take(self.batch_max)
            batch = [ev for ev, _ in items]
            t0 = time.perf_counter()
            try:
                results = await self.store.write_batch(batch)
            except StorageError as e:
                log.error("commit failed; batch refused", error=str(e), events=len(batch))
                for ev, fut in items:
                    self._refuse(fut, ev.id, ProtocolError("error", "the database did not commit this event; publish it again"))
                continue
            self.metrics.commit_seconds.observe(time.perf_counter() - t0)
            self.metrics.batch_size.observe(len(batch))
            committed: list[Stored] = []
            kinds: Counter[str] = Counter()
            duplicates = 0
            for (ev, fut), res in zip(items, results, strict=True):
                if isinstance(res, Accepted):
                    committed.append(Stored(res.seq, ev))
                    kinds[ev.kind] += 1
                    result = Result(ev.id, True, "", res.seq)
                elif isinstance(res, Duplicate):
                    duplicates += 1
                    result = Result(ev.id, True, "duplicate: already in the log")
                else:
                    self.metrics.refused.labels(res.reason).inc()
                    result = Result(ev.id, False, res.message)
                if not fut.done():
                    fut.set_result(result)
            for kind, n in kinds.items():
                self.metrics.accepted.labels(kind).inc(n)
            if duplicates:
                self.metrics.duplicates.inc(duplicates)
            if committed:
                self.hub.committed(committed[0].seq, committed[-1].seq, committed)


def id_of_submitted(item: Any) -> str:
    """The id to report for what :meth:`Ingest.submit_nowait` takes (an envelope, a raw frame or a batch line)."""
    if isinstance(item, bytes):  # a batch line: only parsed here on this rare path
        from forum.protocol import strictjson

        try:
            return envelope_id(strictjson.loads(item, what="envelope"))
        except ProtocolError:
            return ""
    if isinstance(item, str):  # a raw frame: only parsed here on this rare path
        from forum.protocol import wire

        try:
            msg = wire.parse_message(item)
        except ProtocolError:
            return ""
        return envelope_id(msg.envelope) if isinstance(msg, wire.Publish) else ""
    return envelope_id(item)

"""The ingest path: verify in parallel, commit in batches, acknowledge after commit.

    submit() ──► verifier task ──► thread pool (PyNaCl releases the GIL)
                                      │ verified events
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
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import structlog

from forum.hub import Hub
from forum.metrics import Metrics
from forum.protocol.errors import ProtocolError, StorageError
from forum.protocol.events import Event, Limits, event_id, verify_envelope
from forum.ratelimit import TokenBuckets
from forum.store import Accepted, Duplicate, Store, Stored

log = structlog.get_logger("forum.ingest")


@dataclass(frozen=True, slots=True)
class Result:
    """What an OK frame says about one published envelope."""

    id: str
    accepted: bool
    message: str = ""
    seq: int | None = None
    retry_after: float | None = None

    @property
    def reason(self) -> str | None:
        return self.message.split(":", 1)[0] if self.message else None


def envelope_id(envelope: Any) -> str:
    """The id to report for an envelope, even an invalid one ("" if it has no payload string)."""
    if isinstance(envelope, dict) and isinstance(envelope.get("payload"), str):
        try:
            return event_id(envelope["payload"])
        except UnicodeEncodeError:
            return ""
    return ""


def _verify_chunk(envelopes: Sequence[Any], limits: Limits, now_ms: int) -> list[Event | ProtocolError]:
    out: list[Event | ProtocolError] = []
    for env in envelopes:
        try:
            out.append(verify_envelope(env, limits=limits, now_ms=now_ms))
        except ProtocolError as e:
            out.append(e)
    return out


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
    ) -> None:
        self.store = store
        self.hub = hub
        self.metrics = metrics
        self.limits = limits
        self.batch_max = batch_max
        self.author_buckets = author_buckets
        self.workers = workers
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="verify")
        self._inbox: asyncio.Queue[tuple[Any, asyncio.Future[Result]]] = asyncio.Queue(max_pending)
        self._verified: asyncio.Queue[tuple[Event, asyncio.Future[Result]]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
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
        self.pool.shutdown(wait=True, cancel_futures=True)

    # ------------------------------------------------------------------ API

    def submit_nowait(self, envelope: Any) -> asyncio.Future[Result]:
        """Queue an envelope; the future resolves with its OK once committed (or refused)."""
        fut: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        try:
            self._inbox.put_nowait((envelope, fut))
        except asyncio.QueueFull:
            fut.set_result(Result(envelope_id(envelope), False, "rate-limited: the forum is busy, retry shortly", retry_after=1.0))
        return fut

    async def submit(self, envelope: Any) -> Result:
        return await self.submit_nowait(envelope)

    # ------------------------------------------------------------------ tasks

    def _refuse(self, fut: asyncio.Future[Result], eid: str, err: ProtocolError, retry_after: float | None = None) -> None:
        self.metrics.refused.labels(err.reason).inc()
        if not fut.done():
            fut.set_result(Result(eid, False, err.message, retry_after=retry_after))

    async def _verifier(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            items = [await self._inbox.get()]
            while len(items) < 4096 and not self._inbox.empty():
                items.append(self._inbox.get_nowait())
            now_ms = int(time.time() * 1000)
            envs = [env for env, _ in items]
            if len(envs) < 8:
                chunks = [envs]
            else:
                step = -(-len(envs) // self.workers)
                chunks = [envs[i : i + step] for i in range(0, len(envs), step)]
            parts = await asyncio.gather(
                *(loop.run_in_executor(self.pool, _verify_chunk, c, self.limits, now_ms) for c in chunks)
            )
            results = [r for part in parts for r in part]
            for (env, fut), res in zip(items, results, strict=True):
                if isinstance(res, ProtocolError):
                    self._refuse(fut, envelope_id(env), res)
                    continue
                wait = self.author_buckets.take(res.author)
                if wait:
                    self._refuse(
                        fut, res.id, ProtocolError("rate-limited", f"author over its rate limit, retry in {wait:.2f}s"), wait
                    )
                    continue
                self._verified.put_nowait((res, fut))

    async def _writer(self) -> None:
        while True:
            items = [await self._verified.get()]
            while len(items) < self.batch_max and not self._verified.empty():
                items.append(self._verified.get_nowait())
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

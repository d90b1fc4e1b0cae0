"""The score engine: keeps published scores current without ever blocking ingest.

    hub (every delivered batch) ──► ledger.apply ──► cheap recompute (coalesced, thread)
                                                └──► background fit (interval / N new ratings, thread)
    each publish ──► SCORES frames to score subscribers, HTTP reads the latest documents

Cheap aggregates follow every committed batch; when batches arrive faster than
a recompute takes, the next recompute covers all of them (``as_of_seq`` says
exactly which log prefix a document reflects). Bridging, standing and opinion
groups are refit when ``scores_min_new_ratings`` new ratings arrived or
``scores_interval_s`` passed with any new rating, warm-started from the last
fit. Requests only read the last published documents.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import structlog

from forum.hub import Hub, Subscription
from forum.protocol import wire
from forum.scores.documents import (
    build_index,
    cheap_document,
    fitted_document,
    groups_document,
    target_view,
)
from forum.scores.ledger import Ledger
from forum.settings import Settings
from forum.store import Store, Stored, event_from_row
from raters.pipeline import ScoreResult

log = structlog.get_logger("forum.scores.engine")

SCORED_KINDS = ("rating", "outcome", "retraction", "community", "adoption")
SORT_KEYS = ("mean", "shrunk_mean", "count", "bridging", "consensus", "success_rate")


class ScoresEngine:
    def __init__(self, store: Store, hub: Hub, settings: Settings) -> None:
        self.store = store
        self.hub = hub
        self.settings = settings
        self.ledger = Ledger()
        self.cheap: dict[str, Any] | None = None
        self.fitted: dict[str, Any] | None = None
        self.fit_result: ScoreResult | None = None
        self.index: dict[str, Any] = {}
        self.subs: dict[Subscription, frozenset[str] | None] = {}  # None = every target
        self._batches: asyncio.Queue[Sequence[Stored]] = asyncio.Queue()
        self._dirty = asyncio.Event()
        self._fit_now = asyncio.Event()
        self._changed: set[str] = set()
        self._new_ratings = 0
        self._cheap_pool = ThreadPoolExecutor(1, thread_name_prefix="scores-cheap")
        self._fit_pool = ThreadPoolExecutor(1, thread_name_prefix="scores-fit")
        self._tasks: list[asyncio.Task[None]] = []
        self.ready = asyncio.Event()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self.hub.listeners.append(self._batches)  # before the replay: nothing falls between
        head = self.hub.head
        # Replay only what scores depend on; the kinds of rated events come from one query.
        self.ledger.target_kinds.update(await self.store.rated_event_kinds(head))
        async for page in self.store.export_kinds(SCORED_KINDS, up_to_seq=head):
            for seq, eid, payload, sig in page:
                self.ledger.apply(seq, event_from_row(payload, sig, eid))
        self.ledger.head = max(self.ledger.head, head)
        self._tasks = [
            asyncio.create_task(self._consume(), name="scores-consume"),
            asyncio.create_task(self._cheap_loop(), name="scores-cheap"),
            asyncio.create_task(self._fit_loop(), name="scores-fit"),
        ]
        self._dirty.set()
        self._fit_now.set()

    async def stop(self) -> None:
        with contextlib.suppress(ValueError):
            self.hub.listeners.remove(self._batches)
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._cheap_pool.shutdown(wait=False, cancel_futures=True)
        self._fit_pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ loops

    async def _consume(self) -> None:
        while True:
            batch = await self._batches.get()
            for stored in batch:
                changed = self.ledger.apply(stored.seq, stored.event)
                if changed:
                    self._changed |= changed
                    if stored.event.kind in ("rating", "retraction"):  # both change the fit's input
                        self._new_ratings += 1
                    self._dirty.set()
            if self._new_ratings >= self.settings.scores_min_new_ratings:
                self._fit_now.set()

    async def _cheap_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            snap = self.ledger.snapshot()
            changed, self._changed = self._changed, set()
            try:
                doc = await loop.run_in_executor(self._cheap_pool, cheap_document, snap, self.cheap)
            except Exception:
                log.exception("cheap scores failed", as_of_seq=snap.head)
                continue
            self.cheap = doc
            self.index = build_index(self.cheap, self.fitted)
            self.ready.set()
            self._push(changed)

    async def _fit_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._fit_now.wait(), self.settings.scores_interval_s)
            self._fit_now.clear()
            if self._new_ratings == 0 and self.fitted is not None:
                continue
            self._new_ratings = 0
            snap = self.ledger.snapshot()
            init = self.fit_result.first_pass if self.fit_result is not None else None
            t0 = time.perf_counter()
            try:
                doc, result = await loop.run_in_executor(self._fit_pool, fitted_document, snap, init)
            except Exception:
                log.exception("score fit failed", as_of_seq=snap.head)
                continue
            old = self.fitted
            self.fitted, self.fit_result = doc, result
            self.index = build_index(self.cheap, self.fitted)
            log.debug("scores refit", fit_as_of_seq=doc["fit_as_of_seq"], seconds=round(time.perf_counter() - t0, 3))
            self._push(self._fit_changes(old, doc))

    @staticmethod
    def _fit_changes(old: dict[str, Any] | None, new: dict[str, Any]) -> set[str]:
        if new.get("result") is None:
            return set()
        b = new["result"]["bridging"]
        if old is None or old.get("result") is None:
            return set(new["targets"])
        prev = dict(zip(old["targets"], zip(old["result"]["bridging"]["target_intercept"], old["result"]["bridging"]["status"], strict=True), strict=True))
        changed = set()
        for t, score, status in zip(new["targets"], b["target_intercept"], b["status"], strict=True):
            p = prev.get(t)
            if p is None or p[1] != status or abs((p[0] or 0.0) - (score or 0.0)) > 0.005:
                changed.add(t)
        return changed

    # ------------------------------------------------------------------ reads

    def get(self, target: str) -> dict[str, Any] | None:
        return target_view(target, self.cheap, self.fitted, self.index)

    def listing(self, sort: str, kind: str | None, descending: bool, limit: int, offset: int) -> list[dict[str, Any]]:
        if self.cheap is None:
            return []
        targets: Iterable[str] = self.cheap["targets"]
        if kind is not None:
            kinds = self.cheap["target_kinds"]
            targets = [t for i, t in enumerate(self.cheap["targets"]) if kinds[i] == kind]
        views = [v for t in targets if (v := self.get(t)) is not None]
        if kind in (None, "proposal"):
            seen = {v["target"] for v in views}
            views += [v for t in self.cheap["outcomes"] if t not in seen and (v := self.get(t)) is not None]

        def key(v: dict[str, Any]) -> tuple[bool, float, str]:
            if sort == "bridging":
                x = v["bridging"]["score"] if v["bridging"] else None
            elif sort == "consensus":
                x = v["groups"]["consensus"] if v["groups"] else None
            elif sort == "success_rate":
                x = v["outcomes"]["success_rate"] if v["outcomes"] else None
            else:
                x = v[sort]
            missing = x is None
            val = float(x) if x is not None else 0.0
            return (not missing, val if descending else -val, v["target"])

        views.sort(key=key, reverse=True)
        return views[offset : offset + limit]

    def snapshot(self) -> dict[str, Any]:
        return {"cheap": self.cheap, "fitted": self.fitted}

    def groups(self) -> dict[str, Any]:
        return groups_document(self.fitted)

    # ------------------------------------------------------------------ streaming

    def subscribe(self, sub: Subscription, targets: Sequence[str]) -> None:
        wanted = None if "*" in targets else frozenset(targets)
        self.subs[sub] = wanted
        for t in (self.cheap["targets"] if wanted is None and self.cheap else wanted or ()):
            if (v := self.get(t)) is not None:
                sub.outbox.put(wire.scores(sub.sub_id, v), sub)

    def unsubscribe(self, sub: Subscription) -> None:
        self.subs.pop(sub, None)

    def _push(self, changed: set[str]) -> None:
        if not changed or not self.subs:
            return
        views = {t: v for t in changed if (v := self.get(t)) is not None}
        for sub, wanted in list(self.subs.items()):
            if sub.closed:
                self.subs.pop(sub, None)
                continue
            for t, v in views.items():
                if wanted is None or t in wanted:
                    if sub.queued >= self.settings.subscriber_queue_frames:
                        self.hub.close_slow(sub)
                        self.subs.pop(sub, None)
                        break
                    sub.outbox.put(wire.scores(sub.sub_id, v), sub)

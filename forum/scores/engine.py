"""The score engine: keeps published scores current without ever blocking ingest.

    hub (every delivered batch) ──► CheapState.apply (ledger + running sums, work ~ batch)
                                     ├──► SCORES frames for the changed targets
                                     ├──► cheap document rebuild (throttled, thread)
                                     └──► background fit (interval / N new ratings, thread)
    HTTP reads: per-target views and listings from the running sums (as of the
    last applied batch), the snapshot from the last documents

Cheap per-target scores follow every committed batch with work proportional to
the batch (forum/scores/incremental.py); listings read a ranking rebuilt at
most about once a second while scores change. The whole cheap document (the
snapshot ``forum verify`` checks, and the "communities like yours" section) is
rebuilt in a thread, at most every max(0.2 s, 10 x its last build time), so
its share of a core stays bounded as the log grows (``as_of_seq`` says exactly
which log prefix a document reflects). On start the log is replayed in the
background: the forum serves at once, and score reads answer as soon as the
replay is done. With a state file (``DATA_DIR/scores-state.bin``,
:mod:`forum.scores.persist`, :mod:`forum.statefile`) the engine instead serves
the saved scores at once, loads the saved ledger in the background, applies
only the log after it, and then checks it against a full replay in a thread
(on a mismatch: one log line, ``mycelium_state_mismatches_total``, and the
replay is kept); it writes the file at most every max(``state_save_interval_s``,
10 x the last write's duration), pausing score updates (never ingest) while it
serializes. Bridging, standing and opinion
groups are refit when ``scores_min_new_ratings`` new ratings arrived or
``scores_interval_s`` passed with any new rating, warm-started from the last
fit. Requests only read the last published documents.

Statuses keep the reference of the last status checkpoint within the hysteresis
margin (forum/scores/checkpoints.py): when the log passes a checkpoint, the
ledger is copied as it stands there and the next fit first advances the
reference chain (a cold fit per checkpoint, four per doubling of the log); the
start-up replay computes the chain as it goes.

Bounds (issue 11): the hub's batches reach the engine through a queue bounded
in payload bytes (:class:`BatchFeed`; past it batches are dropped and re-read
from the log, in order); a ``"*"`` subscription sends its first views in
turns of at most 2 ms a loop pass and a quarter of its time (shared by every
subscription), paced to its reader; SCORES frames count against the
subscription's byte budget; the snapshot and groups documents are serialized
once per version, in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
import structlog

from forum import statefile
from forum.hub import Hub, Subscription
from forum.protocol import wire
from forum.scores import persist
from forum.scores.checkpoints import StatusReference, advance, last_checkpoint
from forum.scores.documents import (
    build_index,
    cheap_document,
    fitted_document,
    fitted_part,
    groups_document,
)
from forum.scores.history import ScoreHistory
from forum.scores.incremental import CheapState, Ranking
from forum.scores.ledger import Ledger
from forum.scores.persist import apply_rows
from forum.settings import Settings
from forum.store import Store, Stored, event_from_row
from forum.values.remedies import Remedies
from raters.bridging import BridgingFit
from raters.pipeline import ALGORITHM, VERSION, ScoreResult

log = structlog.get_logger("forum.scores.engine")

SCORED_KINDS = ("rating", "outcome", "retraction", "community", "adoption", "proposal")
FIT_PAUSE_FACTOR = 9.0  # after a fit of t seconds, the next starts no sooner than 9 t later
SORT_KEYS = ("mean", "shrunk_mean", "count", "bridging", "consensus", "success_rate", "raw_mean", "raw_shrunk_mean")
"""``mean`` and ``shrunk_mean`` sort by the sybil-protected figures of the fitted document
(targets the fit does not cover yet sort last); ``raw_mean`` / ``raw_shrunk_mean`` by the
plain ones."""
REFIT_KINDS = ("rating", "retraction", "outcome")
"""Events that count towards a refit (outcome summaries are part of the fitted document)."""
LISTENER_BYTES = 64 * 1024 * 1024  # payload bytes of batches waiting for the engine before it re-reads the log
SUBSCRIBE_PASS_S = 0.002
"""Longest run of first views built in one loop pass, over every subscription together: each
takes its turn (FIFO), so ten ``"*"`` subscriptions cost a loop pass 2 ms, not ten slices."""
SUBSCRIBE_SHARE = 0.25
"""Share of the loop's time first views may take: after a turn of t seconds the turn is held
idle 3 t. One ``"*"`` over 5,000 targets (~0.25 s of views on a quiet core) arrives in ~1 s;
ten at once can no longer take the loop from everything else (bench abuse scores-star)."""


class BatchFeed(asyncio.Queue[Sequence[Stored]]):
    """The engine's hub listener: a queue bounded in payload bytes.

    Past the bound, batches are not queued: the feed remembers the highest seq
    it dropped and the engine reads that range back from the log (in order,
    after what is queued), so memory stays bounded and nothing is skipped.
    """

    def __init__(self, limit: int = LISTENER_BYTES) -> None:
        super().__init__()
        self.limit = limit
        self.bytes = 0
        self.dropped_to = 0  # highest seq dropped and not re-read yet

    def put_nowait(self, item: Sequence[Stored]) -> None:
        size = sum(len(s.event.payload) for s in item)
        if self.dropped_to or (self.bytes + size > self.limit and self.bytes):
            if item:
                self.dropped_to = max(self.dropped_to, item[-1].seq)
                if self.empty():
                    super().put_nowait(())  # an empty batch wakes the consumer, which sees dropped_to
            return
        self.bytes += size
        super().put_nowait(item)

    def taken(self, item: Sequence[Stored]) -> None:
        self.bytes -= sum(len(s.event.payload) for s in item)


def _decode_rows(page: Sequence[tuple[int, str, str, str]]) -> list[Stored]:
    return [Stored(seq, event_from_row(payload, sig, eid)) for seq, eid, payload, sig in page]


def _refit(
    snap: Ledger,
    init: BridgingFit | None,
    reference: StatusReference,
    pending: list[tuple[int, Ledger]],
) -> tuple[dict[str, Any], ScoreResult, StatusReference, float]:
    """Advance the status reference over the pending checkpoints, then fit ``snap``;
    the last item is the fit's own duration (without the checkpoints)."""
    for at, ledger in pending:
        reference = advance(reference, ledger, at)
    t0 = time.perf_counter()
    doc, result = fitted_document(snap, init, reference)
    return doc, result, reference, time.perf_counter() - t0


def _import_fit_libraries() -> None:
    import sklearn.cluster
    import sklearn.metrics  # noqa: F401
    import threadpoolctl  # noqa: F401


def _serialize(what: str, cheap: dict[str, Any] | None, fitted: dict[str, Any] | None) -> bytes:
    if what == "snapshot":
        return orjson.dumps({"cheap": cheap, "fitted": fitted})
    return orjson.dumps(groups_document(fitted))


class ScoresEngine:
    SCORED_KINDS = SCORED_KINDS
    def __init__(self, store: Store, hub: Hub, settings: Settings) -> None:
        self.store = store
        self.hub = hub
        self.settings = settings
        self.ledger = Ledger()
        self.state = CheapState()
        self._rankings: dict[tuple[str, str | None, bool], Ranking] = {}
        self.metrics = hub.metrics
        self.history = ScoreHistory()  # count and mean over log time, per target (fed with the ledger)
        self.cheap: dict[str, Any] | None = None
        self.fitted: dict[str, Any] | None = None
        self.fit_result: ScoreResult | None = None
        self.reference = StatusReference()  # the statuses at the last status checkpoint
        self._checkpoints: list[tuple[int, Ledger]] = []  # (checkpoint, the ledger there) not fitted yet
        self._checkpoint_queued = 0
        self.index: dict[str, Any] = {}
        self.subs: dict[Subscription, frozenset[str] | None] = {}  # None = every target
        self._building = asyncio.Lock()  # the turn to build first views (subscribe)
        self._batches = BatchFeed()
        self._serialized: dict[str, tuple[tuple[int, int], asyncio.Future[bytes]]] = {}
        self._read_pool = ThreadPoolExecutor(1, thread_name_prefix="scores-read")
        self._dirty = asyncio.Event()
        self._fit_now = asyncio.Event()
        self._changed: set[str] = set()
        self._new_ratings = 0
        self._cheap_pool = ThreadPoolExecutor(1, thread_name_prefix="scores-cheap")
        self._fit_pool = ThreadPoolExecutor(1, thread_name_prefix="scores-fit")
        self._tasks: list[asyncio.Task[None]] = []
        self.ready = asyncio.Event()
        self._apply_lock = asyncio.Lock()  # held while a batch is applied, or while the state is serialized / compared
        self._replay_pool = ThreadPoolExecutor(1, thread_name_prefix="scores-replay")
        self._statefile: statefile.StateFile | None = None
        self._restored: statefile.Header | None = None
        self._remedies: Remedies | None = None
        self._live = False  # the whole ledger is in place (not only a restored serving state)

    # ------------------------------------------------------------------ lifecycle

    def follow_remedies(self, remedies: Remedies) -> None:
        """Take agents under an arbitration remedy out of the pools (docs/arbitration.md 3.5),
        as ``remedies`` (the values engine's timeline) reaches each seq."""
        self._remedies = remedies
        self.sync_remedies()

    def sync_remedies(self) -> None:
        """Apply the remedies in force as of min(their timeline's head, the ledger's head)
        (the documents state the seq of the verdict that set holds from; ``forum verify``
        recomputes it).
        Called after every applied batch here and by the values engine after each of its."""
        src = self._remedies
        if src is None or not self._live:
            return
        upto = min(src.head, self.ledger.head)
        if upto <= self.ledger.remedies_as_of_seq:
            return
        changed = self.state.set_remedies(self.ledger, src.at(upto), src.since(upto), upto)
        if changed:
            log.info("remedies changed the score pools", as_of_seq=upto, agents=len(self.ledger.remedied), targets=len(changed))
            self._new_ratings += 1  # the fitted document's input changed
            self._fit_now.set()
            self._dirty.set()
            self._push(changed)

    async def start(self) -> None:
        """Start following the log: from the state file's scores at once when there is a valid
        one, else after a replay in the background (``ready`` when scores answer)."""
        self.hub.listeners.append(self._batches)  # before the replay: nothing falls between
        if self.settings.state_save_interval_s > 0:
            code = await asyncio.to_thread(statefile.code_key, "scores")
            self._statefile = statefile.StateFile(self.settings.data_dir / "scores-state.bin", "scores", code)
            await persist.restore_serving(self)
        self._tasks = [asyncio.create_task(self._replay_then_run(), name="scores-replay")]

    async def _full_replay(self, head: int) -> tuple[Ledger, ScoreHistory, list[StatusReference]]:
        """The ledger, history and status references (every checkpoint passed, oldest first)
        of the log up to ``head``, decoded and applied in a thread."""
        loop = asyncio.get_running_loop()
        ledger, history, refs = Ledger(), ScoreHistory(), [StatusReference()]
        # Replay only what scores depend on; the kinds of rated events come from one query.
        ledger.target_kinds.update(await self.store.rated_event_kinds(head))
        async for page in self.store.export_kinds(SCORED_KINDS, up_to_seq=head):
            await loop.run_in_executor(self._replay_pool, apply_rows, ledger, history, page, refs)
        ledger.head = max(ledger.head, head)
        return ledger, history, refs

    async def _replay_then_run(self) -> None:
        t0 = time.perf_counter()
        head = self.hub.head
        ledger = await persist.load_rest(self, self._restored) if self._restored is not None else None
        if ledger is not None:
            ledger.target_kinds.update(self.ledger.target_kinds)
            self.ledger = ledger
            self._new_ratings = 1  # the saved fit may be older than the saved ratings: refit once
            async with self._apply_lock:  # the log after the file, every kind (as the live path sees it)
                async for page in self.store.export_kinds(None, after_seq=ledger.head, up_to_seq=head):
                    self._apply(await asyncio.to_thread(_decode_rows, page))
                self.ledger.head = max(self.ledger.head, head)
        else:
            self._restored = None
            fresh, history, refs = await self._full_replay(head)
            state = CheapState()
            state.load(fresh)
            state.version = self.state.version + 1
            self.ledger, self.history, self.state = fresh, history, state
            self.reference = refs[-1]
            self._checkpoint_queued = self.reference.seq
        self.metrics.scores_replay_seconds.set(time.perf_counter() - t0)
        self.ready.set()
        self._tasks += [
            asyncio.create_task(self._consume(), name="scores-consume"),
            asyncio.create_task(self._cheap_loop(), name="scores-cheap"),
            asyncio.create_task(self._fit_loop(), name="scores-fit"),
        ]
        if self._statefile is not None:
            self._tasks.append(asyncio.create_task(persist.save_loop(self), name="scores-save"))
        if self._restored is not None:
            self._tasks.append(asyncio.create_task(persist.verify(self), name="scores-verify"))
        self._dirty.set()
        self._fit_now.set()
        self._live = True
        self.sync_remedies()

    async def stop(self) -> None:
        with contextlib.suppress(ValueError):
            self.hub.listeners.remove(self._batches)
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._cheap_pool.shutdown(wait=False, cancel_futures=True)
        self._fit_pool.shutdown(wait=False, cancel_futures=True)
        self._read_pool.shutdown(wait=False, cancel_futures=True)
        self._replay_pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ loops

    async def _consume(self) -> None:
        feed = self._batches
        while True:
            batch = await feed.get()
            feed.taken(batch)
            async with self._apply_lock:
                self._apply(batch)
                if feed.dropped_to and feed.empty():
                    await self._reread(feed)

    async def _reread(self, feed: BatchFeed) -> None:
        """Apply what the feed dropped, from the log (the ledger ignores seqs it has)."""
        while feed.dropped_to:
            up_to = feed.dropped_to
            log.info("scores re-read dropped batches from the log", after_seq=self.ledger.head, up_to_seq=up_to)
            async for page in self.store.export_kinds(SCORED_KINDS, after_seq=self.ledger.head, up_to_seq=up_to):
                self._apply(await asyncio.to_thread(_decode_rows, page))
            self.ledger.head = max(self.ledger.head, up_to)
            if feed.dropped_to == up_to:  # no await between this check and accepting batches again
                feed.dropped_to = 0

    def _apply(self, batch: Sequence[Stored]) -> None:
        if not batch:
            return
        t0 = time.perf_counter()
        changed: set[str] = set()
        for stored in batch:
            if stored.seq > self.ledger.head:
                self._checkpoint_before(stored.seq)
            token = self.history.before(self.ledger, stored.seq, stored.event)
            c = self.state.apply(self.ledger, stored.seq, stored.event)
            self.history.after(self.ledger, stored.seq, token)
            if c:
                changed |= c
                if stored.event.kind in REFIT_KINDS:  # all change the fitted document's input
                    self._new_ratings += 1
        self.metrics.scores_update_seconds.observe(time.perf_counter() - t0)
        if changed:
            self._dirty.set()
            self._push(changed)
        if self._new_ratings >= self.settings.scores_min_new_ratings:
            self._fit_now.set()
        self.sync_remedies()

    def _checkpoint_before(self, seq: int) -> None:
        """Before applying ``seq``: queue a copy of the ledger at a checkpoint it passes."""
        c = last_checkpoint(seq - 1)
        if c > max(self.reference.seq, self._checkpoint_queued):
            self._checkpoints.append((c, self.ledger.snapshot()))
            self._checkpoint_queued = c

    async def _cheap_loop(self) -> None:
        """The whole cheap document (snapshot, communities section), rebuilt at most every
        max(0.2 s, 10 x its last build time): bounded CPU share at any log size."""
        loop = asyncio.get_running_loop()
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            t0 = time.perf_counter()
            snap = self.ledger.snapshot()
            try:
                doc = await loop.run_in_executor(self._cheap_pool, cheap_document, snap, self.cheap)
            except Exception:
                log.exception("cheap scores failed", as_of_seq=snap.head)
                continue
            self.cheap = doc
            took = time.perf_counter() - t0
            self.metrics.scores_document_seconds.observe(took)
            await asyncio.sleep(max(0.2, 10 * took))

    async def _fit_loop(self) -> None:
        loop = asyncio.get_running_loop()
        # scikit-learn's first import takes seconds: not part of a fit's duration (the pause after it)
        await loop.run_in_executor(self._fit_pool, _import_fit_libraries)
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._fit_now.wait(), self.settings.scores_interval_s)
            self._fit_now.clear()
            if self._new_ratings == 0 and self.fitted is not None:
                continue
            self._new_ratings = 0
            snap = self.ledger.snapshot()
            c = last_checkpoint(snap.head)  # a checkpoint at the head (no event after it yet)
            if c > max(self.reference.seq, self._checkpoint_queued):
                self._checkpoints.append((c, snap))
                self._checkpoint_queued = c
            pending, self._checkpoints = self._checkpoints, []
            init = self.fit_result.first_pass if self.fit_result is not None else None
            t0 = time.perf_counter()
            try:
                doc, result, self.reference, fit_s = await loop.run_in_executor(
                    self._fit_pool, _refit, snap, init, self.reference, pending
                )
            except Exception:
                log.exception("score fit failed", as_of_seq=snap.head)
                self._checkpoints[:0] = pending
                continue
            old = self.fitted
            self.fitted, self.fit_result = doc, result
            self.index = build_index(None, self.fitted)
            took = time.perf_counter() - t0
            self.metrics.scores_fit_seconds.observe(took)
            log.debug("scores refit", fit_as_of_seq=doc["fit_as_of_seq"], seconds=round(took, 3))
            self._push(self._fit_changes(old, doc))
            # A fit reads every current rating: at most one fit per 10 x its duration, so
            # refits take at most ~10 % of the time whatever the size of the log.  Status
            # checkpoints passed since are not counted: their whole chain costs about seven
            # fits of the log over its life, and counting them delayed the fit at the head
            # of a bulk import by 9 x the catch-up (biodiversity: 70 s).
            await asyncio.sleep(FIT_PAUSE_FACTOR * fit_s)

    @staticmethod
    def _fit_changes(old: dict[str, Any] | None, new: dict[str, Any]) -> set[str]:
        """Targets whose fitted figures (status, bridging score, protected shrunk mean or
        outcome summary) changed visibly since the previous fit."""

        def figures(doc: dict[str, Any] | None) -> dict[str, tuple[Any, ...]]:
            if not doc or doc.get("result") is None:
                return {}
            b = doc["result"]["bridging"]
            p = doc["result"]["protected"]
            return {
                t: (status, score, shrunk)
                for t, status, score, shrunk in zip(doc["targets"], b["status"], b["target_intercept"], p["shrunk_mean"], strict=True)
            }

        prev, cur = figures(old), figures(new)
        changed = set()
        for t, (status, score, shrunk) in cur.items():
            p = prev.get(t)
            if p is None or p[0] != status or abs((p[1] or 0.0) - (score or 0.0)) > 0.005 or abs((p[2] or 0.0) - (shrunk or 0.0)) > 0.005:
                changed.add(t)
        old_out = (old or {}).get("outcomes") or {}
        for t, summary in (new.get("outcomes") or {}).items():
            if old_out.get(t) != summary:
                changed.add(t)
        return changed

    # ------------------------------------------------------------------ reads

    def get(self, target: str) -> dict[str, Any] | None:
        """The target's current view: cheap fields from the running sums, fitted ones from the last fit."""
        if not self.ready.is_set():
            return None
        part = self.state.part(target, self._kind(target))
        if part is None:
            return None
        return {
            "target": target,
            "as_of_seq": self.as_of_seq,
            "algorithm": ALGORITHM,
            "version": VERSION,
            **part,
            **fitted_part(target, self.fitted, self.index),
        }

    @property
    def as_of_seq(self) -> int:
        """The log prefix the per-target views reflect (0 until the start-up replay is done)."""
        return self.ledger.head if self.ready.is_set() else 0

    def ranked_as_of_seq(self, sort: str, kind: str | None, descending: bool) -> int:
        """The log prefix the order of that listing reflects (its values are always current)."""
        r = self._rankings.get((sort, kind, descending))
        return r.as_of_seq if r is not None else self.as_of_seq

    def _kind(self, target: str) -> str:
        return self.ledger.target_kinds.get(target, "agent" if target.startswith("did:") else "event")

    def listing(self, sort: str, kind: str | None, descending: bool, limit: int, offset: int) -> list[dict[str, Any]]:
        """A page of targets in ``sort`` order, from a ranking rebuilt at most about once a second."""
        if not self.ready.is_set():
            return []
        key = (sort, kind, descending)
        r = self._rankings.get(key)
        if r is None or not r.usable(self.state.version, self.fitted, 1.0):
            t0 = time.perf_counter()
            order = self._rank(sort, kind, descending)
            r = self._rankings[key] = Ranking(order, self.state.version, self.fitted, self.ledger.head, time.perf_counter() - t0)
            self.metrics.scores_ranking_seconds.observe(r.build_s)
        out: list[dict[str, Any]] = []
        i = offset
        while len(out) < limit and i < len(r.order):
            if (v := self.get(r.order[i])) is not None:  # a target retracted since the ranking was built is skipped
                out.append(v)
            i += 1
        return out

    def _rank(self, sort: str, kind: str | None, descending: bool) -> list[str]:
        st = self.state
        # list(dict) copies in one step under the GIL: listings may be read from a worker
        # thread (feeds/ranking.py) while the loop applies batches.
        targets = [t for t in list(st.targets) if kind is None or self._kind(t) == kind]
        if kind in (None, "proposal"):
            targets += [t for t in list(st.outcomes) if t not in st.targets]
        fi = self.index.get("fitted", {})
        res = self.fitted.get("result") if self.fitted else None

        outcomes = (self.fitted or {}).get("outcomes") or {}

        def value(t: str) -> float | None:
            s = st.targets.get(t)
            if sort in ("raw_mean", "raw_shrunk_mean", "count"):
                if s is None:
                    return 0 if sort == "count" else None
                return s.count if sort == "count" else (s.total / s.count if sort == "raw_mean" else st.shrunk_mean(s))
            if sort == "success_rate":
                o = outcomes.get(t)
                return o["success_rate"] if o else None
            j = fi.get(t)
            if res is None or j is None:
                return None
            if sort in ("mean", "shrunk_mean"):  # the sybil-protected figures
                return res["protected"][sort][j]
            if sort == "bridging":
                return res["bridging"]["target_intercept"][j]
            return res["groups"]["consensus"][j] if res["groups"]["k"] else None

        def order_key(t: str) -> tuple[bool, float, str]:
            x = value(t)
            val = float(x) if x is not None else 0.0
            return (x is not None, val if descending else -val, t)

        targets.sort(key=order_key, reverse=True)
        return targets

    def history_of(self, target: str) -> list[tuple[int, int, float | None]]:
        """(seq, count, mean) of ``target`` over log time (:mod:`forum.scores.history`)."""
        return self.history.of(target)

    def snapshot(self) -> dict[str, Any]:
        return {"cheap": self.cheap, "fitted": self.fitted}

    async def serialized(self, what: str) -> bytes:
        """The snapshot or groups document as JSON, serialized once per document pair in a thread."""
        version = (id(self.cheap), id(self.fitted))
        got = self._serialized.get(what)
        if got is None or got[0] != version:
            fut = asyncio.get_running_loop().run_in_executor(self._read_pool, _serialize, what, self.cheap, self.fitted)
            got = self._serialized[what] = (version, fut)
        return await asyncio.shield(got[1])

    def groups(self) -> dict[str, Any]:
        return groups_document(self.fitted)

    # ------------------------------------------------------------------ streaming

    async def subscribe(self, sub: Subscription, targets: Sequence[str]) -> None:
        """Register ``sub`` and send the current view of each wanted target, paced to its reader."""
        wanted = None if "*" in targets else frozenset(targets)
        self.subs[sub] = wanted
        every = sorted({*list(self.state.targets), *list(self.state.outcomes)}) if wanted is None else sorted(wanted or ())
        budget = self.settings.subscriber_queue_bytes
        i, pending = 0, None
        while i < len(every) or pending is not None:
            if pending is not None:  # waits for room without holding the turn
                await sub.outbox.wait_room(sub, len(pending), budget)
                if sub.closed or sub.outbox.closed:
                    return
                sub.outbox.put(pending, sub)
                pending = None
            async with self._building:  # one subscription builds at a time, in turn (FIFO)
                start = time.perf_counter()
                deadline = start + SUBSCRIBE_PASS_S
                while i < len(every) and time.perf_counter() < deadline:
                    if sub.closed or sub.outbox.closed:
                        return
                    i += 1
                    if (v := self.get(every[i - 1])) is None:
                        continue
                    frame = wire.scores(sub.sub_id, v)
                    if not sub.outbox.fits(sub, len(frame), budget, 0.5):
                        pending = frame
                        break
                    sub.outbox.put(frame, sub)
                # The turn is held through a pause: first views, of every subscription
                # together, take at most SUBSCRIBE_SHARE of the loop's time.
                await asyncio.sleep((time.perf_counter() - start) * (1 / SUBSCRIBE_SHARE - 1))

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
                    frame = wire.scores(sub.sub_id, v)
                    if not sub.outbox.fits(sub, len(frame), self.settings.subscriber_queue_bytes):
                        self.hub.close_slow(sub)
                        self.subs.pop(sub, None)
                        break
                    sub.outbox.put(frame, sub)

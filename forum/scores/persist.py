"""What the score engine writes to its state file, and how a restored state is checked.

Generic over the documents: the file holds the engine's own objects (pickled),
so a field added to the ledger, the running sums or a document travels without
a change here. Two sections (:mod:`forum.statefile`):

* **serving**: the running sums (:class:`~forum.scores.incremental.CheapState`),
  the score history, the last cheap and fitted documents, the last fit (warm
  start of the next), the ledger's head and target kinds: everything a read
  needs, O(targets). Loaded before the forum serves, so scores answer at once;
* **ledger**: the :class:`~forum.scores.ledger.Ledger` (every rating ever
  made, O(ratings)) and the ledgers at status checkpoints not fitted yet,
  loaded in the background; the log after its head is then
  applied and the engine follows the hub again.

:func:`differences` compares a restored-and-followed state with a full replay
of the log at the same head: the ledgers field by field (target kinds: the
replay's must agree where both know a target), the score histories exactly
(both are built in seq order), the status reference exactly (the engine compares it
with the replay's at the same checkpoint), the running sums with counts and histograms
exactly and sums to 1e-9 (summation order differs).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import structlog

from forum import statefile
from forum.protocol.events import Event
from forum.scores.checkpoints import StatusReference, advance
from forum.scores.documents import build_index
from forum.scores.history import ScoreHistory
from forum.scores.incremental import CheapState
from forum.scores.ledger import Ledger
from forum.store import event_from_row

if TYPE_CHECKING:
    from forum.scores.engine import ScoresEngine

log = structlog.get_logger("forum.scores.engine")

SERVING_FIELDS = ("state", "history", "cheap", "fitted", "fit_result", "reference", "_checkpoint_queued")


def apply_rows(ledger: Ledger, history: ScoreHistory, page: Sequence[tuple[int, str, str, str]], refs: list[StatusReference]) -> None:
    """Decode a page of the export and apply it (a replay: in a thread, on private objects);
    the status reference of every checkpoint passed is appended to ``refs``."""
    for seq, eid, payload, sig in page:
        ev: Event = event_from_row(payload, sig, eid)
        if c := refs[-1].due(seq - 1):  # the ledger stands at checkpoint c
            refs.append(advance(refs[-1], ledger, c))
        token = history.before(ledger, seq, ev)
        ledger.apply(seq, ev)
        history.after(ledger, seq, token)


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def _sums_differences(live: CheapState, fresh: CheapState) -> list[str]:
    out: list[str] = []
    if live.n != fresh.n or not _close(live.total, fresh.total):
        out.append(f"running sums: {live.n} ratings totalling {live.total}, the replay {fresh.n} totalling {fresh.total}")
    if live.outcomes != fresh.outcomes:
        out.append("running sums: proposals with outcome reports differ")
    if live.targets.keys() != fresh.targets.keys():
        out.append(f"running sums: {len(live.targets.keys() ^ fresh.targets.keys())} targets rated on one side only")
        return out
    for t, a in live.targets.items():
        b = fresh.targets[t]
        same = (
            a.count == b.count
            and a.histogram == b.histogram
            and _close(a.total, b.total)
            and a.criteria.keys() == b.criteria.keys()
            and all(a.criteria[k][0] == b.criteria[k][0] and _close(a.criteria[k][1], b.criteria[k][1]) for k in a.criteria)
        )
        if not same:
            out.append(f"running sums of {t} differ")
            if len(out) >= 5:
                break
    return out


def differences(live_ledger: Ledger, live_history: ScoreHistory, live_state: CheapState, fresh_ledger: Ledger, fresh_history: ScoreHistory) -> list[str]:
    """How the live state differs from a full replay at the same head (empty: they agree)."""
    out: list[str] = []
    for f in dataclasses.fields(Ledger):
        a, b = getattr(live_ledger, f.name), getattr(fresh_ledger, f.name)
        if f.name == "target_kinds":
            if any(a.get(t, k) != k for t, k in b.items()):
                out.append("ledger: target kinds differ")
        elif a != b:
            out.append(f"ledger: {f.name} differs")
    if live_history != fresh_history:
        out.append("score history differs")
    fresh_state = CheapState(live_state.prior_strength)
    fresh_state.load(fresh_ledger)
    out += _sums_differences(live_state, fresh_state)
    return out


def serving(engine: ScoresEngine) -> dict[str, Any]:
    """The serving section's content (called while the engine applies nothing): the ledger
    without its per-rating containers (what reads need: head, target kinds, remedies)."""
    big = {"history", "current", "_rating_pair", "_outcome_of"}
    led = engine.ledger
    small = Ledger(**{f.name: getattr(led, f.name) for f in dataclasses.fields(Ledger) if f.name not in big})
    return {"ledger": small, **{k: getattr(engine, k) for k in SERVING_FIELDS}}


async def restore_serving(engine: ScoresEngine) -> None:
    """Load the state file's serving section (scores answer from it at once)."""
    assert engine._statefile is not None
    restored = await statefile.restore(engine._statefile, engine.hub.head, engine.store.id_at)
    if restored is None:
        return
    header, part = restored
    engine.ledger = part["ledger"]  # the ledger's small fields (the whole one loads in the background)
    engine.state, engine.history = part["state"], part["history"]
    engine.cheap, engine.fitted, engine.fit_result = part["cheap"], part["fitted"], part["fit_result"]
    engine.reference, engine._checkpoint_queued = part["reference"], part["_checkpoint_queued"]
    engine.index = build_index(None, engine.fitted)
    engine._restored = header
    engine.metrics.state_restored_seq.labels("scores").set(header.head)
    engine.ready.set()
    log.info("scores restored from the state file", as_of_seq=header.head)


async def load_rest(engine: ScoresEngine, header: statefile.Header) -> Ledger | None:
    assert engine._statefile is not None
    try:
        rest = await asyncio.get_running_loop().run_in_executor(engine._replay_pool, engine._statefile.section, header, 1)
    except Exception as e:
        engine._statefile.ignored(f"ledger section unreadable: {e!r}")
        return None
    if not isinstance(rest, dict) or not isinstance(rest.get("ledger"), Ledger) or rest["ledger"].head != header.head:
        engine._statefile.ignored("ledger section does not match its header")
        return None
    engine._checkpoints = rest["checkpoints"]  # ledgers at checkpoints passed, not fitted yet
    return rest["ledger"]


async def save_loop(engine: ScoresEngine) -> None:
    """The scores engine's state file, written by :func:`statefile.save_loop`."""
    sf = engine._statefile
    assert sf is not None

    async def fork() -> tuple[int, statefile.Forked]:
        async with engine._apply_lock:  # nothing changes the state at the fork
            return engine.ledger.head, statefile.fork_dump(sf, lambda: _dump(engine))

    await statefile.save_loop(
        sf, "scores", head=lambda: engine.ledger.head, fork=fork, id_at=engine.store.id_at,
        metrics=engine.metrics, interval=engine.settings.state_save_interval_s,
        saved=engine._restored.head if engine._restored is not None else -1,
    )  # fmt: skip


def _remedies_into(engine: ScoresEngine, fresh: Ledger) -> None:
    """Give a replayed ledger the remedies the live one follows (as of the same seq)."""
    live, src = engine.ledger, engine._remedies
    upto = live.remedies_as_of_seq
    if src is not None and upto and src.head >= upto:
        fresh.remedied, fresh.remedies_since, fresh.remedies_as_of_seq = src.at(upto), src.since(upto), upto
    else:
        fresh.remedied, fresh.remedies_since, fresh.remedies_as_of_seq = live.remedied, live.remedies_since, upto


def _dump(engine: ScoresEngine) -> list[Any]:
    """The sections, pickled by :func:`statefile.fork_dump` in its child."""
    return [serving(engine), {"ledger": engine.ledger, "checkpoints": engine._checkpoints}]


async def verify(engine: ScoresEngine) -> None:
    """Check the restored state against a full replay of the log (in a thread); keep the replay on a mismatch."""
    loop = asyncio.get_running_loop()
    try:
        t0 = time.perf_counter()
        fresh, history, refs = await engine._full_replay(engine.ledger.head)
        async with engine._apply_lock:
            head = engine.ledger.head
            async for page in engine.store.export_kinds(engine.SCORED_KINDS, after_seq=fresh.head, up_to_seq=head):
                await loop.run_in_executor(engine._replay_pool, apply_rows, fresh, history, page, refs)
            fresh.head = head
            _remedies_into(engine, fresh)
            diffs = await loop.run_in_executor(engine._replay_pool, differences, engine.ledger, engine.history, engine.state, fresh, history)
            replayed_ref = {r.seq: r for r in refs}.get(engine.reference.seq)
            if replayed_ref is not None and replayed_ref != engine.reference:
                diffs.append(f"status reference at checkpoint {engine.reference.seq} differs")
            if diffs:
                log.warning("restored scores differ from a full replay of the log; keeping the replay", as_of_seq=head, differences=diffs[:5])
                engine.metrics.state_mismatches.labels("scores").inc()
                state = CheapState()
                await loop.run_in_executor(engine._replay_pool, state.load, fresh)
                state.version = engine.state.version + 1
                fresh.target_kinds = {**engine.ledger.target_kinds, **fresh.target_kinds}
                engine.ledger, engine.history, engine.state = fresh, history, state
                engine.reference, engine._checkpoints = refs[-1], []
                engine._checkpoint_queued = refs[-1].seq
                engine._new_ratings += 1
                engine._dirty.set()
                engine._fit_now.set()
                engine._push({*list(state.targets), *list(state.outcomes)})
            else:
                for t, k in fresh.target_kinds.items():
                    engine.ledger.target_kinds.setdefault(t, k)
        engine.metrics.state_verified.labels("scores").set(1)
        log.info("restored scores checked against a full replay", as_of_seq=head, matched=not diffs, seconds=round(time.perf_counter() - t0, 3))
    except Exception:
        log.exception("restored scores could not be checked against the log")


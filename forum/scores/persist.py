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

import dataclasses
from collections.abc import Sequence
from typing import Any

from forum.protocol.events import Event
from forum.scores.checkpoints import StatusReference, advance
from forum.scores.history import ScoreHistory
from forum.scores.incremental import CheapState
from forum.scores.ledger import Ledger
from forum.store import event_from_row

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


def serving(engine: Any) -> dict[str, Any]:
    """The serving section's content (called while the engine applies nothing): the ledger
    without its per-rating containers (what reads need: head, target kinds, remedies)."""
    big = {"history", "current", "_rating_pair", "_outcome_of"}
    led = engine.ledger
    small = Ledger(**{f.name: getattr(led, f.name) for f in dataclasses.fields(Ledger) if f.name not in big})
    return {"ledger": small, **{k: getattr(engine, k) for k in SERVING_FIELDS}}

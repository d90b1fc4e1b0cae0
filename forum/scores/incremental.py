"""Cheap scores kept current per committed batch, with work proportional to the batch.

The cheap document (:func:`forum.scores.documents.cheap_document`) recomputes
every aggregate from every current rating: right for ``forum verify`` and the
snapshot, but at 10^6 ratings about a second per rebuild. :class:`CheapState`
keeps the same per-target figures as running sums instead:

* :meth:`CheapState.apply` wraps :meth:`Ledger.apply`: it notes the current
  rating of the (rater, target) pair an event touches before and after, and
  moves that one rating's score, histogram bin and criterion scores out of and
  into the target's sums; a retracted target leaves the sums as a whole;
  ratings by agents under a remedy are not in the sums
  (:meth:`CheapState.set_remedies` moves them out and back);
  which proposals have standing outcome reports is tracked here; their summaries
  are part of the fitted document (community credibility needs rater standing);
* per-target views (``GET /api/v1/scores/{target}``, SCORES frames) read the
  sums: count, mean, shrunk mean ``(sum + m * global_mean) / (count + m)``
  with the global mean of all current ratings, histogram, criterion means;
* listings read a :class:`Ranking`: the targets sorted by a key, rebuilt
  from the sums at most once per ``min_age_s`` while they change (its
  ``ranked_as_of_seq`` says which state the order reflects; the values on a
  page are always current).

The figures equal the cheap document's up to floating-point summation order
(``forum verify`` compares means at 1e-9).
"""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass, field
from typing import Any

from forum.protocol.events import Event
from forum.scores.documents import HISTOGRAM_EDGES
from forum.scores.ledger import Ledger, RatingEntry
from raters.aggregate import PRIOR_STRENGTH


@dataclass(slots=True)
class TargetSums:
    count: int = 0
    total: float = 0.0
    histogram: list[int] = field(default_factory=lambda: [0] * (len(HISTOGRAM_EDGES) + 1))
    criteria: dict[str, list[float]] = field(default_factory=dict)  # name -> [count, sum]


class CheapState:
    """Running per-target aggregates of the ledger's current ratings."""

    def __init__(self, prior_strength: float = PRIOR_STRENGTH) -> None:
        self.targets: dict[str, TargetSums] = {}
        self.outcomes: dict[str, int] = {}  # proposal -> number of standing outcome reports
        self.n = 0
        self.total = 0.0
        self.prior_strength = prior_strength
        self.version = 0  # bumped with every change (what a Ranking is built from)

    # ------------------------------------------------------------------ updates

    def apply(self, ledger: Ledger, seq: int, ev: Event) -> set[str]:
        """Apply ``ev`` to ``ledger`` and to these sums; returns the changed targets."""
        if seq <= ledger.head:
            return set()
        pair: tuple[str, str] | None = None
        retracting: str | None = None
        if ev.kind == "rating":
            pair = (ev.author, ev.body["target"])
        elif ev.kind == "retraction":
            retracting = ev.body["target"]
            pair = ledger.rating_pair(retracting)
            if retracting in ledger.retracted:
                retracting = None
        old = ledger.current.get(pair) if pair is not None else None
        changed = ledger.apply(seq, ev)
        if pair is not None:
            new = ledger.current.get(pair)
            if new is not old and pair[1] not in ledger.retracted and pair[0] not in ledger.remedied:
                if old is not None:
                    self._remove(pair[1], old)
                if new is not None:
                    self._add(pair[1], new)
        if retracting is not None:
            self._drop(retracting)
        if ev.kind in ("outcome", "retraction"):
            for p in changed:
                self._outcome(ledger, p)
        if changed:
            self.version += 1
        return changed

    def set_remedies(self, ledger: Ledger, agents: frozenset[str], since: int, as_of_seq: int) -> set[str]:
        """Take the agents under a remedy (the set in force from seq ``since``, as of
        ``as_of_seq``) into ``ledger`` and these sums: the current ratings of newly
        remedied agents leave the sums, those of agents whose remedy ended come back.
        Returns the targets whose sums changed."""
        leaving, returning = agents - ledger.remedied, ledger.remedied - agents
        ledger.remedied, ledger.remedies_since, ledger.remedies_as_of_seq = agents, since, as_of_seq
        if not leaving and not returning:
            return set()
        changed = set()
        for (rater, target), e in list(ledger.current.items()):
            if target in ledger.retracted or (rater not in leaving and rater not in returning):
                continue
            if rater in leaving:
                self._remove(target, e)
            else:
                self._add(target, e)
            changed.add(target)
        self.version += 1
        return changed

    def load(self, ledger: Ledger) -> None:
        """Rebuild every sum from a ledger (after a replay)."""
        self.targets.clear()
        self.outcomes.clear()
        self.n, self.total = 0, 0.0
        for _, t, e in ledger.current_ratings():
            self._add(t, e)
        for p in ledger.proposals_with_outcomes():
            self._outcome(ledger, p)
        self.version += 1

    def _add(self, target: str, e: RatingEntry) -> None:
        s = self.targets.get(target)
        if s is None:
            s = self.targets[target] = TargetSums()
        s.count += 1
        s.total += e.score
        s.histogram[bisect.bisect_right(HISTOGRAM_EDGES, e.score)] += 1
        for name, score in e.criteria:
            c = s.criteria.get(name)
            if c is None:
                s.criteria[name] = [1, score]
            else:
                c[0] += 1
                c[1] += score
        self.n += 1
        self.total += e.score

    def _remove(self, target: str, e: RatingEntry) -> None:
        s = self.targets.get(target)
        if s is None:
            return
        s.count -= 1
        s.total -= e.score
        s.histogram[bisect.bisect_right(HISTOGRAM_EDGES, e.score)] -= 1
        for name, score in e.criteria:
            c = s.criteria[name]
            c[0] -= 1
            c[1] -= score
            if not c[0]:
                del s.criteria[name]
        self.n -= 1
        self.total -= e.score
        if not s.count:
            del self.targets[target]

    def _drop(self, target: str) -> None:
        s = self.targets.pop(target, None)
        self.outcomes.pop(target, None)
        if s is not None:
            self.n -= s.count
            self.total -= s.total

    def _outcome(self, ledger: Ledger, proposal: str) -> None:
        reports = ledger.outcome_reports(proposal) if proposal not in ledger.retracted else []
        if reports:
            self.outcomes[proposal] = len(reports)
        else:
            self.outcomes.pop(proposal, None)

    # ------------------------------------------------------------------ reads

    @property
    def global_mean(self) -> float:
        return self.total / self.n if self.n else 0.0

    def shrunk_mean(self, s: TargetSums) -> float:
        m = self.prior_strength
        return (s.total + m * self.global_mean) / (s.count + m)

    def part(self, target: str, kind: str) -> dict[str, Any] | None:
        """The cheap fields of ``target``'s view (None when it has no ratings and no outcomes)."""
        s = self.targets.get(target)
        if s is None:
            if target not in self.outcomes:
                return None
            return {"count": 0, "mean": None, "shrunk_mean": None, "criteria": {},
                    "histogram": [0] * (len(HISTOGRAM_EDGES) + 1)}
        return {
            "kind": kind,
            "count": s.count,
            "mean": s.total / s.count,
            "shrunk_mean": self.shrunk_mean(s),
            "criteria": {name: {"count": int(c[0]), "mean": c[1] / c[0]} for name, c in sorted(s.criteria.items())},
            "histogram": list(s.histogram),
        }


class Ranking:
    """Targets in listing order for one (sort, kind, order), and the state it was built from."""

    def __init__(self, order: list[str], version: int, fit: object, as_of_seq: int, build_s: float) -> None:
        self.order = order
        self.version = version
        self.fit = fit
        self.as_of_seq = as_of_seq
        self.build_s = build_s
        self.built = time.monotonic()

    def usable(self, version: int, fit: object, min_age_s: float) -> bool:
        """Current, or young enough: rebuilt at most every max(min_age_s, 10 x its build time)."""
        if self.version == version and self.fit is fit:
            return True
        return time.monotonic() - self.built < max(min_age_s, 10 * self.build_s)

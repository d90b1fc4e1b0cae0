"""From the log to what the raters score (pure, no I/O).

The forum's score engine and ``forum verify`` both feed events, in seq order,
into a :class:`Ledger`, so the rules that turn the log into rater input live in
one place:

* the current rating of a (rater, target) pair is its latest rating by
  ``created_at``, ties broken by ``seq``; a retracted rating no longer counts and
  the latest one still standing takes its place;
* ratings of a retracted event, and retracted outcome reports, leave the scores;
* a proposal's outcome reports are its non-retracted ``outcome`` events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from forum.protocol.events import Event


@dataclass(frozen=True, slots=True)
class RatingEntry:
    created_at: int
    seq: int
    event_id: str
    score: float
    criteria: tuple[tuple[str, float], ...]


@dataclass
class Ledger:
    head: int = 0
    history: dict[tuple[str, str], list[RatingEntry]] = field(default_factory=dict)
    current: dict[tuple[str, str], RatingEntry] = field(default_factory=dict)
    retracted: set[str] = field(default_factory=set)
    outcomes: dict[str, dict[str, tuple[int, str, dict[str, Any]]]] = field(default_factory=dict)
    target_kinds: dict[str, str] = field(default_factory=dict)
    _rating_pair: dict[str, tuple[str, str]] = field(default_factory=dict)
    _outcome_of: dict[str, str] = field(default_factory=dict)

    def apply(self, seq: int, ev: Event) -> set[str]:
        """Apply one event (seqs must increase); returns the targets whose inputs changed."""
        if seq <= self.head:
            return set()
        self.head = seq
        if ev.kind in ("proposal", "outcome", "agent", "community", "criterion", "reply", "amendment", "adoption"):
            self.target_kinds.setdefault(ev.id, ev.kind)
        if ev.kind == "rating":
            b = ev.body
            pair = (ev.author, b["target"])
            entry = RatingEntry(ev.created_at, seq, ev.id, float(b["score"]), tuple(sorted((k, float(v)) for k, v in b["criteria"].items())))
            self.history.setdefault(pair, []).append(entry)
            self._rating_pair[ev.id] = pair
            cur = self.current.get(pair)
            if cur is None or (entry.created_at, entry.seq) > (cur.created_at, cur.seq):
                self.current[pair] = entry
                return {pair[1]}
            return set()
        if ev.kind == "outcome":
            proposal = ev.body["proposal"]
            self.outcomes.setdefault(proposal, {})[ev.id] = (seq, ev.author, ev.body)
            self._outcome_of[ev.id] = proposal
            return {proposal}
        if ev.kind == "retraction":
            target = ev.body["target"]
            self.retracted.add(target)
            changed = {target}
            if target in self._rating_pair:
                pair = self._rating_pair[target]
                standing = [e for e in self.history[pair] if e.event_id not in self.retracted]
                if standing:
                    self.current[pair] = max(standing, key=lambda e: (e.created_at, e.seq))
                else:
                    self.current.pop(pair, None)
                changed = {pair[1]}
            elif target in self._outcome_of:
                proposal = self._outcome_of[target]
                self.outcomes[proposal].pop(target, None)
                changed = {proposal}
            return changed
        return set()

    def snapshot(self) -> Ledger:
        """A copy that later :meth:`apply` calls do not touch (for computing in a thread)."""
        return Ledger(
            head=self.head,
            current=dict(self.current),
            retracted=set(self.retracted),
            outcomes={p: dict(r) for p, r in self.outcomes.items()},
            target_kinds=dict(self.target_kinds),
        )

    def current_ratings(self) -> list[tuple[str, str, RatingEntry]]:
        """(rater, target, entry) for every current rating whose target is not retracted."""
        return [(r, t, e) for (r, t), e in self.current.items() if t not in self.retracted]

    def outcome_reports(self, proposal: str) -> list[dict[str, Any]]:
        """The proposal's standing outcome reports, as raters.outcomes expects them."""
        return [
            {
                "community": author,
                "status": body["status"],
                "verdict": body["verdict"],
                "metrics": body["metrics"],
                "seq": seq,
            }
            for seq, author, body in sorted(self.outcomes.get(proposal, {}).values(), key=lambda x: x[0])
        ]

    def proposals_with_outcomes(self) -> list[str]:
        return sorted(p for p, reps in self.outcomes.items() if reps and p not in self.retracted)

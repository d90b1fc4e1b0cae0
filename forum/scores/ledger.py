"""From the log to what the raters score (pure, no I/O).

The forum's score engine and ``forum verify`` both feed events, in seq order,
into a :class:`Ledger`, so the rules that turn the log into rater input live in
one place:

* the current rating of a (rater, target) pair is its latest rating by
  ``created_at``, ties broken by ``seq``; a retracted rating no longer counts and
  the latest one still standing takes its place;
* ratings of a retracted event, and retracted outcome reports, leave the scores;
* a proposal's outcome reports are its non-retracted ``outcome`` events;
* (governance) a community's current profile is its latest non-retracted
  ``community`` event by ``created_at``, then seq; its rule set is every proposal
  whose latest non-retracted adoption by it (``start``, then ``created_at``, then
  seq) adopts it. ``gov_seq`` is the seq of the last event that changed either, or
  an outcome: what "communities like yours" depends on.
* the **rater clock**: ``clock`` counts ratings made by established raters (every
  rating while fewer than ``CLOCK_BOOT`` raters are established); a rater's age is
  the clock now minus the clock at its first rating, and it is established once that
  age reaches ``raters.standing.ESTABLISH_AGE``.  Fresh keys cannot advance the clock,
  so they stay young however much they rate;
* a community's age starts at its first ``community`` profile's seq; a proposal's
  author is remembered (its own outcome reports are not pooled, and it implicitly
  agrees with it in the opinion groups).
* **remedies** (docs/arbitration.md 3.5): ``remedied`` is the set of agents under
  an upheld verdict, in force from ``remedies_since`` (the seq of the verdict that
  made it so, 0 for none) as of ``remedies_as_of_seq`` (taken from the
  arbitration, :class:`forum.values.remedies.Remedies`, never beyond ``head``);
  their ratings stay in the ledger (an appeal that overturns the verdict brings
  them back) but leave :meth:`Ledger.current_ratings`, so every score pool.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from forum.protocol.events import Event
from raters.standing import ESTABLISH_AGE

CLOCK_BOOT = 5


@dataclass(frozen=True, slots=True)
class RatingEntry:
    created_at: int
    seq: int
    event_id: str
    score: float
    criteria: tuple[tuple[str, float], ...]

    def __reduce__(self) -> tuple[type[RatingEntry], tuple[int, int, str, float, tuple[tuple[str, float], ...]]]:
        """Pickled as a constructor call: the dataclass's own ``__setstate__`` (frozen, slots)
        calls ``dataclasses.fields`` for every entry; a state file's ledger section (one entry
        per rating) loads ~1.5 times faster this way."""
        return (RatingEntry, (self.created_at, self.seq, self.event_id, self.score, self.criteria))


@dataclass
class Ledger:
    head: int = 0
    history: dict[tuple[str, str], list[RatingEntry]] = field(default_factory=dict)
    current: dict[tuple[str, str], RatingEntry] = field(default_factory=dict)
    retracted: set[str] = field(default_factory=set)
    outcomes: dict[str, dict[str, tuple[int, str, dict[str, Any]]]] = field(default_factory=dict)
    target_kinds: dict[str, str] = field(default_factory=dict)
    community_since: dict[str, int] = field(default_factory=dict)
    proposal_author: dict[str, str] = field(default_factory=dict)
    clock: int = 0
    rater_born: dict[str, int] = field(default_factory=dict)
    n_established: int = 0
    _established: set[str] = field(default_factory=set)
    _rating_pair: dict[str, tuple[str, str]] = field(default_factory=dict)
    _outcome_of: dict[str, str] = field(default_factory=dict)
    # --- governance: community profiles and adoptions
    profiles: dict[str, dict[str, tuple[int, int, dict[str, Any]]]] = field(default_factory=dict)
    adoptions: dict[str, tuple[int, str, dict[str, Any], int]] = field(default_factory=dict)
    gov_seq: int = 0
    # --- arbitration: agents whose ratings are out of the pools
    remedied: frozenset[str] = frozenset()
    remedies_since: int = 0
    remedies_as_of_seq: int = 0

    def apply(self, seq: int, ev: Event) -> set[str]:
        """Apply one event (seqs must increase); returns the targets whose inputs changed."""
        if seq <= self.head:
            return set()
        self.head = seq
        if ev.kind in ("proposal", "outcome", "agent", "community", "criterion", "reply", "amendment", "adoption"):
            self.target_kinds.setdefault(ev.id, ev.kind)
        if ev.kind == "community":
            self.community_since.setdefault(ev.author, seq)
        if ev.kind == "proposal":
            self.proposal_author[ev.id] = ev.author
            return set()
        if ev.kind == "rating":
            self._tick(ev.author)
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
        if ev.kind in ("community", "adoption"):
            self._apply_governance(seq, ev)
            return {ev.author} if ev.kind == "community" else {ev.body["proposal"]}
        if ev.kind == "outcome":
            self.gov_seq = seq
            proposal = ev.body["proposal"]
            self.outcomes.setdefault(proposal, {})[ev.id] = (seq, ev.author, ev.body)
            self._outcome_of[ev.id] = proposal
            return {proposal}
        if ev.kind == "retraction":
            target = ev.body["target"]
            self.retracted.add(target)
            self.gov_seq = seq  # cheap to over-approximate: a retraction may withdraw a profile or adoption
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

    def rating_pair(self, event_id: str) -> tuple[str, str] | None:
        """(rater, target) of a rating event this ledger has applied (None otherwise)."""
        return self._rating_pair.get(event_id)

    def _tick(self, rater: str) -> None:
        born = self.rater_born.setdefault(rater, self.clock)
        if rater not in self._established and self.clock - born >= ESTABLISH_AGE:
            self._established.add(rater)
            self.n_established += 1
        if rater in self._established or self.n_established < CLOCK_BOOT:
            self.clock += 1

    def age(self, rater: str) -> int:
        """The rater's age on the rater clock (0 for a rater never seen)."""
        return self.clock - self.rater_born.get(rater, self.clock)

    def snapshot(self) -> Ledger:
        """A copy that later :meth:`apply` calls do not touch (for computing in a thread)."""
        return Ledger(
            head=self.head,
            current=dict(self.current),
            retracted=set(self.retracted),
            outcomes={p: dict(r) for p, r in self.outcomes.items()},
            target_kinds=dict(self.target_kinds),
            profiles={a: dict(p) for a, p in self.profiles.items()},
            adoptions=dict(self.adoptions),
            gov_seq=self.gov_seq,
            community_since=dict(self.community_since),
            proposal_author=dict(self.proposal_author),
            clock=self.clock,
            rater_born=dict(self.rater_born),
            n_established=self.n_established,
            remedied=self.remedied,
            remedies_since=self.remedies_since,
            remedies_as_of_seq=self.remedies_as_of_seq,
        )

    def current_ratings(self) -> list[tuple[str, str, RatingEntry]]:
        """(rater, target, entry) for every current rating whose target is not retracted,
        by a rater not under a remedy."""
        out = self.remedied
        return [(r, t, e) for (r, t), e in self.current.items() if t not in self.retracted and r not in out]

    def counts(self, rater: str) -> bool:
        """Whether ``rater``'s ratings are in the pools (not under a remedy)."""
        return rater not in self.remedied

    def remedies_section(self) -> dict[str, object]:
        """What the score documents state about remedies (``forum verify`` recomputes it):
        the agents left out and the seq of the verdict from which that set holds."""
        return {"since_seq": self.remedies_since, "agents": sorted(self.remedied)}

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

    def reports_by(self) -> dict[str, list[str]]:
        """Community did:key -> ids of its standing outcome reports."""
        out: dict[str, list[str]] = {}
        for reps in self.outcomes.values():
            for eid, (_, author, _) in reps.items():
                out.setdefault(author, []).append(eid)
        return out

    def proposals_with_outcomes(self) -> list[str]:
        return sorted(p for p, reps in self.outcomes.items() if reps and p not in self.retracted)

    # ------------------------------------------------------------------ governance

    def _apply_governance(self, seq: int, ev: Event) -> None:
        self.gov_seq = seq
        if ev.kind == "community":
            self.profiles.setdefault(ev.author, {})[ev.id] = (ev.created_at, seq, ev.body)
        else:
            self.adoptions[ev.id] = (seq, ev.author, ev.body, ev.created_at)

    def community_profile(self, did: str) -> dict[str, Any] | None:
        """The current community profile of ``did`` (None if it has none)."""
        standing = [(c, s, b) for eid, (c, s, b) in self.profiles.get(did, {}).items() if eid not in self.retracted]
        return max(standing, key=lambda x: (x[0], x[1]))[2] if standing else None

    def rule_set(self, did: str) -> dict[str, tuple[str, dict[str, Any]]]:
        """proposal -> (adoption id, body) of every proposal ``did`` currently runs."""
        latest: dict[str, tuple[tuple[str, int, int], str, dict[str, Any]]] = {}
        for eid, (seq, author, body, created_at) in self.adoptions.items():
            if author != did or eid in self.retracted:
                continue
            key = (body["start"], created_at, seq)
            cur = latest.get(body["proposal"])
            if cur is None or key > cur[0]:
                latest[body["proposal"]] = (key, eid, body)
        return {p: (eid, body) for p, (_, eid, body) in sorted(latest.items()) if body["action"] == "adopt"}

    def latest_reports(self) -> dict[str, dict[str, tuple[str, str | None]]]:
        """proposal -> community -> (status, verdict) of its latest standing report."""
        out: dict[str, dict[str, tuple[str, str | None]]] = {}
        for proposal, reps in self.outcomes.items():
            if proposal in self.retracted:
                continue
            by: dict[str, tuple[str, str | None]] = {}
            for _seq, author, body in sorted(reps.values(), key=lambda x: x[0]):
                by[author] = (body["status"], body["verdict"])
            if by:
                out[proposal] = by
        return out

    def community_dids(self) -> list[str]:
        return sorted(d for d in self.profiles if self.community_profile(d) is not None)

    def ever_adopted(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for eid, (_seq, author, body, _c) in self.adoptions.items():
            if eid not in self.retracted and body["action"] == "adopt":
                out.setdefault(author, set()).add(body["proposal"])
        return out

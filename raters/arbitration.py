"""Cases, layers, juries and verdicts, derived from the log (pure; docs/arbitration.md).

:class:`Arbitration` is fed every event of the log in seq order
(:meth:`Arbitration.apply`, plain :class:`Record` values) and keeps every case's
state; :meth:`Arbitration.document` is the arbitration document the forum
serves and ``forum verify`` recomputes. Deadlines are counted in seqs (log
time), never in clock time, so the same log always gives the same document.

A case's life (every rule and threshold is in :class:`Rules` and docs/arbitration.md):

1. ``open``: a ``flag`` is a negotiation question until enough independent,
   established raters across opinion groups assess it as a rights question
   (``assessment`` events within ``assess_window`` seqs). If the window closes
   first the case is ``dismissed`` in the ``negotiation`` (or ``benign``) layer.
2. ``drawing``: once qualified, the draw waits for the first events of
   ``seed_authors`` distinct established non-party authors committed after the
   qualifying seq; their did:keys and *anchors* (each one's latest event id at or
   before the qualifying seq) seed the draw (:mod:`raters.juries`); the ids of the
   events they publish after it do not, so no one can grind them.
3. ``commit``: each seat's juror has ``commit_window`` seqs to publish a
   ``commitment``; a seat whose juror did not is given to the next candidate.
4. ``reveal``: once every seat has a commitment (or no candidate is left),
   jurors have ``reveal_window`` seqs to publish the ``reveal``; only reveals
   whose hash matches the commitment count.
5. ``decided``: the tally gives the verdict; a party may ``appeal`` within
   ``appeal_window`` seqs: round 1, a larger jury drawn the same way (without
   the round-0 jurors). The last verdict is final.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, ClassVar, Final

import numpy as np

from raters.groups import opinion_groups
from raters.juries import Candidate, draw_order, draw_seed, seed_input, tally, vote_hash
from raters.ratings import Ratings

FINAL: Final = frozenset({"dismissed", "withdrawn", "closed"})
_CASE_KINDS: Final = frozenset({"flag", "assessment", "commitment", "reveal", "appeal", "retraction"})
"""Kinds whose handlers may change a case's deadlines."""
"""Statuses a case never leaves."""
ALGORITHM: Final = "arbitration"
VERSION: Final = 2
"""2: seeds from contributors' did and anchor (their latest event before the round), not
from the ids of the events they publish after it (the last contributor could grind those)."""


@dataclass(frozen=True)
class Rules:
    """Every threshold of arbitration (published in the document; docs/arbitration.md)."""

    min_age: int = 200
    """Established: the agent's first event is at least this many seqs before the reference seq."""
    min_events: int = 3
    """Established: at least this many events in the log."""
    assess_window: int = 2000
    min_rights: int = 3
    min_groups: int = 2
    rights_share: float = 2 / 3
    seed_authors: int = 5
    jury_sizes: tuple[int, int] = (5, 9)
    min_jury: int = 3
    commit_window: int = 1000
    reveal_window: int = 1000
    appeal_window: int = 2000

    WINDOWS: ClassVar[tuple[str, ...]] = ("min_age", "assess_window", "commit_window", "reveal_window", "appeal_window")

    def scaled(self, factor: float) -> Rules:
        """The same rules with every seq window (and ``min_age``) multiplied by ``factor``
        (rounded, at least 1): a quiet forum wants shorter windows, a busy one longer."""
        return replace(self, **{w: max(1, round(getattr(self, w) * factor)) for w in self.WINDOWS})

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Rules:
        """The rules a cases document states (``document()["rules"]``)."""
        kw = {f.name: d[f.name] for f in fields(cls) if f.name in d}
        if "jury_sizes" in kw:
            kw["jury_sizes"] = tuple(kw["jury_sizes"])
        return cls(**kw)


@dataclass(frozen=True, slots=True)
class Record:
    """One event of the log, as the arbitration needs it."""

    seq: int
    id: str
    author: str
    kind: str
    created_at: int
    body: Mapping[str, Any]


@dataclass
class Seat:
    seat: int
    juror: str
    group: int
    summoned_seq: int
    deadline: int
    status: str = "summoned"  # summoned, committed, replaced
    commitment: str | None = None
    hash: str | None = None


@dataclass
class Round:
    round: int
    opened_seq: int
    contributors: frozenset[str]
    pool: dict[str, int]
    anchors: dict[str, str]  # contributor -> id of its latest event at or before opened_seq
    grouping_seq: int
    seed_events: list[tuple[str, str]] = field(default_factory=list)  # (author, id)
    seed: str | None = None
    drawn_seq: int | None = None
    order: list[Candidate] = field(default_factory=list)
    next_candidate: int = 0
    seats: list[Seat] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    commit_closed_seq: int | None = None
    reveal_deadline: int | None = None
    votes: dict[str, dict[str, Any]] = field(default_factory=dict)
    revealed: set[str] = field(default_factory=set)
    other_reveals: list[dict[str, Any]] = field(default_factory=list)
    decided_seq: int | None = None
    tally: dict[str, Any] | None = None


@dataclass
class Case:
    id: str
    seq: int
    flagger: str
    target: str
    right: str
    parties: tuple[str, ...]
    party_owners: frozenset[str]
    status: str = "open"
    layer: str = "negotiation"
    layer_reason: str = ""
    assessments: list[dict[str, Any]] = field(default_factory=list)
    assessors: set[str] = field(default_factory=set)
    assessor_owners: set[str] = field(default_factory=set)
    ignored_assessments: int = 0
    qualified_seq: int | None = None
    rounds: list[Round] = field(default_factory=list)
    verdict: dict[str, Any] | None = None
    appeal: dict[str, Any] | None = None
    appeal_deadline: int | None = None
    closed_seq: int | None = None


def _owner(name: str | None) -> str | None:
    return " ".join(name.split()).casefold() if name and name.strip() else None


class Arbitration:
    """The arbitration state machine: :meth:`apply` every event in seq order."""

    def __init__(self, rules: Rules | None = None) -> None:
        self.rules = rules or Rules()
        self.head = 0
        self.first_seq: dict[str, int] = {}
        self.n_events: dict[str, int] = {}
        self.owner: dict[str, str | None] = {}
        self.author_of: dict[str, str] = {}
        self.last_id: dict[str, str] = {}  # author -> id of its latest event
        self.kind_of: dict[str, str] = {}
        self.cases: dict[str, Case] = {}
        self.commitment_of: dict[str, tuple[str, int, str, str]] = {}  # id -> case, round, juror, hash
        # current ratings (latest per rater and target by created_at, then seq), for opinion groups
        self._rating: dict[str, tuple[str, str, int, int, float]] = {}
        self._history: dict[tuple[str, str], list[str]] = {}
        self._current: dict[tuple[str, str], str] = {}
        self._retracted: set[str] = set()
        self._ratings_version = 0
        self._groups: tuple[int, int, dict[str, int], int] | None = None  # version, seq, labels, k
        self.group_fits = 0
        self.verdicts = 0
        """How many verdicts were reached so far (a new one may change the remedies in force)."""
        self._sanctioned: frozenset[str] = frozenset()
        self._live: list[Case] = []
        self._wake: float = math.inf

    # ------------------------------------------------------------------ eligibility

    def established(self, did: str, at_seq: int) -> bool:
        first = self.first_seq.get(did)
        return first is not None and first <= at_seq - self.rules.min_age and self.n_events.get(did, 0) >= self.rules.min_events

    def sanctioned(self) -> frozenset[str]:
        """Agents under a remedy in force: not eligible as assessors, contributors or jurors,
        their ratings left out of the opinion groups here and out of the score pools
        (forum/scores/ledger.py). Changes only when a verdict is reached."""
        return self._sanctioned

    def groups(self, seq: int) -> tuple[dict[str, int], int, int]:
        """Opinion group of every rater from the current ratings (did -> group), k, and the
        seq the grouping is of. Refit only when the ratings changed."""
        if self._groups is not None and self._groups[0] == self._ratings_version:
            return self._groups[2], self._groups[3], self._groups[1]
        rows = [
            r for i in self._current.values()
            if (r := self._rating[i])[1] not in self._retracted and r[0] not in self._sanctioned
        ]  # fmt: skip
        raters = sorted({r[0] for r in rows})
        targets = sorted({r[1] for r in rows})
        labels: dict[str, int] = {}
        k = 0
        if rows:
            ri = {d: i for i, d in enumerate(raters)}
            ti = {t: i for i, t in enumerate(targets)}
            ratings = Ratings.build(
                np.array([ri[r[0]] for r in rows], np.int64),
                np.array([ti[r[1]] for r in rows], np.int64),
                np.array([r[4] for r in rows], np.float64),
                len(raters),
                len(targets),
            )
            g = opinion_groups(ratings)
            k = g.k
            labels = {d: int(g.labels[i]) for i, d in enumerate(raters)}
            self.group_fits += 1
        self._groups = (self._ratings_version, seq, labels, k)
        return labels, k, seq

    @staticmethod
    def _label(labels: Mapping[str, int], k: int, did: str) -> int:
        return 0 if k == 0 else labels.get(did, -1)

    # ------------------------------------------------------------------ the stream

    def apply(self, rec: Record) -> None:
        if rec.seq <= self.head:
            return
        self.head = rec.seq
        if rec.seq > self._wake:  # some case's deadline passed: apply them (in deadline order)
            for case in self._live:
                self._deadlines(case, rec.seq)
            self._live = [c for c in self._live if c.status not in FINAL]
            self._rewake()
        a = rec.author
        self.first_seq.setdefault(a, rec.seq)
        self.n_events[a] = self.n_events.get(a, 0) + 1
        self.author_of[rec.id] = a
        self.kind_of[rec.id] = rec.kind
        self.last_id[a] = rec.id
        handler = _HANDLERS.get(rec.kind)
        if handler is not None:
            handler(self, rec)
        drawn = False
        for case in self._live:
            if case.status == "drawing":
                drawn = self._seed(case, rec) or drawn
        if drawn or rec.kind in _CASE_KINDS:
            self._live = [c for c in self._live if c.status not in FINAL]
            self._rewake()

    def _rewake(self) -> None:
        """The next seq at which a deadline of a live case can pass (nothing to do before)."""
        r, wake = self.rules, math.inf
        for c in self._live:
            if c.status == "open":
                wake = min(wake, c.seq + r.assess_window)
            elif c.status == "commit":
                wake = min(wake, *(s.deadline for s in c.rounds[-1].seats if s.status == "summoned"), math.inf)
            elif c.status == "reveal" and c.rounds[-1].reveal_deadline is not None:
                wake = min(wake, c.rounds[-1].reveal_deadline)
            elif c.status == "decided" and c.appeal_deadline is not None:
                wake = min(wake, c.appeal_deadline)
        self._wake = wake

    def _on_agent(self, rec: Record) -> None:
        self.owner[rec.author] = _owner(rec.body.get("owner"))

    def _on_rating(self, rec: Record) -> None:
        pair = (rec.author, rec.body["target"])
        self._rating[rec.id] = (rec.author, pair[1], rec.created_at, rec.seq, float(rec.body["score"]))
        self._history.setdefault(pair, []).append(rec.id)
        cur = self._current.get(pair)
        if cur is None or self._rating[rec.id][2:4] > self._rating[cur][2:4]:
            self._current[pair] = rec.id
            self._ratings_version += 1

    def _on_retraction(self, rec: Record) -> None:
        target = rec.body["target"]
        self._retracted.add(target)
        self._ratings_version += 1
        if target in self._rating:
            r = self._rating[target]
            pair = (r[0], r[1])
            standing = [i for i in self._history[pair] if i not in self._retracted]
            if standing:
                self._current[pair] = max(standing, key=lambda i: self._rating[i][2:4])
            else:
                self._current.pop(pair, None)
        case = self.cases.get(target)
        if case is not None and case.verdict is None and case.status not in FINAL:
            case.status = "withdrawn"
            case.closed_seq = rec.seq
            case.layer_reason = case.layer_reason or "the flagger retracted the flag"

    def _on_flag(self, rec: Record) -> None:
        b = rec.body
        target = b["target"]
        target_party = target if target.startswith("did:") else self.author_of.get(target, "")
        parties = tuple(p for p in (rec.author, target_party) if p)
        owners = frozenset(o for p in parties if (o := self.owner.get(p)))
        self.cases[rec.id] = case = Case(rec.id, rec.seq, rec.author, target, b["right"], parties, owners)
        self._live.append(case)

    def _on_assessment(self, rec: Record) -> None:
        case = self.cases.get(rec.body["flag"])
        if case is None or case.status != "open":
            if case is not None:
                case.ignored_assessments += 1
            return
        owner = self.owner.get(rec.author)
        ok = (
            rec.author not in case.parties
            and rec.author not in case.assessors
            and (owner is None or (owner not in case.assessor_owners and owner not in case.party_owners))
            and self.established(rec.author, case.seq)
            and rec.author not in self.sanctioned()
        )
        if not ok:
            case.ignored_assessments += 1
            return
        case.assessors.add(rec.author)
        if owner:
            case.assessor_owners.add(owner)
        case.assessments.append({"id": rec.id, "author": rec.author, "layer": rec.body["layer"], "seq": rec.seq})
        self._check_qualified(case, rec.seq)

    def _check_qualified(self, case: Case, seq: int) -> None:
        r = self.rules
        rights = [x for x in case.assessments if x["layer"] == "rights"]
        n = len(case.assessments)
        if len(rights) < r.min_rights or len(rights) < r.rights_share * n:
            return
        labels, k, gseq = self.groups(seq)
        for x in case.assessments:
            x["group"] = self._label(labels, k, x["author"])
        diverse = {x["group"] for x in rights if x["group"] >= 0}
        need = min(r.min_groups, max(k, 1))
        if len(diverse) < need:
            return
        case.status = "drawing"
        case.layer = "rights"
        case.qualified_seq = seq
        case.layer_reason = (
            f"{len(rights)} of {n} counted assessors called it a rights question, from {len(diverse)} opinion "
            f"group(s); the rule needs {r.min_rights} from {need} group(s) and a {r.rights_share:.0%} share"
        )
        self._open_round(case, 0, seq, (labels, k, gseq))

    def _open_round(self, case: Case, n: int, seq: int, grouping: tuple[dict[str, int], int, int] | None = None) -> None:
        labels, k, gseq = grouping or self.groups(seq)
        sanctioned = self.sanctioned()
        past = {s.juror for rnd in case.rounds for s in rnd.seats}
        contributors = frozenset(
            d for d in self.first_seq
            if self.established(d, seq) and d not in case.parties and d not in sanctioned
            and (self.owner.get(d) is None or self.owner.get(d) not in case.party_owners)
        )  # fmt: skip
        pool = {d: self._label(labels, k, d) for d in sorted(contributors) if d not in past}
        anchors = {d: self.last_id[d] for d in contributors}
        case.rounds.append(Round(n, seq, contributors, pool, anchors, gseq))
        case.status = "drawing"

    def _seed(self, case: Case, rec: Record) -> bool:
        """Count ``rec`` towards the seed; True when it completed the draw."""
        if case.status != "drawing" or not case.rounds:
            return False
        rnd = case.rounds[-1]
        if rec.seq <= rnd.opened_seq or rec.author not in rnd.contributors:
            return False
        if any(a == rec.author for a, _ in rnd.seed_events):
            return False
        rnd.seed_events.append((rec.author, rec.id))
        if len(rnd.seed_events) < self.rules.seed_authors:
            return False
        rnd.seed = draw_seed(case.id, rnd.round, [seed_input(a, rnd.anchors[a]) for a, _ in rnd.seed_events])
        rnd.drawn_seq = rec.seq
        rnd.order = draw_order(rnd.seed, rnd.pool, self.owner, case.party_owners)
        size = min(self.rules.jury_sizes[rnd.round], len(rnd.order))
        if size < self.rules.min_jury:
            case.status = "closed"
            case.closed_seq = rec.seq
            case.layer_reason += f"; no jury: only {len(rnd.order)} eligible juror(s)"
            return True
        for i in range(size):
            self._summon(rnd, i, rec.seq, rec.seq + self.rules.commit_window)
        case.status = "commit"
        return True

    def _summon(self, rnd: Round, seat: int, at: int, deadline: int) -> bool:
        if rnd.next_candidate >= len(rnd.order):
            return False
        c = rnd.order[rnd.next_candidate]
        rnd.next_candidate += 1
        s = Seat(seat, c.did, c.group, at, deadline)
        if seat < len(rnd.seats):
            rnd.seats[seat] = s
        else:
            rnd.seats.append(s)
        return True

    def _on_commitment(self, rec: Record) -> None:
        b = rec.body
        case = self.cases.get(b["case"])
        if case is None or case.status != "commit" or case.rounds[-1].round != b["round"]:
            return
        rnd = case.rounds[-1]
        for s in rnd.seats:
            if s.juror == rec.author and s.status == "summoned" and rec.seq <= s.deadline:
                s.status, s.commitment, s.hash = "committed", rec.id, b["hash"]
                self.commitment_of[rec.id] = (case.id, rnd.round, rec.author, b["hash"])
                if all(x.status in ("committed", "empty") for x in rnd.seats):
                    self._close_commit(rnd, rec.seq)
                    case.status = "reveal"
                return

    def _close_commit(self, rnd: Round, seq: int) -> None:
        rnd.commit_closed_seq = seq
        rnd.reveal_deadline = seq + self.rules.reveal_window

    def _on_reveal(self, rec: Record) -> None:
        b = rec.body
        ref = self.commitment_of.get(b["commitment"])
        if ref is None:
            return
        case_id, n, juror, h = ref
        case = self.cases[case_id]
        rnd = case.rounds[n]
        if juror in rnd.revealed:
            return
        entry = {"juror": juror, "reveal": rec.id, "seq": rec.seq, "vote": b["vote"], "reason": b["reason"]}
        if case.status != "reveal" or rnd.reveal_deadline is None or case.rounds[-1] is not rnd:
            rnd.other_reveals.append({**entry, "status": "early" if rnd.decided_seq is None else "late"})
            return
        # A juror's first reveal within the reveal phase is final: counted if it matches, never otherwise.
        rnd.revealed.add(juror)
        if vote_hash(juror, case_id, n, b["vote"], b["salt"], b["reason"]) != h:
            rnd.other_reveals.append({**entry, "status": "mismatch"})
        else:
            rnd.votes[juror] = {**entry, "status": "counted"}
        if len(rnd.revealed) == sum(1 for s in rnd.seats if s.status == "committed"):
            self._decide(case, rnd, rec.seq)

    def _on_appeal(self, rec: Record) -> None:
        case = self.cases.get(rec.body["case"])
        if (
            case is None or case.status != "decided" or case.appeal is not None
            or rec.author not in case.parties or case.appeal_deadline is None or rec.seq > case.appeal_deadline
        ):  # fmt: skip
            return
        case.appeal = {"id": rec.id, "author": rec.author, "seq": rec.seq}
        self._open_round(case, 1, rec.seq)

    # ------------------------------------------------------------------ log time

    def _deadlines(self, case: Case, seq: int) -> None:
        """Apply every deadline that passed before ``seq`` (in deadline order)."""
        r = self.rules
        if case.status == "open" and seq > case.seq + r.assess_window:
            counts = {lay: sum(1 for x in case.assessments if x["layer"] == lay) for lay in ("benign", "negotiation", "rights")}
            case.layer = "benign" if counts["benign"] > counts["negotiation"] else "negotiation"
            case.status = "dismissed"
            case.closed_seq = case.seq + r.assess_window
            case.layer_reason = (
                f"not a rights question: {counts['rights']} of {len(case.assessments)} counted assessors called it "
                f"one within {r.assess_window} seqs (the rule needs {r.min_rights} from {r.min_groups} opinion groups "
                f"and a {r.rights_share:.0%} share); answer it with arguments, not arbitration"
            )
            return
        if not case.rounds:
            return
        rnd = case.rounds[-1]
        while case.status == "commit":
            late = [s for s in rnd.seats if s.status == "summoned" and s.deadline < seq]
            if not late:
                break
            s = min(late, key=lambda x: (x.deadline, x.seat))
            s.status = "replaced"
            rnd.history.append(asdict(s))
            if not self._summon(rnd, s.seat, s.deadline, s.deadline + r.commit_window):
                rnd.seats[s.seat] = Seat(s.seat, "", -1, s.deadline, s.deadline, "empty")
            if all(x.status in ("committed", "empty") for x in rnd.seats):
                self._close_commit(rnd, s.deadline)
                case.status = "reveal"
        if case.status == "reveal" and rnd.reveal_deadline is not None and seq > rnd.reveal_deadline:
            self._decide(case, rnd, rnd.reveal_deadline)
        if case.status == "decided" and case.appeal_deadline is not None and seq > case.appeal_deadline:
            case.status = "closed"
            case.closed_seq = case.appeal_deadline

    def _decide(self, case: Case, rnd: Round, seq: int) -> None:
        seats = sum(1 for s in rnd.seats if s.status != "empty") or len(rnd.seats)
        t = tally([v["vote"] for v in rnd.votes.values()], max(seats, 1))
        rnd.decided_seq = seq
        rnd.tally = asdict(t)
        upheld = t.verdict == "upheld"
        case.verdict = {
            "round": rnd.round,
            "verdict": t.verdict,
            "seq": seq,
            "rule": f"upheld by a strict majority of the {t.counted} counted votes (quorum {t.quorum} of {seats} seats); "
            "a tie dismisses; only reveals matching their commitment count",
            "remedy": {
                "label": f"rights violation ({case.right}) upheld by jury",
                "delisted": True,
                "score_pools": "removed",
            } if upheld else None,
        }  # fmt: skip
        self.verdicts += 1
        self._sanctioned = frozenset(
            c.target for c in self.cases.values() if c.verdict and c.verdict["remedy"] and c.target.startswith("did:")
        )
        self._ratings_version += 1  # the groups leave out agents under a remedy
        if rnd.round == 0:
            case.status = "decided"
            case.appeal_deadline = seq + self.rules.appeal_window
        else:
            case.status = "closed"
            case.closed_seq = seq

    # ------------------------------------------------------------------ the document

    def document(self) -> dict[str, Any]:
        cases = [_case_doc(c) for c in sorted(self.cases.values(), key=lambda c: c.seq)]
        remedies = {
            c.target: {"case": c.id, "label": c.verdict["remedy"]["label"], "since_seq": c.verdict["seq"]}
            for c in sorted(self.cases.values(), key=lambda c: c.seq)
            if c.verdict and c.verdict["remedy"]
        }
        rules = asdict(self.rules)
        rules["jury_sizes"] = list(self.rules.jury_sizes)
        return {"algorithm": ALGORITHM, "version": VERSION, "as_of_seq": self.head, "rules": rules,
                "cases": cases, "remedies": remedies}  # fmt: skip


def _round_doc(r: Round) -> dict[str, Any]:
    return {
        "round": r.round,
        "opened_seq": r.opened_seq,
        "grouping_seq": r.grouping_seq,
        "pool": {"size": len(r.pool), "strata": {str(g): sum(1 for x in r.pool.values() if x == g) for g in sorted(set(r.pool.values()))}},
        "contributors": len(r.contributors),
        "seed": {"events": sorted(i for _, i in r.seed_events), "authors": [a for a, _ in r.seed_events],
                 "inputs": sorted(seed_input(a, r.anchors[a]) for a, _ in r.seed_events),
                 "value": r.seed, "drawn_seq": r.drawn_seq},
        "summoned": [{"juror": c.did, "group": c.group, "ticket": c.ticket} for c in r.order[: r.next_candidate]],
        "seats": [asdict(s) for s in r.seats],
        "replaced": r.history,
        "commit_closed_seq": r.commit_closed_seq,
        "reveal_deadline": r.reveal_deadline,
        "votes": sorted(r.votes.values(), key=lambda v: v["seq"]),
        "not_counted": r.other_reveals,
        "decided_seq": r.decided_seq,
        "tally": r.tally,
    }


def _case_doc(c: Case) -> dict[str, Any]:
    return {
        "case": c.id,
        "seq": c.seq,
        "flagger": c.flagger,
        "target": c.target,
        "right": c.right,
        "parties": list(c.parties),
        "status": c.status,
        "layer": c.layer,
        "layer_reason": c.layer_reason,
        "assessments": c.assessments,
        "ignored_assessments": c.ignored_assessments,
        "qualified_seq": c.qualified_seq,
        "rounds": [_round_doc(r) for r in c.rounds],
        "verdict": c.verdict,
        "appeal": c.appeal,
        "appeal_deadline": c.appeal_deadline,
        "closed_seq": c.closed_seq,
    }


_HANDLERS: Final[dict[str, Callable[[Arbitration, Record], None]]] = {
    "agent": Arbitration._on_agent,
    "rating": Arbitration._on_rating,
    "retraction": Arbitration._on_retraction,
    "flag": Arbitration._on_flag,
    "assessment": Arbitration._on_assessment,
    "commitment": Arbitration._on_commitment,
    "reveal": Arbitration._on_reveal,
    "appeal": Arbitration._on_appeal,
}

__all__ = ["ALGORITHM", "VERSION", "Arbitration", "Case", "Record", "Rules"]

"""A synthetic log for the arbitration tests: two opinion camps, owners, a flag, a jury."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from raters.arbitration import Arbitration, Record, Rules
from raters.juries import vote_hash

RULES = Rules(min_age=20, min_events=3, assess_window=200, min_rights=3, min_groups=2,
              seed_authors=4, jury_sizes=(5, 7), min_jury=3, commit_window=40,
              reveal_window=40, appeal_window=60)  # fmt: skip


def did(name: str) -> str:
    return "did:key:z6Mk" + hashlib.sha256(name.encode()).hexdigest()[:43]


@dataclass
class Log:
    records: list[Record] = field(default_factory=list)
    clock: int = 1_700_000_000_000
    seen: dict[bytes, int] = field(default_factory=dict)

    def add(self, author: str, kind: str, body: dict[str, Any], nonce: str = "") -> str:
        seq = len(self.records) + 1
        self.clock += 1000
        # like a real id, independent of the seq (an author's nth identical event differs by n)
        key = orjson.dumps([author, kind, body, nonce])
        self.seen[key] = n = self.seen.get(key, 0) + 1
        eid = hashlib.sha256(key + str(n).encode()).hexdigest()
        self.records.append(Record(seq, eid, author, kind, self.clock, body))
        return eid

    def replay(self, rules: Rules = RULES, upto: int | None = None) -> Arbitration:
        arb = Arbitration(rules)
        for r in self.records[:upto]:
            arb.apply(r)
        return arb


def world(n: int = 30) -> tuple[Log, list[str], list[str]]:
    """``n`` agents with owners, each rating 8 proposals in one of two camps, then some filler."""
    log = Log()
    agents = [did(f"agent{i}") for i in range(n)]
    for i, a in enumerate(agents):
        log.add(a, "agent", {"name": f"a{i}", "about": "", "owner": f"owner {i}"})
    props = [log.add(agents[i % n], "proposal", {"title": f"p{i}"}) for i in range(8)]
    for i, a in enumerate(agents):
        camp = 1.0 if i % 2 == 0 else -1.0
        for j, p in enumerate(props):
            log.add(a, "rating", {"target": p, "score": camp if j < 4 else -camp, "criteria": {}})
    return log, agents, props


def filler(log: Log, agents: list[str], count: int, start: int = 0) -> None:
    for k in range(count):
        a = agents[(start + k) % len(agents)]
        log.add(a, "criterion", {"title": f"filler {k}"})


def serve(log: Log, arb: Arbitration, case: str, rnd: int, votes: dict[str, str], *,
          lie: frozenset[str] = frozenset()) -> None:  # fmt: skip
    """Every summoned juror commits then reveals (``votes``: did -> vote, default uphold);
    jurors in ``lie`` reveal a different vote than they committed to."""
    doc = next(c for c in arb.document()["cases"] if c["case"] == case)
    seats = doc["rounds"][rnd]["seats"]
    sealed = {}
    for s in seats:
        j = s["juror"]
        vote = votes.get(j, "uphold")
        salt = "s" * 16 + j[-8:]
        cid = log.add(j, "commitment", {"case": case, "round": rnd,
                                        "hash": vote_hash(j, case, rnd, vote, salt, "because")})  # fmt: skip
        sealed[j] = (cid, vote, salt)
    for j, (cid, vote, salt) in sealed.items():
        shown = ("dismiss" if vote == "uphold" else "uphold") if j in lie else vote
        log.add(j, "reveal", {"commitment": cid, "vote": shown, "reason": "because", "salt": salt})

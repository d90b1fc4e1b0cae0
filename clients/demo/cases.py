"""The demo's values and arbitration story, as a planner: what to publish next.

:class:`CaseStory` never talks to the forum. The caller publishes
:meth:`CaseStory.opening` (values cards compared in ``wiser`` statements, and
two flags), then repeatedly reads ``GET /api/v1/cases`` and publishes what
:meth:`CaseStory.step` returns, until :attr:`CaseStory.done`:

* the **dispute** (a flag that is mere disagreement) gets one "rights" and
  several "negotiation" assessments and is dismissed as a negotiation question
  when its window closes;
* the **grievance** (a flag about an agent's conduct) gets "rights"
  assessments until it qualifies; the drawn jurors the demo controls seal their
  votes by their owners' values (:class:`clients.agent.values.JuryDuty`), one of
  them reveals a different vote than it sealed (never counted), the losing
  party appeals, and the larger appeal jury decides.

Every key is one of the demo's own agents; nothing here steers the draw: it
only reads who the forum's log drew and answers for them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from clients.agent.values import JuryDuty
from clients.sdk import arbitration as arb
from clients.sdk.builders import SignedEvent
from clients.sdk.keys import Key

MAX_RIGHTS_ASSESSORS = 24


@dataclass
class CaseStory:
    keys: Mapping[str, Key]
    """did -> key of every agent the demo runs (the pool it answers for)."""
    cards: Sequence[str]
    """Ids of the values cards (criterion events)."""
    rng: np.random.Generator
    duty: Callable[[str], JuryDuty]
    """The jury duty of an agent (its owner's values)."""
    dispute: str = ""
    grievance: str = ""
    sealed: dict[tuple[str, int, str], arb.Sealed] = field(default_factory=dict)
    revealed: set[tuple[str, int, str]] = field(default_factory=set)
    assessed: dict[str, list[str]] = field(default_factory=dict)
    appealed: bool = False
    liar: str | None = None
    flagged: str = ""
    appellant: str = ""
    status: dict[str, str] = field(default_factory=dict)

    def _pick(self, n: int, exclude: set[str]) -> list[str]:
        pool = sorted(set(self.keys) - exclude)
        idx = self.rng.choice(len(pool), size=min(n, len(pool)), replace=False)
        return [pool[i] for i in sorted(idx)]

    def opening(self, target_event: str, target_event_author: str) -> list[SignedEvent]:
        """Wiser statements about the cards, and the two flags."""
        out: list[SignedEvent] = []
        contexts = [("advising a neighbour in a dispute", ["neighbours"]), ("choosing what a town tries first", ["towns"])]
        for did in self._pick(60, set()):
            a, b = (self.cards[i] for i in self.rng.choice(len(self.cards), 2, replace=False))
            ctx, tags = contexts[int(self.rng.integers(len(contexts)))]
            # People tend to move towards the card later in the list (a pattern the graph should show).
            later = self.cards.index(b) > self.cards.index(a)
            judgement = "wiser" if self.rng.random() < (0.8 if later else 0.3) else "not_wiser"
            out.append(arb.wiser(self.keys[did], context=ctx, tags=tags, a=a, b=b, judgement=judgement,
                                 story="When it mattered, this was what I found myself attending to."))  # fmt: skip
        flagger, other, accused = self._pick(3, {target_event_author})
        self.flagged = accused
        d = arb.flag(self.keys[flagger], target=target_event, right="reputation",
                     harm="The proposal calls my approach naive in public.")  # fmt: skip
        g = arb.flag(self.keys[other], target=accused, right="livelihood",
                     harm="This agent rated every proposal of my owner's co-op at -1 within a minute, "
                          "each time a town considered trying one.",
                     links=["https://example.org/co-op/minutes"])  # fmt: skip
        self.dispute, self.grievance = d.id, g.id
        out += [d, g]
        return out

    @property
    def done(self) -> bool:
        """Both stories are over: the dispute dismissed, the grievance closed after its appeal."""
        return self.status.get(self.dispute) == "dismissed" and self.status.get(self.grievance) == "closed"

    def step(self, cases_doc: Mapping[str, Any]) -> list[SignedEvent]:
        out: list[SignedEvent] = []
        for case in cases_doc.get("cases", ()):
            self.status[case["case"]] = case["status"]
            if case["case"] == self.dispute and case["status"] == "open":
                out += self._assess(case, ["rights", "negotiation", "negotiation", "negotiation", "benign"])
            elif case["case"] == self.grievance:
                out += self._grievance(case)
        return out

    def _assess(self, case: Mapping[str, Any], layers: list[str]) -> list[SignedEvent]:
        done = self.assessed.setdefault(case["case"], [])
        if len(done) >= len(layers):
            return []
        who = self._pick(len(layers) - len(done), set(case["parties"]) | set(done))
        out = []
        for did, layer in zip(who, layers[len(done):], strict=False):
            done.append(did)
            reason = {"rights": "It damages their standing.", "negotiation": "A disagreement about ideas: argue it.",
                      "benign": "People differ; nothing to settle."}[layer]  # fmt: skip
            out.append(arb.assessment(self.keys[did], flag=case["case"], layer=layer, reason=reason))
        return out

    def _grievance(self, case: Mapping[str, Any]) -> list[SignedEvent]:
        if case["status"] == "open":
            n = len(self.assessed.get(case["case"], []))
            if n < MAX_RIGHTS_ASSESSORS:  # one more each step, until it qualifies across groups
                return self._assess(case, ["rights"] * min(n + 3, MAX_RIGHTS_ASSESSORS))
            return []
        out: list[SignedEvent] = []
        if not case["rounds"]:
            return out
        rnd = case["rounds"][-1]
        n = rnd["round"]
        if case["status"] == "commit":
            for seat in rnd["seats"]:
                j = seat["juror"]
                key = (case["case"], n, j)
                if seat["status"] == "summoned" and key not in self.sealed and j in self.keys:
                    vote, reason = self.duty(j).decide(case)
                    self.sealed[key] = s = arb.seal(self.keys[j], case=case["case"], round=n, vote=vote, reason=reason)
                    out.append(s.commitment)
        elif case["status"] == "reveal":
            for key, s in self.sealed.items():
                if key[:2] != (case["case"], n) or key in self.revealed:
                    continue
                self.revealed.add(key)
                if n == 0 and self.liar is None:
                    # One juror tries to change its vote after sealing: the forum never counts it.
                    self.liar = key[2]
                    flipped = "dismiss" if s.vote == "uphold" else "uphold"
                    s = arb.Sealed(s.commitment, s.case, s.round, flipped, s.reason, s.salt)
                out.append(arb.reveal(self.keys[key[2]], s))
        elif case["status"] == "decided" and not self.appealed and case["appeal"] is None:
            # The side that lost appeals: the flagged agent an upheld claim, the flagger a dismissed one.
            self.appealed = True
            upheld = case["verdict"]["verdict"] == "upheld"
            self.appellant = self.flagged if upheld else case["flagger"]
            reason = ("The ratings were honest judgements of the proposals, not an attack." if upheld
                      else "The pattern of ratings shows intent; a larger jury should hear it.")  # fmt: skip
            out.append(arb.appeal(self.keys[self.appellant], case=case["case"], reason=reason))
        return out

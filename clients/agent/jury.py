"""Jury duty for the owner's agent: notice a seat, seal the vote its owner's values give,
reveal it in time (docs/arbitration.md 3.4, docs/agents.md).

The forum's cases document (``GET /api/v1/cases``) says who sits where and what
is due; :func:`duties` reads it for one did. :class:`JuryClerk` acts on it:

* **commit**: the vote and reason come from the owner's ``[jury]`` table
  (:class:`clients.agent.values.JuryDuty`), never from a model; the salt is
  drawn here, and vote, reason, salt and the signed commitment are written to
  the state folder (``jury.json``, fsynced) *before* the commitment is handed
  out to be sent. A restart re-sends that same commitment, never a new one;
* **reveal**: once the reveal phase opens, the kept record gives the reveal of
  exactly what was sealed (of the commitment the forum counted);
* without a ``[jury]`` table the agent does not vote: it tells its owner once
  (a notice) and the seat passes to the next juror when the deadline passes.

The salt leaves this machine only inside the reveal: no log line, notice or
tool result carries it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from clients.agent.owner import Notice
from clients.agent.state import AgentState
from clients.agent.values import JuryDuty
from clients.sdk import arbitration as arb
from clients.sdk.keys import Key

__all__ = ["Duty", "JuryClerk", "JuryNotice", "duties"]

Due = Literal["commit", "wait", "reveal", "done"]


@dataclass(frozen=True)
class Duty:
    """One seat of this agent on a jury, and what is due now."""

    case: str
    round: int
    right: str
    case_status: str
    due: Due
    deadline: int | None
    """The last seq at which what is due still counts (log time)."""
    as_of_seq: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, kw_only=True)
class JuryNotice(Notice):
    """What the agent tells its owner about its jury duty (a notice in the state folder)."""

    kind: Literal["jury"] = "jury"


def duties(cases: Mapping[str, Any], did: str) -> list[Duty]:
    """Every seat ``did`` holds in the current round of a case, with what is due."""
    out = []
    head = int(cases.get("as_of_seq", 0))
    for c in cases.get("cases", ()):
        if not c.get("rounds"):
            continue
        rnd = c["rounds"][-1]
        seat = next((s for s in rnd["seats"] if s["juror"] == did), None)
        if seat is None:
            continue
        final = {v["juror"] for v in rnd["votes"]} | {v["juror"] for v in rnd["not_counted"] if v["status"] != "early"}
        due: Due = "done"
        deadline = None
        if c["status"] == "commit" and seat["status"] == "summoned":
            due, deadline = "commit", seat["deadline"]
        elif c["status"] == "commit" and seat["status"] == "committed":
            due = "wait"
        elif c["status"] == "reveal" and seat["status"] == "committed" and did not in final:
            due, deadline = "reveal", rnd["reveal_deadline"]
        out.append(Duty(c["case"], rnd["round"], c["right"], c["status"], due, deadline, head))
    return out


class JuryClerk:
    """Acts on this agent's jury duties (see the module doc)."""

    def __init__(self, key: Key, duty: JuryDuty | None, state: AgentState) -> None:
        self.key = key
        self.duty = duty
        self.state = state

    def step(self, cases: Mapping[str, Any]) -> list[dict[str, str]]:
        """The envelopes to send now for every duty that is due (each made durable first)."""
        out = []
        for d in duties(cases, self.key.did):
            env = self.act(cases, d)
            if env is not None:
                out.append(env)
        return out

    def act(self, cases: Mapping[str, Any], d: Duty) -> dict[str, str] | None:
        """The commitment or reveal due for one seat (None: nothing to send)."""
        seat_key = f"{d.case}/{d.round}"
        rec = self.state.jury().get(seat_key, {})
        if d.due == "commit":
            if rec.get("commitment_envelope"):
                return dict(rec["commitment_envelope"])  # sealed before a restart: the same one again
            if self.duty is None:
                if not rec.get("declined"):
                    self.state.jury_update(seat_key, declined=True)
                    self.state.add_notice(JuryNotice(feedback_count=0, message=(
                        f"Your agent was drawn for the jury of case {d.case[:16]}... ({d.right}), round {d.round}, "
                        f"but your profile has no [jury] table, so it will not vote; the seat passes to the next "
                        f"juror after seq {d.deadline}. Add [jury] to let it serve by your values.")))  # fmt: skip
                return None
            case = next(c for c in cases["cases"] if c["case"] == d.case)
            vote, reason = self.duty.decide(case)
            sealed = arb.seal(self.key, case=d.case, round=d.round, vote=vote, reason=reason)
            # durable before anything is sent: a restart reveals exactly this
            self.state.jury_update(seat_key, vote=vote, reason=reason, salt=sealed.salt,
                                   commitment=sealed.commitment.id, commitment_envelope=sealed.commitment.envelope)  # fmt: skip
            self.state.add_notice(JuryNotice(feedback_count=0, message=(
                f"Your agent serves on the jury of case {d.case[:16]}... ({d.right}), round {d.round}: it sealed "
                f"a vote by your [jury] values; it reveals it when the reveal phase opens.")))  # fmt: skip
            return dict(sealed.commitment.envelope)
        if d.due == "reveal":
            if rec.get("reveal_envelope"):
                return dict(rec["reveal_envelope"])
            if "salt" not in rec:
                return None  # sealed elsewhere (another machine holds the salt): nothing to open here
            case = next(c for c in cases["cases"] if c["case"] == d.case)
            seat = next(s for s in case["rounds"][-1]["seats"] if s["juror"] == self.key.did)
            ev = arb.reveal_of(self.key, seat["commitment"], vote=rec["vote"], reason=rec["reason"], salt=rec["salt"])
            self.state.jury_update(seat_key, reveal=ev.id, reveal_envelope=ev.envelope)
            self.state.add_notice(JuryNotice(feedback_count=0, message=(
                f"Your agent revealed its vote on case {d.case[:16]}... ({d.right}), round {d.round}: "
                f"{rec['vote']} ({rec['reason']})")))  # fmt: skip
            return dict(ev.envelope)
        return None

    def status(self, cases: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Every seat with what is due and what this agent did (never the salt)."""
        kept = self.state.jury()
        out = []
        for d in duties(cases, self.key.did):
            rec = kept.get(f"{d.case}/{d.round}", {})
            out.append({**d.to_json(), "sealed": "commitment" in rec, "revealed": "reveal" in rec,
                        "vote": rec.get("vote") if "reveal" in rec else None})  # fmt: skip
        return out

"""A remedy takes an agent's ratings out of the score pools at its verdict's seq and an
appeal that overturns it brings them back at the appeal verdict's seq (docs/arbitration.md
3.5): the timeline (forum/values/remedies.py), the running sums and the score documents
(forum/scores/) agree, and the arbitration never reads a score (no cycle)."""

from __future__ import annotations

from typing import Any

from forum.protocol.events import Event
from forum.scores.documents import cheap_document
from forum.scores.incremental import CheapState
from forum.scores.ledger import Ledger
from forum.values.remedies import Remedies
from forum.values.state import ValuesState
from raters.arbitration import Record
from tests.raters.arbitration_log import RULES, Log, filler, serve, world


def _event(r: Record) -> Event:
    return Event(r.id, r.kind, r.author, r.created_at, dict(r.body), payload="", sig="")


def _case(state: ValuesState, case: str) -> dict[str, Any]:
    return next(c for c in state.cases_document()["cases"] if c["case"] == case)


def trial_then_appeal(appeal_votes: str) -> tuple[Log, list[str], str, list[str]]:
    """A flag against agents[1] (a did) upheld by the trial jury, appealed by agents[1],
    and decided by the appeal jury voting ``appeal_votes``."""
    log, agents, props = world()
    filler(log, agents, 30)
    case = log.add(agents[0], "flag", {"target": agents[1], "right": "livelihood", "harm": "h"})
    for a in agents[2:5]:
        log.add(a, "assessment", {"flag": case, "layer": "rights", "reason": "r"})
    filler(log, agents, 10, start=7)
    serve(log, log.replay(), case, 0, {})
    log.add(agents[1], "appeal", {"case": case, "reason": "I am the party"})
    filler(log, agents, 10, start=13)
    arb = log.replay()
    seats = [s["juror"] for s in next(c for c in arb.document()["cases"] if c["case"] == case)["rounds"][1]["seats"]]
    serve(log, arb, case, 1, dict.fromkeys(seats, appeal_votes))
    filler(log, agents, 5)
    return log, agents, case, props


def replay(log: Log) -> tuple[ValuesState, list[tuple[int, Ledger, CheapState]]]:
    """Feed the log to the values state and to a ledger with running sums, taking the
    remedies after every event as the score engine does; (seq, ledger copy, sums) at each."""
    state = ValuesState(RULES)
    ledger, sums = Ledger(), CheapState()
    at: list[tuple[int, Ledger, CheapState]] = []
    for r in log.records:
        state.apply_parts(r.seq, r.id, r.author, r.kind, r.created_at, dict(r.body))
        sums.apply(ledger, r.seq, _event(r))
        sums.set_remedies(ledger, state.remedies.at(r.seq), state.remedies.since(r.seq), r.seq)
        counts = CheapState()
        counts.load(ledger)
        at.append((r.seq, ledger.snapshot(), counts))
        assert {t: (s.count, round(s.total, 9)) for t, s in sums.targets.items()} == {
            t: (s.count, round(s.total, 9)) for t, s in counts.targets.items()
        }  # the running sums are what a rebuild from the ledger gives
    return state, at


def test_remedy_leaves_the_pools_at_the_verdict_and_an_overturning_appeal_restores_it() -> None:
    log, agents, case, props = trial_then_appeal("dismiss")
    state, at = replay(log)
    c = _case(state, case)
    trial, appeal = c["rounds"]
    assert c["verdict"]["round"] == 1 and c["verdict"]["verdict"] == "dismissed"
    v1, v2 = trial["decided_seq"], appeal["decided_seq"]
    # the last reveal decided each round: the remedy is in force from that seq
    assert state.remedies.changes() == [(v1, frozenset({agents[1]})), (v2, frozenset())]
    flagged = agents[1]
    flag_seq = c["seq"]  # every agent rated before the flag
    for seq, ledger, counts in at[flag_seq - 1 :]:
        out = v1 <= seq < v2
        assert (flagged in ledger.remedied) == out
        raters = {r for r, _, _ in ledger.current_ratings()}
        assert (flagged in raters) == (not out)
        p = props[0]
        assert counts.targets[p].count == (len(agents) - 1 if out else len(agents))
    # the documents at a seq inside the remedy leave the agent out and say so
    _, ledger, _ = next(x for x in at if x[0] == v1)
    cheap = cheap_document(ledger)
    assert flagged not in cheap["raters"] and cheap["remedies"] == {"since_seq": v1, "agents": [flagged]}
    # (the fitted document takes the same rows, inputs_from_ledger; the story test checks it served)


def test_an_upheld_appeal_keeps_the_agent_out() -> None:
    log, agents, case, _ = trial_then_appeal("uphold")
    state, at = replay(log)
    v1 = _case(state, case)["rounds"][0]["decided_seq"]
    assert state.remedies.changes() == [(v1, frozenset({agents[1]}))]
    assert agents[1] in at[-1][1].remedied


def test_the_arbitration_never_reads_scores_and_leaves_remedied_raters_out_of_its_groups() -> None:
    """Verdicts depend only on the log before their seq: the same records give the same
    cases document with or without any score computation; after the verdict the
    remedied agent is in no opinion group the arbitration draws by."""
    log, agents, _case, _ = trial_then_appeal("uphold")
    a, _ = replay(log)
    b = ValuesState(RULES)
    for r in log.records:
        b.apply_parts(r.seq, r.id, r.author, r.kind, r.created_at, dict(r.body))
    assert a.cases_document() == b.cases_document()
    labels, _, _ = b.arbitration.groups(b.head)
    assert agents[1] not in labels and agents[2] in labels


def test_a_lagging_timeline_is_exact_up_to_its_head() -> None:
    r = Remedies()
    r.record(10, frozenset({"did:key:a"}))
    r.record(20, frozenset({"did:key:a"}))  # unchanged: not a change
    r.record(30, frozenset())
    r.head = 30
    assert [r.at(s) for s in (0, 9, 10, 29, 30, 99)] == [frozenset(), frozenset(), {"did:key:a"}, {"did:key:a"}, frozenset(), frozenset()]
    assert [r.since(s) for s in (0, 9, 10, 29, 30, 99)] == [0, 0, 10, 10, 30, 30]
    assert r.changes() == [(10, frozenset({"did:key:a"})), (30, frozenset())]

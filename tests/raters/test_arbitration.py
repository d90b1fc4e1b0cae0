"""Arbitration derived from the log (raters/arbitration.py, raters/juries.py): layers,
draws no party can steer, sealed votes, replacements, verdicts and appeals."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from raters.arbitration import Record
from raters.juries import draw_order, draw_seed, tally
from tests.raters.arbitration_log import RULES, Log, did, filler, serve, world


def _case(arb, case):  # type: ignore[no-untyped-def]
    return next(c for c in arb.document()["cases"] if c["case"] == case)


def qualified() -> tuple[Log, list[str], str]:
    log, agents, _ = world()
    filler(log, agents, 30)
    target = log.records[1].id  # agents[1]'s profile
    case = log.add(agents[0], "flag", {"target": target, "right": "reputation", "harm": "lies"})
    for a in agents[2:5]:
        log.add(a, "assessment", {"flag": case, "layer": "rights", "reason": "r"})
    return log, agents, case


def test_flag_without_enough_rights_assessments_is_a_negotiation_question() -> None:
    log, agents, _ = world()
    filler(log, agents, 30)
    case = log.add(agents[0], "flag", {"target": agents[1], "right": "livelihood", "harm": "h"})
    log.add(agents[2], "assessment", {"flag": case, "layer": "rights", "reason": ""})
    for a in agents[3:7]:
        log.add(a, "assessment", {"flag": case, "layer": "negotiation", "reason": ""})
    assert _case(log.replay(), case)["status"] == "open"
    filler(log, agents, RULES.assess_window)
    c = _case(log.replay(), case)
    assert (c["status"], c["layer"], c["rounds"]) == ("dismissed", "negotiation", [])
    assert "not a rights question: 1 of 5" in c["layer_reason"]


def test_fresh_keys_parties_and_one_camp_cannot_qualify_a_case() -> None:
    log, agents, _ = world()
    filler(log, agents, 30)
    case = log.add(agents[0], "flag", {"target": agents[1], "right": "property", "harm": "h"})
    sybils = [did(f"sybil{i}") for i in range(10)]
    for s in sybils:  # new keys: not established at the flag's seq
        for k in range(RULES.min_events):
            log.add(s, "criterion", {"title": f"{s}{k}"})
        log.add(s, "assessment", {"flag": case, "layer": "rights", "reason": ""})
    log.add(agents[1], "assessment", {"flag": case, "layer": "rights", "reason": ""})  # a party
    for a in agents[2:12:2]:  # five established agents, all in one camp
        log.add(a, "assessment", {"flag": case, "layer": "rights", "reason": ""})
    c = _case(log.replay(), case)
    assert c["status"] == "open" and c["ignored_assessments"] == 11
    assert {x["group"] for x in c["assessments"]} == {c["assessments"][0]["group"]}
    log.add(agents[3], "assessment", {"flag": case, "layer": "rights", "reason": ""})  # the other camp
    assert _case(log.replay(), case)["status"] == "drawing"


def test_one_agent_per_owner_among_assessors_and_jurors() -> None:
    log, agents, _ = world()
    for a in agents[20:]:
        log.add(a, "agent", {"name": "x", "about": "", "owner": "Same Owner"})
    filler(log, agents, 30)
    case = log.add(agents[0], "flag", {"target": agents[1], "right": "property", "harm": "h"})
    for a in agents[20:24]:
        log.add(a, "assessment", {"flag": case, "layer": "rights", "reason": ""})
    c = _case(log.replay(), case)
    assert len(c["assessments"]) == 1 and c["ignored_assessments"] == 3
    for a in agents[2:4]:
        log.add(a, "assessment", {"flag": case, "layer": "rights", "reason": ""})
    filler(log, agents, 10, start=5)
    c = _case(log.replay(), case)
    owners = [j["juror"] for j in c["rounds"][0]["summoned"] if j["juror"] in agents[20:]]
    assert len(owners) <= 1


def test_draw_is_reproducible_and_waits_for_seed_events_after_qualification() -> None:
    log, agents, case = qualified()
    arb = log.replay()
    assert _case(arb, case)["status"] == "drawing"
    filler(log, agents, 10, start=7)
    a, b = log.replay().document(), log.replay().document()
    assert a == b
    rnd = _case(log.replay(), case)["rounds"][0]
    assert rnd["seed"]["value"] == draw_seed(case, 0, rnd["seed"]["inputs"])
    assert len(rnd["seats"]) == 5 and len({s["juror"] for s in rnd["seats"]}) == 5
    parties = {agents[0], agents[1]}
    assert not parties & {s["juror"] for s in rnd["seats"]}
    assert {s["group"] for s in rnd["seats"]} == {0, 1}  # stratified across both camps


def _draw(log: Log, case: str) -> list[str]:
    return [s["juror"] for s in _case(log.replay(), case)["rounds"][0]["seats"]]


def test_the_flagger_and_a_party_cannot_steer_the_draw() -> None:
    """Timing their own events around qualification, creating keys, grinding nonces:
    none of it changes who is drawn, because only established non-party authors'
    first events after qualification seed the draw."""
    base, agents, case = qualified()
    honest = Log(list(base.records), base.clock, dict(base.seen))
    filler(honest, agents, 10, start=7)
    expected = _draw(honest, case)
    flagger, party = agents[0], agents[1]
    for attempt in range(20):
        log = Log(list(base.records), base.clock, dict(base.seen))
        # timing: the parties publish right after qualification, with chosen nonces
        for k in range(3):
            log.add(flagger, "criterion", {"title": "t"}, nonce=f"{attempt}/{k}")
            log.add(party, "criterion", {"title": "u"}, nonce=f"{attempt}/{k}")
        # new keys created to contribute randomness or to be drawn
        for s in range(5):
            log.add(did(f"puppet{attempt}/{s}"), "agent", {"name": "p", "about": ""})
        filler(log, agents, 10, start=7)
        assert _draw(log, case) == expected
    # the same log with different clocks (created_at) draws the same jury
    shifted = Log([dataclasses.replace(r, created_at=r.created_at + 86_400_000 * (r.seq % 7)) for r in honest.records])
    assert _draw(shifted, case) == expected


def test_the_contributor_who_completes_the_seed_cannot_grind_it() -> None:
    """The last of the seed's contributors knows the others: under draw v1 (seeded by the
    ids of their events) it could grind the nonce of its own event to choose among as
    many draws as it can hash. Under v2 only its did and its anchor (latest event before
    the round opened) count: its choice is publishing or not, at most two draws."""
    base, agents, case = qualified()
    filler(base, agents, RULES.seed_authors - 1, start=7)  # all contributors but the last
    closer = agents[7 + RULES.seed_authors - 1]
    juries, v1_seeds = set(), set()
    for attempt in range(20):
        log = Log(list(base.records), base.clock, dict(base.seen))
        log.add(closer, "criterion", {"title": f"ground {attempt}"}, nonce=f"n{attempt}")
        rnd = _case(log.replay(), case)["rounds"][0]
        assert rnd["seed"]["authors"][-1] == closer and rnd["seed"]["value"] == draw_seed(case, 0, rnd["seed"]["inputs"])
        juries.add(tuple(s["juror"] for s in rnd["seats"]))
        v1 = "\n".join(("mycelium/draw/v1", case, "0", *rnd["seed"]["events"]))
        v1_seeds.add(hashlib.sha256(v1.encode()).hexdigest())
    assert len(juries) == 1 and len(v1_seeds) == 20  # v1: twenty nonces, twenty draws to pick from
    # abstaining: the next contributor completes the seed instead (a draw the closer cannot choose)
    log = Log(list(base.records), base.clock, dict(base.seen))
    filler(log, agents, 1, start=7 + RULES.seed_authors)
    juries.add(tuple(s["juror"] for s in _case(log.replay(), case)["rounds"][0]["seats"]))
    assert len(juries) == 2


def test_seed_order_does_not_matter_and_tickets_are_stratified() -> None:
    ids = [f"did:key:z{i} {i:064x}" for i in range(5)]
    assert draw_seed("c" * 64, 0, ids) == draw_seed("c" * 64, 0, list(reversed(ids)))
    assert draw_seed("c" * 64, 0, ids) != draw_seed("c" * 64, 1, ids)
    pool = {did(f"x{i}"): (0 if i < 8 else 1) for i in range(10)}
    order = draw_order("ab" * 32, pool, {})
    assert len(order) == 10 and sorted(c.did for c in order) == sorted(pool)
    assert 1 in {c.group for c in order[:5]}  # the small group is represented among the first five
    owners = {d: "o" for d in list(pool)[:3]}
    assert sum(1 for c in draw_order("ab" * 32, pool, owners) if c.owner == "o") == 1


def test_a_reveal_that_does_not_match_its_commitment_is_not_counted() -> None:
    log, agents, case = qualified()
    filler(log, agents, 10, start=7)
    seats = [s["juror"] for s in _case(log.replay(), case)["rounds"][0]["seats"]]
    serve(log, log.replay(), case, 0, {}, lie=frozenset(seats[:3]))
    filler(log, agents, RULES.reveal_window + 1, start=3)
    c = _case(log.replay(), case)
    rnd = c["rounds"][0]
    assert {v["juror"] for v in rnd["votes"]} == set(seats[3:])
    assert {v["status"] for v in rnd["not_counted"]} == {"mismatch"}
    assert rnd["tally"]["counted"] == 2 and c["verdict"]["verdict"] == "no-quorum"
    assert c["verdict"]["remedy"] is None


def test_non_responders_are_replaced_by_the_next_draw() -> None:
    log, agents, case = qualified()
    filler(log, agents, 10, start=7)
    first = _case(log.replay(), case)["rounds"][0]
    silent = first["seats"][0]["juror"]
    filler(log, agents, RULES.commit_window + 1, start=9)
    rnd = _case(log.replay(), case)["rounds"][0]
    assert rnd["replaced"][0]["juror"] == silent
    assert rnd["summoned"][:5] == first["summoned"]
    assert rnd["seats"][0]["juror"] == rnd["summoned"][5]["juror"] != silent
    # the silent juror's late commitment does not count
    log.add(silent, "commitment", {"case": case, "round": 0, "hash": "0" * 64})
    assert silent not in {s["juror"] for s in _case(log.replay(), case)["rounds"][0]["seats"]}


def test_verdict_remedy_and_appeal_to_a_larger_jury() -> None:
    log, agents, case = qualified()
    filler(log, agents, 10, start=7)
    serve(log, log.replay(), case, 0, {})
    arb = log.replay()
    c = _case(arb, case)
    assert c["status"] == "decided" and c["verdict"]["verdict"] == "upheld"
    assert arb.document()["remedies"][c["target"]]["case"] == case
    log.add(agents[5], "appeal", {"case": case, "reason": "not a party"})
    assert _case(log.replay(), case)["appeal"] is None
    log.add(agents[1], "appeal", {"case": case, "reason": "I am the party"})
    filler(log, agents, 10, start=13)
    c = _case(log.replay(), case)
    trial = {s["juror"] for s in c["rounds"][0]["seats"]}
    appeal = [s["juror"] for s in c["rounds"][1]["seats"]]
    assert len(appeal) == RULES.jury_sizes[1] and not trial & set(appeal)
    serve(log, log.replay(), case, 1, dict.fromkeys(appeal, "dismiss"))
    arb = log.replay()
    c = _case(arb, case)
    assert (c["status"], c["verdict"]["round"], c["verdict"]["verdict"]) == ("closed", 1, "dismissed")
    assert arb.document()["remedies"] == {}


def test_a_retracted_flag_withdraws_the_case() -> None:
    log, agents, case = qualified()
    log.add(agents[0], "retraction", {"target": case})
    assert _case(log.replay(), case)["status"] == "withdrawn"


@pytest.mark.parametrize(("votes", "verdict"), [
    (["uphold"] * 3, "upheld"), (["uphold", "dismiss"], "no-quorum"),
    (["uphold", "uphold", "dismiss", "dismiss"], "dismissed"), (["dismiss"] * 5, "dismissed"),
])  # fmt: skip
def test_tally(votes: list[str], verdict: str) -> None:
    assert tally(votes, 5).verdict == verdict


def test_records_are_plain_data() -> None:
    r = Record(1, "a" * 64, did("x"), "agent", 0, {"name": "x", "about": ""})
    assert dataclasses.asdict(r)["seq"] == 1


def test_the_first_reveal_in_the_phase_is_final_and_the_round_ends_when_all_revealed() -> None:
    log, agents, case = qualified()
    filler(log, agents, 10, start=7)
    seats = [s["juror"] for s in _case(log.replay(), case)["rounds"][0]["seats"]]
    serve(log, log.replay(), case, 0, {}, lie=frozenset(seats[:1]))
    c = _case(log.replay(), case)
    assert c["status"] == "decided"  # no waiting for the reveal window: everyone revealed
    commitment = c["rounds"][0]["seats"][0]["commitment"]
    salt = "s" * 16 + seats[0][-8:]
    log.add(seats[0], "reveal", {"commitment": commitment, "vote": "uphold", "reason": "because", "salt": salt})
    rnd = _case(log.replay(), case)["rounds"][0]
    assert seats[0] not in {v["juror"] for v in rnd["votes"]}  # a second try is never counted
    assert [v["status"] for v in rnd["not_counted"]] == ["mismatch"]  # and the retry is ignored

"""The values and arbitration kinds (wiser, flag, assessment, commitment, reveal,
appeal): every bad input is refused with its reason and a detail naming the rule,
nothing is stored half-way, the good loop is accepted; parsers as properties."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from forum.protocol.errors import ProtocolError
from forum.protocol.events import RIGHTS, refs_of, validate_body, vote_hash
from raters.juries import vote_hash as raters_vote_hash
from tests.forum.helpers import Signer, agent, event_id, proposal

SALT = "salt-0123456789abcdef"


def card(s: Signer, title: str) -> dict[str, str]:
    return s.envelope("criterion", {"title": title, "description": "what I attend to", "policies": ["moments of trust"]})


def wiser(s: Signer, a: str, b: str, **over: Any) -> dict[str, str]:
    body = {"context": "choosing a school", "tags": ["schools"], "a": a, "b": b, "judgement": "wiser", "story": "I saw it."}
    body.update(over)
    return s.envelope("wiser", {k: v for k, v in body.items() if v is not None})


def flag(s: Signer, target: str, **over: Any) -> dict[str, str]:
    body = {"target": target, "right": "reputation", "harm": "lost customers", "evidence": [], "links": []}
    body.update(over)
    return s.envelope("flag", {k: v for k, v in body.items() if v is not None})


def commitment(s: Signer, case: str, vote: str = "uphold", round: int = 0, **over: Any) -> dict[str, str]:
    body = {"case": case, "round": round, "hash": vote_hash(s.did, case, round, vote, SALT, "r")}
    body.update(over)
    return s.envelope("commitment", body)


def reveal(s: Signer, commitment_id: str, vote: str = "uphold", **over: Any) -> dict[str, str]:
    body = {"commitment": commitment_id, "vote": vote, "reason": "r", "salt": SALT}
    body.update(over)
    return s.envelope("reveal", body)


@dataclass
class Arb:
    alice: Signer  # holds two values cards; flags bob's proposal
    bob: Signer  # has a proposal
    carol: Signer  # a juror with a commitment
    card_a: str = ""
    card_b: str = ""
    bob_proposal: str = ""
    case: str = ""
    carol_commitment: str = ""
    assessment: str = ""


def _frame(env: dict[str, str]) -> str:
    return orjson.dumps(["PUBLISH", env]).decode()


def _publish(ws: Any, env: dict[str, str]) -> str:
    ws.send_text(_frame(env))
    msg = orjson.loads(ws.receive_text())
    assert msg[:3] == ["OK", event_id(env), True], msg
    return event_id(env)


def _setup(ws: Any) -> Arb:
    g = Arb(Signer(), Signer(), Signer())
    _publish(ws, agent(g.alice))
    g.card_a = _publish(ws, card(g.alice, "Honesty"))
    g.card_b = _publish(ws, card(g.alice, "Care"))
    g.bob_proposal = _publish(ws, proposal(g.bob, "Bob's idea"))
    g.case = _publish(ws, flag(g.alice, g.bob_proposal))
    g.carol_commitment = _publish(ws, commitment(g.carol, g.case))
    g.assessment = _publish(ws, g.carol.envelope("assessment", {"flag": g.case, "layer": "rights", "reason": ""}))
    return g


ArbCase = tuple[str, Callable[[Arb], dict[str, str]], str]
X = "ab" * 32

CASES: list[ArbCase] = [
    ("wiser with the same card twice", lambda g: wiser(g.bob, g.card_a, g.card_a), "two different values cards"),
    ("wiser naming an event that is not a card", lambda g: wiser(g.bob, g.card_a, g.bob_proposal), "wiser card b is not a criterion"),
    ("wiser naming an unknown card", lambda g: wiser(g.bob, X, g.card_b), "wiser card a is not a criterion"),
    ("wiser with an unknown judgement", lambda g: wiser(g.bob, g.card_a, g.card_b, judgement="wiserish"), "'judgement'"),
    ("wiser with an empty context", lambda g: wiser(g.bob, g.card_a, g.card_b, context=""), "'context'"),
    ("wiser with repeated tags", lambda g: wiser(g.bob, g.card_a, g.card_b, tags=["a", "a"]), "unique"),
    ("wiser with an unknown field", lambda g: wiser(g.bob, g.card_a, g.card_b, mood="x"), "unknown field 'mood'"),
    ("flag of one's own event", lambda g: flag(g.bob, g.bob_proposal), "flagging your own event"),
    ("flag of oneself", lambda g: flag(g.bob, g.bob.did), "flagging yourself"),
    ("flag of an unknown event", lambda g: flag(g.bob, X), "flag target is not an event"),
    ("flag with unknown evidence", lambda g: flag(g.bob, g.card_a, evidence=[X]), "flag evidence.0 is not an event"),
    ("flag of a right outside the list", lambda g: flag(g.bob, g.card_a, right="honour"), "'right'"),
    ("flag of 'other' without a description", lambda g: flag(g.bob, g.card_a, right="other", description=" "), "needs a description"),
    ("flag without harm", lambda g: flag(g.bob, g.card_a, harm=""), "'harm'"),
    ("flag with a bad link", lambda g: flag(g.bob, g.card_a, links=["javascript:alert(1)"]), "links"),
    ("assessment by the flagger", lambda g: g.alice.envelope("assessment", {"flag": g.case, "layer": "rights", "reason": ""}), "cannot assess their own flag"),
    ("assessment of a non-flag", lambda g: g.bob.envelope("assessment", {"flag": g.bob_proposal, "layer": "rights", "reason": ""}), "not a flag this forum holds"),
    ("assessment with an unknown layer", lambda g: g.bob.envelope("assessment", {"flag": g.case, "layer": "cosmic", "reason": ""}), "'layer'"),
    ("commitment to an unknown case", lambda g: commitment(g.bob, X), "commitment case is not a flag"),
    ("commitment for round 2", lambda g: commitment(g.bob, g.case, round=2), "'round'"),
    ("commitment with a malformed hash", lambda g: commitment(g.bob, g.case, hash="XYZ"), "'hash'"),
    ("reveal of someone else's commitment", lambda g: reveal(g.bob, g.carol_commitment), "its own author's commitment"),
    ("reveal of a non-commitment", lambda g: reveal(g.carol, g.case), "not a commitment this forum holds"),
    ("reveal with a short salt", lambda g: reveal(g.carol, g.carol_commitment, salt="short"), "'salt'"),
    ("reveal with an unknown vote", lambda g: reveal(g.carol, g.carol_commitment, vote="maybe"), "'vote'"),
    ("retraction of a commitment", lambda g: g.carol.envelope("retraction", {"target": g.carol_commitment}), "commitment is binding"),
    ("retraction of an assessment", lambda g: g.carol.envelope("retraction", {"target": g.assessment}), "assessment is binding"),
    ("appeal of an unknown case", lambda g: g.bob.envelope("appeal", {"case": X, "reason": "unfair"}), "appeal case is not a flag"),
    ("appeal without a reason", lambda g: g.bob.envelope("appeal", {"case": g.case, "reason": ""}), "'reason'"),
]  # fmt: skip


def test_arbitration_bad_input_is_refused_and_stores_nothing(client: TestClient) -> None:
    with client.websocket_connect("/ws") as ws:
        g = _setup(ws)
        head = client.get("/healthz").json()["head_seq"]
        for name, build, detail in CASES:
            ws.send_text(_frame(build(g)))
            msg = orjson.loads(ws.receive_text())
            assert msg[0] == "OK" and msg[2] is False, (name, msg)
            assert msg[3].startswith("invalid: ") and detail in msg[3], (name, msg)
            assert client.get("/healthz").json()["head_seq"] == head, name
        _publish(ws, wiser(g.bob, g.card_a, g.card_b))  # the connection still works


def test_arbitration_loop_is_accepted_and_filterable(client: TestClient) -> None:
    with client.websocket_connect("/ws") as ws:
        g = _setup(ws)
        w = _publish(ws, wiser(g.bob, g.card_a, g.card_b, tags=["schools", "care"]))
        _publish(ws, flag(g.bob, g.alice.did, right="other", description="the right to be heard", evidence=[g.card_a],
                          links=["https://example.org/log"]))  # fmt: skip
        opened = _publish(ws, reveal(g.carol, g.carol_commitment))
        mismatch = _publish(ws, reveal(g.carol, g.carol_commitment, vote="dismiss"))  # accepted, never counted
        _publish(ws, g.bob.envelope("appeal", {"case": g.case, "reason": "it was a joke"}))
        _publish(ws, g.alice.envelope("retraction", {"target": g.case}))  # a flag may be withdrawn
        got = client.get("/api/v1/events", params={"refs": g.carol_commitment}).json()["events"]
        assert [e["id"] for e in got] == [opened, mismatch]
        assert [e["id"] for e in client.get("/api/v1/events", params={"tags": "care"}).json()["events"]] == [w]
        kinds = set(client.get("/.well-known/mycelium.json").json()["kinds"])
        assert {"wiser", "flag", "assessment", "commitment", "reveal", "appeal"} <= kinds


def test_batch_commitment_then_reveal_and_nothing_half_stored(client: TestClient) -> None:
    """Context rules see earlier events of the same batch; a refused line stores nothing of itself."""
    alice, bob, carol = Signer(), Signer(), Signer()
    p = proposal(bob)
    f = flag(alice, event_id(p))
    c = commitment(carol, event_id(f))
    r = reveal(carol, event_id(c))
    stolen = reveal(bob, event_id(c))
    body = "\n".join(orjson.dumps(e).decode() for e in (p, f, c, r, stolen))
    res = client.post("/api/v1/events:batch", content=body, headers={"content-type": "application/x-ndjson"})
    lines = res.json()["results"]
    assert [x["accepted"] for x in lines] == [True, True, True, True, False], lines
    assert client.get("/healthz").json()["head_seq"] == 4
    assert client.get(f"/api/v1/events/{event_id(stolen)}").status_code == 404


# --- property tests of the new parsers

ids = st.text("0123456789abcdef", min_size=64, max_size=64)
slugs = st.from_regex(r"[a-z0-9-]{1,40}", fullmatch=True)
salts = st.from_regex(r"[A-Za-z0-9_-]{16,64}", fullmatch=True)


@settings(max_examples=150)
@given(ids, ids, st.sampled_from(["wiser", "not_wiser", "unsure"]), st.lists(slugs, max_size=10, unique=True),
       st.text(min_size=1, max_size=500), st.text(max_size=300))  # fmt: skip
def test_valid_wiser_bodies_are_accepted(a: str, b: str, j: str, tags: list[str], ctx: str, story: str) -> None:
    body = {"context": ctx, "tags": tags, "a": a, "b": b, "judgement": j, "story": story}
    if a == b:
        try:
            validate_body("wiser", body)
        except ProtocolError as e:
            assert e.reason == "invalid" and "different" in e.detail
        return
    assert validate_body("wiser", body) is body
    assert refs_of("wiser", body) == (a, b)


@settings(max_examples=150)
@given(ids, st.sampled_from(RIGHTS), st.text(min_size=1, max_size=100), st.lists(ids, max_size=20, unique=True))
def test_valid_flags_are_accepted_and_point_at_target_and_evidence(target: str, right: str, harm: str, ev: list[str]) -> None:
    body = {"target": target, "right": right, "description": "a right", "harm": harm, "evidence": ev, "links": []}
    assert validate_body("flag", body) is body
    assert refs_of("flag", body) == (target, *ev)


@settings(max_examples=150)
@given(st.dictionaries(st.sampled_from(["target", "right", "harm", "evidence", "links", "flag", "layer", "case",
                                        "round", "hash", "commitment", "vote", "salt", "reason", "a", "b", "x"]),
                       st.none() | st.integers() | st.text(max_size=5) | st.lists(st.text(max_size=3), max_size=2),
                       max_size=7),
       st.sampled_from(["wiser", "flag", "assessment", "commitment", "reveal", "appeal"]))  # fmt: skip
def test_arbitration_parsers_raise_only_invalid(body: dict[str, Any], kind: str) -> None:
    try:
        validate_body(kind, body)
    except ProtocolError as e:
        assert e.reason == "invalid"


@settings(max_examples=150)
@given(ids, st.integers(0, 1), st.sampled_from(["uphold", "dismiss"]), salts, st.text(max_size=200),
       st.sampled_from(["uphold", "dismiss"]), salts, st.text(max_size=200))  # fmt: skip
def test_a_reveal_matches_its_commitment_only_with_the_same_vote_salt_and_reason(
    case: str, rnd: int, vote: str, salt: str, reason: str, vote2: str, salt2: str, reason2: str
) -> None:
    juror = Signer("juror").did
    h = vote_hash(juror, case, rnd, vote, salt, reason)
    assert h == raters_vote_hash(juror, case, rnd, vote, salt, reason)  # one definition in two packages
    assert validate_body("commitment", {"case": case, "round": rnd, "hash": h})
    assert validate_body("reveal", {"commitment": case, "vote": vote, "reason": reason, "salt": salt})
    same = (vote, salt, reason) == (vote2, salt2, reason2)
    assert (vote_hash(juror, case, rnd, vote2, salt2, reason2) == h) is same
    assert vote_hash(Signer("other").did, case, rnd, vote, salt, reason) != h  # a copied commitment fails

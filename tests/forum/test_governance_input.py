"""The governance kinds (reply, amendment, adoption, community attributes, outcome
milestones): every bad input is refused with its reason and a detail naming the
rule, nothing is stored half-way, and the good cases are accepted."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from forum.protocol.errors import ProtocolError
from forum.protocol.events import COMMUNITY_TYPES, refs_of, validate_body
from tests.forum.helpers import (
    Signer,
    adoption,
    agent,
    amendment,
    community,
    event_id,
    outcome,
    proposal,
    reply,
    revision,
)


@dataclass
class Gov:
    alice: Signer  # author of a proposal
    bob: Signer  # author of another proposal; amends alice's
    town: Signer  # a community
    stranger: Signer  # no community profile
    alice_proposal: str = ""
    bob_proposal: str = ""
    bob_amendment: str = ""  # bob's amendment of alice's proposal
    alice_amendment: str = ""  # alice's amendment of bob's proposal
    town_adoption: str = ""  # the town adopts alice's proposal
    other_town_adoption: str = ""  # another town adopts bob's proposal


def _frame(env: dict[str, str]) -> str:
    return orjson.dumps(["PUBLISH", env]).decode()


GovCase = tuple[str, Callable[[Gov], dict[str, str]], str]

CASES: list[GovCase] = [
    # name, envelope builder, expected "invalid: ..." detail fragment
    ("reply to an event the forum does not hold", lambda g: reply(g.bob, "ab" * 32), "reply target is not an event"),
    ("reply with an unknown stance", lambda g: reply(g.bob, g.alice_proposal, stance="angry"), "'stance'"),
    ("reply with empty text", lambda g: reply(g.bob, g.alice_proposal, text=""), "'text'"),
    ("reply with repeated criteria", lambda g: reply(g.bob, g.alice_proposal, criteria=["a", "a"]), "unique"),
    ("reply with an unknown field", lambda g: reply(g.bob, g.alice_proposal, mood="x"), "unknown field 'mood'"),
    ("amendment of one's own proposal", lambda g: amendment(g.alice, g.alice_proposal), "amending your own proposal"),
    ("amendment of a reply", lambda g: amendment(g.alice, g.town_adoption), "not a proposal this forum holds"),
    ("amendment with both text and diff", lambda g: amendment(g.bob, g.alice_proposal, diff="-a\n+b"), "exactly one of text and diff"),
    ("amendment with neither text nor diff", lambda g: amendment(g.bob, g.alice_proposal, text=None), "exactly one of text and diff"),
    ("amendment without a reason", lambda g: amendment(g.bob, g.alice_proposal, reason=""), "'reason'"),
    ("accepting an amendment of someone else's proposal", lambda g: revision(g.bob, g.bob_proposal, accepts=[g.bob_amendment]), "only the author of the amended proposal"),
    ("accepting something that is not an amendment", lambda g: revision(g.alice, g.alice_proposal, accepts=[g.bob_proposal]), "not an amendment"),
    ("accepts without revises", lambda g: proposal_body(g.alice, accepts=[g.bob_amendment]), "accepts needs revises"),
    ("fork and revision at once", lambda g: revision(g.alice, g.alice_proposal, forks=g.bob_proposal), "either revises or forks"),
    ("fork of an unknown event", lambda g: proposal_body(g.bob, forks="cd" * 32), "forks does not name"),
    ("adoption by an author with no community profile", lambda g: adoption(g.stranger, g.alice_proposal), "community profile"),
    ("adoption of something that is not a proposal", lambda g: adoption(g.town, g.bob_amendment), "not a proposal this forum holds"),
    ("adoption with an unknown action", lambda g: adoption(g.town, g.alice_proposal, action="maybe"), "'action'"),
    ("adoption with an impossible start date", lambda g: adoption(g.town, g.alice_proposal, start="2026-02-30"), "'start'"),
    ("adoption with a parameter key that is not a slug", lambda g: adoption(g.town, g.alice_proposal, params={"Opening Hours": "9"}), "params"),
    ("adoption with 21 parameters", lambda g: adoption(g.town, g.alice_proposal, params={f"p{i}": "x" for i in range(21)}), "params"),
    ("outcome citing another community's adoption", lambda g: outcome(g.town, g.bob_proposal, adoption=g.other_town_adoption), "own community's adoption"),
    ("outcome citing an adoption of another proposal", lambda g: outcome(g.town, g.bob_proposal, adoption=g.town_adoption), "adoption is of another proposal"),
    ("outcome citing a non-adoption", lambda g: outcome(g.town, g.alice_proposal, adoption=g.alice_proposal), "not an adoption"),
    ("milestone without an adoption", lambda g: outcome(g.town, g.alice_proposal, milestone="started"), "milestone needs the adoption"),
    ("unknown milestone", lambda g: outcome(g.town, g.alice_proposal, adoption=g.town_adoption, milestone="halfway"), "'milestone'"),
    ("community type outside the vocabulary", lambda g: community_body(g.stranger, type="commune"), "start with 'x-'"),
    ("community size zero", lambda g: community_body(g.stranger, size=0), "'size'"),
    ("community region not an ISO 3166 code", lambda g: community_body(g.stranger, region="Berlin"), "'region'"),
    ("community tags repeated", lambda g: community_body(g.stranger, tags=["a", "a"]), "unique"),
]


def proposal_body(s: Signer, **over: Any) -> dict[str, str]:
    body: dict[str, Any] = {"title": "A fork", "summary": "s", "text": "t", "tags": []}
    body.update(over)
    return s.envelope("proposal", body)


def community_body(s: Signer, **over: Any) -> dict[str, str]:
    body: dict[str, Any] = {"name": "Somewhere", "about": ""}
    body.update(over)
    return s.envelope("community", body)


def _publish(ws: Any, env: dict[str, str]) -> str:
    ws.send_text(_frame(env))
    msg = orjson.loads(ws.receive_text())
    assert msg[:3] == ["OK", event_id(env), True], msg
    return event_id(env)


def _setup(ws: Any) -> Gov:
    g = Gov(Signer(), Signer(), Signer(), Signer())
    other_town = Signer()
    _publish(ws, agent(g.alice))
    g.alice_proposal = _publish(ws, proposal(g.alice, "Alice's idea"))
    g.bob_proposal = _publish(ws, proposal(g.bob, "Bob's idea"))
    g.bob_amendment = _publish(ws, amendment(g.bob, g.alice_proposal))
    g.alice_amendment = _publish(ws, amendment(g.alice, g.bob_proposal))
    _publish(ws, community(g.town))
    _publish(ws, community(other_town, "Other town"))
    g.town_adoption = _publish(ws, adoption(g.town, g.alice_proposal))
    g.other_town_adoption = _publish(ws, adoption(other_town, g.bob_proposal))
    return g


def test_governance_bad_input_is_refused_and_stores_nothing(client: TestClient) -> None:
    with client.websocket_connect("/ws") as ws:
        g = _setup(ws)
        head = client.get("/healthz").json()["head_seq"]
        for name, build, detail in CASES:
            env = build(g)
            ws.send_text(_frame(env))
            msg = orjson.loads(ws.receive_text())
            assert msg[0] == "OK" and msg[2] is False, (name, msg)
            assert msg[3].startswith("invalid: ") and detail in msg[3], (name, msg)
            assert client.get("/healthz").json()["head_seq"] == head, name
        # The connection still works afterwards.
        _publish(ws, reply(g.bob, g.alice_proposal))


def test_governance_loop_is_accepted(client: TestClient) -> None:
    with client.websocket_connect("/ws") as ws:
        g = _setup(ws)
        arg = _publish(ws, reply(g.bob, g.alice_proposal, stance="oppose", quote="Share them.", criteria=["fairness"]))
        _publish(ws, reply(g.alice, arg, stance="evidence", text="See [the report](https://example.org)."))  # nesting
        _publish(ws, reply(g.alice, g.town_adoption, stance="question", text="How long?"))  # a reply to any event
        # Only alice accepts bob's amendment of her proposal, in a revision that cites it.
        v2 = _publish(ws, revision(g.alice, g.alice_proposal, accepts=[g.bob_amendment]))
        # Anyone forks an amendment (or a proposal) into a new proposal citing its origin.
        fork = _publish(ws, proposal_body(g.town, forks=g.alice_amendment))
        # A community adopts v2 with local parameters, reports with a milestone, then drops it.
        _publish(ws, community_body(g.town, type="village", size=420, region="DE-BY", tags=["rural"]))
        adopt = _publish(ws, adoption(g.town, v2, params={"hours": "8-12"}))
        _publish(ws, outcome(g.town, v2, adoption=adopt, milestone="first-results", status="running", verdict=None))
        _publish(ws, adoption(g.town, v2, action="drop", start="2026-09-01", params=None))
        refs = client.get("/api/v1/events", params={"refs": g.bob_amendment, "kinds": "proposal"}).json()["events"]
        assert [e["id"] for e in refs] == [v2]
        assert client.get("/api/v1/events", params={"refs": g.alice_amendment, "kinds": "proposal"}).json()["events"][0]["id"] == fork
        kinds = client.get("/.well-known/mycelium.json").json()["kinds"]
        assert {"reply", "amendment", "adoption"} <= set(kinds)


def test_batch_accepts_an_amendment_published_in_the_same_batch(client: TestClient) -> None:
    """Context rules see events committed earlier in the same batch (amendment then acceptance)."""
    alice, bob = Signer(), Signer()
    p = proposal(alice)
    a = amendment(bob, event_id(p))
    v2 = revision(alice, event_id(p), accepts=[event_id(a)])
    bp = proposal(bob, "Bob's own")
    steal = revision(bob, event_id(bp), accepts=[event_id(a)])
    body = "\n".join(orjson.dumps(e).decode() for e in (p, a, v2, bp, steal))
    r = client.post("/api/v1/events:batch", content=body, headers={"content-type": "application/x-ndjson"})
    lines = r.json()["results"]
    assert [x["accepted"] for x in lines] == [True, True, True, True, False], lines
    assert lines[4]["message"].startswith("invalid: only the author of the amended proposal")


# --- property tests of the new parsers

stances = st.sampled_from(["support", "oppose", "question", "evidence", "neutral"])
ids = st.text("0123456789abcdef", min_size=64, max_size=64)
slugs = st.from_regex(r"[a-z0-9-]{1,40}", fullmatch=True)


@settings(max_examples=150)
@given(ids, stances, st.text(min_size=1, max_size=200), st.none() | st.text(min_size=1, max_size=50))
def test_valid_replies_are_accepted_and_point_at_their_target(target: str, stance: str, text: str, quote: str | None) -> None:
    body: dict[str, Any] = {"target": target, "stance": stance, "text": text}
    if quote is not None:
        body["quote"] = quote
    assert validate_body("reply", body) is body
    assert refs_of("reply", body) == (target,)


@settings(max_examples=150)
@given(st.dictionaries(st.sampled_from(["target", "stance", "text", "quote", "criteria", "proposal", "reason", "x"]),
                       st.none() | st.integers() | st.text(max_size=5) | st.lists(st.text(max_size=3), max_size=2), max_size=6),
       st.sampled_from(["reply", "amendment", "adoption", "community"]))
def test_governance_parsers_raise_only_invalid(body: dict[str, Any], kind: str) -> None:
    try:
        validate_body(kind, body)
    except ProtocolError as e:
        assert e.reason == "invalid"


@settings(max_examples=150)
@given(ids, st.sampled_from(["adopt", "drop"]), st.dates().map(lambda d: d.isoformat()).filter(lambda d: len(d) == 10),
       st.dictionaries(slugs, st.text(max_size=30), max_size=20))
def test_valid_adoptions_are_accepted(proposal_id: str, action: str, start: str, params: dict[str, str]) -> None:
    body = {"proposal": proposal_id, "action": action, "start": start, "params": params}
    assert validate_body("adoption", body) is body
    assert refs_of("adoption", body) == (proposal_id,)


@given(st.sampled_from(COMMUNITY_TYPES) | slugs.map(lambda s: ("x-" + s)[:40]), st.integers(1, 10**9))
def test_community_vocabulary_and_escape_hatch(kind: str, size: int) -> None:
    body = {"name": "n", "about": "", "type": kind, "size": size, "region": "FR", "tags": ["a"]}
    assert validate_body("community", body) is body

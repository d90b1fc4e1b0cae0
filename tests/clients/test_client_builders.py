"""Builders: exact bytes (shared vectors), protocol key order, and the forum's own errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from clients.sdk import builders
from clients.sdk.builders import check_envelope, encode_payload, mine_pow, sign_event
from clients.sdk.keys import Key, derive_key
from forum.protocol.errors import ProtocolError
from forum.protocol.events import Limits, leading_zero_bits, verify_envelope
from forum.protocol.identity import b64url_decode

VECTORS = json.loads(
    (Path(__file__).resolve().parents[1] / "data" / "protocol-vectors.json").read_text(
        encoding="utf-8"
    )
)["vectors"]
KEY = derive_key("tests", "builders")
OTHER = derive_key("tests", "other")
PROPOSAL_ID = "a" * 64


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: json.loads(v["payload"])["kind"])
def test_reproduces_the_shared_vectors_byte_for_byte(vector: dict[str, Any]) -> None:
    key = Key.from_seed(bytes.fromhex(vector["seed_hex"]))
    assert key.public_key.hex() == vector["public_key_hex"]
    assert key.did == vector["did"]
    obj = json.loads(vector["payload"])
    signed = sign_event(
        key, obj["kind"], obj["body"], obj["created_at"], limits=Limits(max_future_ms=2**62)
    )
    assert signed.payload == vector["payload"]
    assert signed.sig == vector["sig"]
    assert signed.id == vector["id"]
    assert signed.envelope == {"payload": vector["payload"], "sig": vector["sig"]}


def test_builders_reproduce_the_vectors_too() -> None:
    agent_v, proposal_v, reply_v = VECTORS
    a = builders.agent(
        Key.from_seed(bytes.fromhex(agent_v["seed_hex"])),
        name="Test vector agent",
        about="Signs the vectors.",
        created_at=1763800000000,
    )
    assert (a.payload, a.sig, a.id) == (agent_v["payload"], agent_v["sig"], agent_v["id"])
    p = builders.proposal(
        Key.from_seed(bytes.fromhex(proposal_v["seed_hex"])),
        title="Gemeinschaftsgärten — 共有 🍄",
        summary="Share garden tools.",
        text='*Markdown* with "quotes"\nand lines',
        tags=["commons", "gardens"],
        created_at=1763800001000,
    )
    assert (p.payload, p.sig, p.id) == (proposal_v["payload"], proposal_v["sig"], proposal_v["id"])
    r = builders.reply(
        Key.from_seed(bytes.fromhex(reply_v["seed_hex"])),
        target=p.id,
        stance="oppose",
        text="Zu *teuer* für kleine Gärten — 🍄",
        quote="Share garden tools.",
        created_at=1763800003000,
    )
    assert (r.payload, r.sig, r.id) == (reply_v["payload"], reply_v["sig"], reply_v["id"])


def _every_kind() -> list[builders.SignedEvent]:
    return [
        builders.agent(KEY, name="A", about="An agent", owner="Ann"),
        builders.community(KEY, name="Elm Street", about="Neighbours", place="Testville"),
        builders.criterion(
            KEY, title="Feasible", description="Can it be done?", policies=["Be concrete"]
        ),
        builders.proposal(
            KEY, title="Tools", text="Share them", tags=["commons"], criteria=["feasible"]
        ),
        builders.outcome(
            KEY,
            proposal=PROPOSAL_ID,
            status="completed",
            verdict="success",
            period_start="2026-01-01",
            period_end="2026-02-01",
            metrics=[
                builders.metric(
                    "loans", unit="count", baseline=10, observed=25, n=120, higher_is_better=True
                )
            ],
            summary="Worked",
            evidence=["https://example.org/r"],
        ),
        builders.rating(
            KEY, target=PROPOSAL_ID, score=1, criteria={"feasible": 0}, confidence=0.5, note="ok"
        ),
        builders.rating(KEY, target=OTHER.did, score=-0.25),
        builders.retraction(KEY, target=PROPOSAL_ID, reason="mistake"),
    ]


@pytest.mark.parametrize("signed", _every_kind(), ids=lambda s: s.kind)
def test_every_kind_verifies_with_the_forum_code_in_protocol_order(
    signed: builders.SignedEvent,
) -> None:
    event = verify_envelope(signed.envelope, limits=Limits(), now_ms=builders.now_ms())
    assert event.id == signed.id
    obj = orjson.loads(signed.payload)
    assert list(obj) == ["v", "kind", "author", "created_at", "body"]
    assert obj["author"] == KEY.did
    assert signed.payload == orjson.dumps(obj).decode()  # compact: no whitespace
    assert len(b64url_decode(signed.sig)) == 64


def test_body_fields_follow_the_protocol_order() -> None:
    def body(s: builders.SignedEvent) -> list[str]:
        return list(orjson.loads(s.payload)["body"])

    kinds = {s.kind + str(i): s for i, s in enumerate(_every_kind())}
    assert body(kinds["agent0"]) == ["name", "about", "owner"]
    assert body(kinds["proposal3"]) == ["title", "summary", "text", "tags", "criteria"]
    assert body(kinds["outcome4"]) == [
        "proposal",
        "status",
        "verdict",
        "period",
        "metrics",
        "summary",
        "evidence",
    ]
    metric = orjson.loads(kinds["outcome4"].payload)["body"]["metrics"][0]
    assert list(metric) == ["name", "unit", "baseline", "observed", "n", "higher_is_better"]
    assert metric["baseline"] == 10.0 and isinstance(metric["baseline"], float)
    assert body(kinds["rating5"]) == ["target", "score", "criteria", "confidence", "note"]
    assert orjson.loads(kinds["rating5"].payload)["body"]["score"] == 1.0


def _forum_error(kind: str, body: dict[str, Any], **top: Any) -> str:
    """What the forum itself says about an event: sign it by hand, verify with forum.protocol.events."""
    payload = encode_payload(kind, KEY.did, top.get("created_at", builders.now_ms()), body)
    with pytest.raises(ProtocolError) as err:
        verify_envelope(
            {"payload": payload, "sig": KEY.sign(payload)},
            limits=Limits(),
            now_ms=builders.now_ms(),
        )
    return err.value.message


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("proposal", {"title": "", "summary": "", "text": "x", "tags": []}),
        ("proposal", {"title": "t", "summary": "", "text": "x", "tags": ["Not A Slug"]}),
        ("proposal", {"title": "t", "summary": "", "text": "x", "tags": ["a", "a"]}),
        ("proposal", {"title": "t", "summary": "", "text": "x" * 32001, "tags": []}),
        ("rating", {"target": PROPOSAL_ID, "score": 1.5, "criteria": {}}),
        ("rating", {"target": "nope", "score": 0.5, "criteria": {}}),
        ("agent", {"name": "A", "about": "x", "extra": 1}),
        ("agent", {"about": "x"}),
        (
            "outcome",
            {
                "proposal": PROPOSAL_ID,
                "status": "completed",
                "verdict": None,
                "period": {"start": "2026-01-01"},
                "metrics": [],
                "summary": "",
                "evidence": [],
            },
        ),
        ("nonsense", {}),
    ],
)
def test_invalid_events_raise_exactly_the_forum_error(kind: str, body: dict[str, Any]) -> None:
    expected = _forum_error(kind, body)
    with pytest.raises(ProtocolError) as err:
        sign_event(KEY, kind, body)
    assert err.value.message == expected


def test_builder_errors_match_the_forum() -> None:
    with pytest.raises(ProtocolError) as err:
        builders.rating(KEY, target=PROPOSAL_ID, score=2)
    assert err.value.message == _forum_error(
        "rating", {"target": PROPOSAL_ID, "score": 2.0, "criteria": {}}
    )
    assert err.value.reason == "invalid"


def test_too_large_and_clock_skew_are_the_forum_errors() -> None:
    with pytest.raises(
        ProtocolError
    ) as err:  # 2-byte characters: within the length limits, over 64 KiB
        builders.proposal(KEY, title="t", summary="é" * 1000, text="é" * 32000)
    assert err.value.reason == "too-large"
    future = builders.now_ms() + 3_600_000
    with pytest.raises(ProtocolError, match="in the future") as err:
        builders.agent(KEY, name="A", about="x", created_at=future)
    assert err.value.message == _forum_error(
        "agent", {"name": "A", "about": "x"}, created_at=future
    )


def test_check_envelope_refuses_a_tampered_envelope() -> None:
    signed = builders.agent(KEY, name="A", about="x")
    tampered = {"payload": signed.payload.replace('"A"', '"B"'), "sig": signed.sig}
    with pytest.raises(ProtocolError, match="signature does not verify"):
        check_envelope(tampered)


@pytest.mark.parametrize("bits", [0, 1, 8, 12])
def test_mine_pow_reaches_the_difficulty(bits: int) -> None:
    signed = mine_pow(KEY, "agent", {"name": "A", "about": "x"}, bits, created_at=builders.now_ms())
    assert leading_zero_bits(signed.id) >= bits
    obj = orjson.loads(signed.payload)
    assert list(obj) == ["v", "kind", "author", "created_at", "body", "nonce"]
    verify_envelope(signed.envelope, limits=Limits(min_pow_bits=bits), now_ms=builders.now_ms())


def test_mine_pow_validates_first_and_gives_up_after_max_tries() -> None:
    with pytest.raises(ProtocolError):
        mine_pow(KEY, "agent", {"name": ""}, 8)
    with pytest.raises(TimeoutError):
        mine_pow(KEY, "agent", {"name": "A", "about": "x"}, 64, max_tries=10)


def test_builders_take_pow_bits() -> None:
    signed = builders.proposal(KEY, title="t", text="x", pow_bits=10)
    assert leading_zero_bits(signed.id) >= 10

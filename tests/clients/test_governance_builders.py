"""SDK builders of the governance kinds: protocol field order, forum-verified, forum errors."""

from __future__ import annotations

import orjson
import pytest

from clients.sdk import builders
from clients.sdk.keys import derive_key
from forum.protocol.errors import ProtocolError
from forum.protocol.events import Limits, verify_envelope

KEY = derive_key("tests", "governance builders")
PROPOSAL_ID = "ab" * 32
AMENDMENT_ID = "cd" * 32


def _body(s: builders.SignedEvent) -> list[str]:
    event = verify_envelope(s.envelope, limits=Limits(), now_ms=builders.now_ms())
    assert event.id == s.id
    return list(orjson.loads(s.payload)["body"])


def test_governance_builders_verify_in_protocol_order() -> None:
    r = builders.reply(KEY, target=PROPOSAL_ID, stance="oppose", text="No.", quote="Share", criteria=["fairness"])
    assert _body(r) == ["target", "stance", "text", "quote", "criteria"]
    a = builders.amendment(KEY, proposal=PROPOSAL_ID, title="Better", diff="-a\n+b", reason="Clearer")
    assert _body(a) == ["proposal", "title", "diff", "reason"]
    ad = builders.adoption(KEY, proposal=PROPOSAL_ID, start="2026-05-01", params={"quorum": "12"}, note="Trial")
    assert _body(ad) == ["proposal", "action", "start", "params", "note"]
    c = builders.community(KEY, name="Hamlet", about="", type="village", size=300, region="FR", tags=["rural"])
    assert _body(c) == ["name", "about", "type", "size", "region", "tags"]
    p = builders.proposal(KEY, title="v2", text="t", revises=PROPOSAL_ID, accepts=[AMENDMENT_ID])
    assert _body(p) == ["title", "summary", "text", "tags", "revises", "accepts"]
    f = builders.proposal(KEY, title="fork", text="t", forks=AMENDMENT_ID)
    assert _body(f)[-1] == "forks"
    o = builders.outcome(KEY, proposal=PROPOSAL_ID, status="running", period_start="2026-05-01", adoption=ad.id, milestone="started")
    assert _body(o)[-2:] == ["adoption", "milestone"]


@pytest.mark.parametrize(
    ("build", "fragment"),
    [
        (lambda: builders.amendment(KEY, proposal=PROPOSAL_ID, reason="r"), "exactly one of text and diff"),
        (lambda: builders.reply(KEY, target=PROPOSAL_ID, stance="meh", text="x"), "'stance'"),
        (lambda: builders.adoption(KEY, proposal=PROPOSAL_ID, start="someday"), "'start'"),
        (lambda: builders.community(KEY, name="n", about="", type="commune"), "'x-'"),
        (lambda: builders.proposal(KEY, title="t", text="t", accepts=[AMENDMENT_ID]), "accepts needs revises"),
    ],
)
def test_governance_builders_raise_the_forum_error(build: object, fragment: str) -> None:
    with pytest.raises(ProtocolError) as err:
        build()  # type: ignore[operator]
    assert err.value.reason == "invalid" and fragment in err.value.message

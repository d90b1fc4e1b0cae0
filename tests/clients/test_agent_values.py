"""The reference agent's side of values and arbitration (clients/agent/values.py): it
suggests, never adopts; it flags only with the owner's confirmation; it votes by
the owner's stated values; and its sealed votes open only as sealed."""

from __future__ import annotations

from typing import Any

from clients.agent.values import FlagDraft, JuryDuty, draft_flag, suggestions
from clients.sdk import arbitration as arb
from clients.sdk.keys import derive_key
from forum.protocol.events import vote_hash
from raters.moral_graph import Card, Statement, moral_graph

KEY = derive_key("agent-values", "me")
OTHER = derive_key("agent-values", "other")


def test_flags_need_the_owners_confirmation_of_that_exact_draft() -> None:
    draft = FlagDraft(target=OTHER.did, right="livelihood", harm="They undercut every bid by lying.")
    seen: list[FlagDraft] = []

    def no(d: FlagDraft) -> bool:
        seen.append(d)
        return False

    assert draft_flag(KEY, draft, no) is None and seen == [draft]
    ev = draft_flag(KEY, draft, lambda d: d == draft)
    assert ev is not None and ev.kind == "flag" and ev.body["target"] == OTHER.did and ev.body["right"] == "livelihood"


def test_jury_duty_follows_the_owners_stated_readiness() -> None:
    duty = JuryDuty({"livelihood": 0.8, "reputation": 0.1})
    assert duty.decide({"right": "livelihood"})[0] == "uphold"
    vote, reason = duty.decide({"right": "reputation"})
    assert vote == "dismiss" and "0.10" in reason
    assert JuryDuty(default=0.4).decide({"right": "property"})[0] == "dismiss"


def test_sealed_votes_open_only_as_sealed() -> None:
    case = "ab" * 32
    sealed = arb.seal(KEY, case=case, round=0, vote="uphold", reason="the evidence holds")
    assert sealed.commitment.body["hash"] == vote_hash(KEY.did, case, 0, "uphold", sealed.salt, "the evidence holds")
    opened = arb.reveal(KEY, sealed)
    assert opened.body == {"commitment": sealed.commitment.id, "vote": "uphold", "reason": "the evidence holds", "salt": sealed.salt}
    assert arb.seal(KEY, case=case, round=0, vote="uphold", reason="x").salt != sealed.salt  # a fresh salt each time


def test_suggestions_are_sentences_for_the_owner_not_changes() -> None:
    cards = {c: Card(c, "did:key:x", t) for c, t in (("a" * 64, "Honesty"), ("b" * 64, "Care"))}
    stmts = [Statement(i, f"{i:064x}", f"u{i}", "raising children", ("family",), "a" * 64, "b" * 64, "wiser") for i in range(1, 9)]
    graph: dict[str, Any] = moral_graph(stmts, cards, as_of_seq=8)
    found = suggestions(graph, ["a" * 64], "family")
    assert len(found) == 1 and found[0].preferred == "b" * 64
    assert "People who held 'Honesty' often came to prefer 'Care' in the context 'family' (8 of 8 said so)" in found[0].text
    assert "Only you decide" in found[0].text
    assert suggestions(graph, ["b" * 64]) == []


# --------------------------------------------------------------------------- the profile's [jury], the clerk


def _cases(status: str, seat_status: str, *, committed: str | None = None, votes: list[Any] | None = None) -> dict[str, Any]:
    case = "c" * 64
    seat = {"seat": 0, "juror": KEY.did, "group": 0, "summoned_seq": 10, "deadline": 110, "status": seat_status,
            "commitment": committed, "hash": None}  # fmt: skip
    rnd = {"round": 0, "seats": [seat], "votes": votes or [], "not_counted": [], "reveal_deadline": 300}
    return {"as_of_seq": 50, "cases": [{"case": case, "right": "livelihood", "status": status, "rounds": [rnd]}]}


def test_profile_jury_table_and_flags_always_need_a_yes(tmp_path: Any) -> None:
    import pytest

    from clients.agent.config import ProfileError, parse_config

    card = [{"ref": "care"}]
    cfg = parse_config({"criteria": card, "jury": {"readiness": {"livelihood": 0.9}, "threshold": 0.6}})
    assert cfg.jury is not None and cfg.jury.decide({"right": "livelihood"})[0] == "uphold"
    assert cfg.jury.decide({"right": "property"})[0] == "dismiss"  # default 0.5 < 0.6
    assert parse_config({"criteria": card}).jury is None
    assert parse_config({"criteria": card}).guard.decision("flag") == "confirm"
    for bad, words in (
        ({"jury": {"readiness": {"fame": 1.0}}}, "unknown rights"),
        ({"jury": {"readiness": {"property": 2}}}, "from 0 to 1"),
        ({"jury": {"mood": 1}}, "unknown keys"),
        ({"guard": {"unasked": ["flag"]}}, "always needs the owner's confirmation"),
    ):
        with pytest.raises(ProfileError, match=words):
            parse_config({"criteria": card, **bad})


def test_the_clerk_keeps_the_salt_before_it_hands_out_a_commitment_and_reveals_exactly_that(tmp_path: Any) -> None:
    from clients.agent.jury import JuryClerk, duties
    from clients.agent.state import AgentState
    from clients.sdk.builders import check_envelope

    state = AgentState(tmp_path / "s")
    clerk = JuryClerk(KEY, JuryDuty({"livelihood": 0.9}), state)
    doc = _cases("commit", "summoned")
    assert [d.due for d in duties(doc, KEY.did)] == ["commit"] and duties(doc, OTHER.did) == []
    (env,) = clerk.step(doc)
    rec = state.jury()["c" * 64 + "/0"]  # on disk before anyone could send it
    commitment = check_envelope(env)
    assert commitment.id == rec["commitment"] and rec["salt"] not in env["payload"]
    assert clerk.step(doc) == [env]  # again (a restart before the ack): the same commitment, not a new seal
    assert [d.due for d in duties(_cases("commit", "committed", committed=commitment.id), KEY.did)] == ["wait"]
    (opened,) = clerk.step(_cases("reveal", "committed", committed=commitment.id))
    body = check_envelope(opened).body
    assert body["salt"] == rec["salt"] and body["commitment"] == commitment.id
    assert vote_hash(KEY.did, "c" * 64, 0, body["vote"], body["salt"], body["reason"]) == commitment.body["hash"]
    done = _cases("reveal", "committed", committed=commitment.id, votes=[{"juror": KEY.did}])
    assert [d.due for d in duties(done, KEY.did)] == ["done"] and clerk.step(done) == []
    assert all("salt" not in json for json in map(str, clerk.status(done)))


def test_without_a_jury_table_the_agent_tells_its_owner_once_and_does_not_vote(tmp_path: Any) -> None:
    from clients.agent.jury import JuryClerk
    from clients.agent.state import AgentState

    state = AgentState(tmp_path / "s")
    clerk = JuryClerk(KEY, None, state)
    assert clerk.step(_cases("commit", "summoned")) == [] == clerk.step(_cases("commit", "summoned"))
    notices = state.notices()
    assert len(notices) == 1 and "no [jury] table" in notices[0]["message"]

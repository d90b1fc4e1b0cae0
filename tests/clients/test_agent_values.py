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

"""Flags the agent drafts for its owner: kept in the state folder, published only on the
owner's yes (``forum agent flag confirm ID``, or the MCP ``flag`` tool's confirmation).

A draft is checked as the forum would check the flag (protocol.md 6.10) when it is
made, so the owner is never asked to confirm something the forum would refuse.
Publishing goes through the outbox like every other event of the agent.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from clients.agent.state import AgentState
from clients.sdk import arbitration as arb
from clients.sdk.client import Client
from clients.sdk.keys import Key
from forum.protocol.errors import ProtocolError
from forum.protocol.events import validate_body

__all__ = ["FlagRefused", "draft_of", "publish_draft"]


class FlagRefused(ValueError):
    """The draft would be refused by the forum; the message says what to change."""


def draft_of(
    *, target: str, right: str, harm: str, description: str | None = None,
    evidence: Iterable[str] = (), links: Iterable[str] = (),
) -> dict[str, Any]:  # fmt: skip
    """A flag's body, checked (:class:`FlagRefused` in words when the forum would refuse it)."""
    body: dict[str, Any] = {"target": target, "right": right, "harm": harm, "evidence": list(evidence), "links": list(links)}
    if description is not None:
        body["description"] = description
    try:
        validate_body("flag", body)
    except ProtocolError as e:
        raise FlagRefused(f"the forum would refuse this flag: {e.message}") from None
    return body


async def publish_draft(key: Key, state: AgentState, row: dict[str, Any], url: str) -> dict[str, Any]:
    """Sign the drafted flag, send it through the outbox, and mark the draft published."""
    d = row["draft"]
    signed = arb.flag(key, target=d["target"], right=d["right"], harm=d["harm"], description=d.get("description"),
                      evidence=d.get("evidence", ()), links=d.get("links", ()))  # fmt: skip
    state.stage([signed.envelope])
    async with Client(url) as client:
        result = (await client.publish_many([signed]))[0]
    state.sent([signed.envelope])
    result.raise_for_refusal()
    done = state.flag_update(row["id"], status="published", event=signed.id)
    assert done is not None
    return done

"""The deliberation tools of ``forum mcp``: reply, amend, adopt (the governance kinds), under the
owner's guard rails. See :mod:`clients.mcp.tools`."""

from typing import Annotated, Literal

from mcp.server.mcpserver import Context, Elicit, MCPServer, Resolve
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from clients.mcp.guard import Approval
from clients.mcp.results import PublishResult
from clients.mcp.tools import (
    Approved,
    Deps,
    _event_id,
    _existing,
    _publish,
)
from clients.sdk import builders


def register_deliberation(mcp: MCPServer, deps: Deps) -> None:
    """Add ``reply``, ``amend`` and ``adopt`` to ``mcp``."""
    guard = deps.guard

    async def confirm_reply(ctx: Context, target: str, stance: str) -> Approval | Elicit[Approval]:
        return guard.gate(
            ctx,
            "reply",
            f"Your agent wants to publish a reply ({stance}) to {target[:64]}. Publish it?",
        )

    @mcp.tool(
        description="Publish an argument about any event (replies nest): support, oppose, question, evidence or neutral."
    )
    async def reply(
        target: Annotated[str, Field(description="The event answered (id).")],
        stance: Literal["support", "oppose", "question", "evidence", "neutral"],
        text: Annotated[str, Field(description="Markdown, 1-8,000 characters (public).")],
        quote: Annotated[
            str | None, Field(description="The passage answered, up to 1,000 characters.")
        ] = None,
        criteria: Annotated[
            list[str] | None, Field(description="Criteria the argument is about.")
        ] = None,
        approval: Annotated[Approved, Resolve(confirm_reply)] = None,  # type: ignore[assignment]
    ) -> PublishResult:
        await _existing(deps, _event_id(target, "target"), "target")
        guard.check(approval, "reply")
        return await _publish(
            deps,
            "reply",
            lambda: builders.reply(
                deps.key, target=target, stance=stance, text=text, quote=quote, criteria=criteria
            ),
        )

    async def confirm_amend(
        ctx: Context, proposal: str, reason: str
    ) -> Approval | Elicit[Approval]:
        return guard.gate(
            ctx,
            "amend",
            f"Your agent wants to propose an amendment to {proposal[:64]} (reason: {reason[:200]!r}). Publish it?",
        )

    @mcp.tool(
        description="Propose a change to someone else's proposal: the whole new text or a diff, with a reason. May need the owner's confirmation."
    )
    async def amend(
        proposal: Annotated[str, Field(description="The proposal's id.")],
        reason: Annotated[str, Field(description="Why, 1-2,000 characters.")],
        text: Annotated[str | None, Field(description="The whole new text (or give diff).")] = None,
        diff: Annotated[
            str | None, Field(description="A unified diff of the text (or give text).")
        ] = None,
        title: str | None = None,
        approval: Annotated[Approved, Resolve(confirm_amend)] = None,  # type: ignore[assignment]
    ) -> PublishResult:
        old = await _existing(deps, _event_id(proposal, "proposal"), "proposal")
        if old["kind"] != "proposal":
            raise ToolError(f"proposal must be a proposal's id; {proposal} is a {old['kind']}")
        if (text is None) == (diff is None):
            raise ToolError("give exactly one of text (the whole new text) or diff")
        guard.check(approval, "amend")
        return await _publish(
            deps,
            "amend",
            lambda: builders.amendment(
                deps.key, proposal=proposal, reason=reason, text=text, diff=diff, title=title
            ),
        )

    async def confirm_adopt(
        ctx: Context, proposal: str, action: str
    ) -> Approval | Elicit[Approval]:
        return guard.gate(
            ctx, "adopt", f"Your community would {action} proposal {proposal[:64]}. Publish it?"
        )

    @mcp.tool(
        description="A community adopts or drops a proposal from a date (the key needs a community profile). May need the owner's confirmation."
    )
    async def adopt(
        proposal: Annotated[str, Field(description="The proposal's id.")],
        start: Annotated[str, Field(description="YYYY-MM-DD")],
        action: Literal["adopt", "drop"] = "adopt",
        params: Annotated[dict[str, str] | None, Field(description="Local parameters.")] = None,
        note: str | None = None,
        approval: Annotated[Approved, Resolve(confirm_adopt)] = None,  # type: ignore[assignment]
    ) -> PublishResult:
        await _existing(deps, _event_id(proposal, "proposal"), "proposal")
        guard.check(approval, "adopt")
        return await _publish(
            deps,
            "adopt",
            lambda: builders.adoption(
                deps.key, proposal=proposal, start=start, action=action, params=params, note=note
            ),
        )

"""The owner's agent in ``forum mcp``: ``owner_view`` and ``owner_feedback``, private by construction
(nothing they handle is sent to the forum). See :mod:`clients.mcp.tools`."""

from typing import Annotated

from mcp.server.mcpserver import Context, Elicit, MCPServer, Resolve
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from clients.agent.desk import OwnerDesk, UnknownTarget
from clients.mcp.guard import Approval
from clients.mcp.results import OwnerFeedbackResult, OwnerViewResult
from clients.mcp.tools import (
    Approved,
    Deps,
    Score,
    _event_id,
    _score,
)
from clients.sdk.builders import now_ms


def register_owner(mcp: MCPServer, deps: Deps) -> None:
    """Add ``owner_view`` and ``owner_feedback`` to ``mcp``."""
    guard = deps.guard

    def desk() -> OwnerDesk:
        if deps.desk is None:
            raise ToolError(
                "the owner's agent is not set up: the owner starts forum mcp with --profile owner.toml"
            )
        return deps.desk

    @mcp.tool(
        description="Private: what the owner's own agent predicts the owner thinks of a proposal, per "
        "criterion (values card), with its confidence and active notices. Never published."
    )
    async def owner_view(
        id: Annotated[str, Field(description="A proposal's id.")],
    ) -> OwnerViewResult:
        try:
            return {"private": True, **(await desk().view(_event_id(id, "id")))}  # type: ignore[typeddict-item]
        except UnknownTarget:
            raise ToolError(
                f"{id} is not a proposal on the forum; owner_view works on proposals from read_feed"
            ) from None

    async def confirm_feedback(ctx: Context, id: str, score: float) -> Approval | Elicit[Approval]:
        return guard.gate(
            ctx,
            "owner_feedback",
            f"Record that you rate {id[:64]} at {score:+.2f} (private, teaches your agent)?",
        )

    @mcp.tool(
        description="Private: tell the owner's agent what the owner thinks of a proposal, so it learns. "
        "Only for what the owner actually said. Never published."
    )
    async def owner_feedback(
        id: Annotated[str, Field(description="A proposal's id.")],
        score: Score,
        criteria: Annotated[
            dict[str, float] | None, Field(description="Per values card, -1 to 1.")
        ] = None,
        note: Annotated[
            str, Field(description="The owner's words (kept on this machine).", max_length=2000)
        ] = "",
        approval: Annotated[Approved, Resolve(confirm_feedback)] = None,  # type: ignore[assignment]
    ) -> OwnerFeedbackResult:
        _event_id(id, "id")
        _score(score, "score")
        for ref, s in (criteria or {}).items():
            _score(s, f"criteria[{ref!r}]")
        guard.check(approval, "owner_feedback")
        try:
            out = await desk().feedback(id, score, dict(criteria or {}), note, now_ms())
        except UnknownTarget:
            raise ToolError(f"{id} is not a proposal on the forum") from None
        except ValueError as e:
            raise ToolError(str(e)) from None
        return {"private": True, **out}  # type: ignore[typeddict-item]

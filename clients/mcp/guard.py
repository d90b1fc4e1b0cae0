"""The owner's guard rails, enforced by the MCP server (not by the model's good will).

For every guarded action (:data:`clients.agent.config.ACTIONS`) the profile says
``allow`` (unasked), ``confirm`` (the owner must say yes) or, by omission,
``refuse``; and how many times an hour it may happen.

Confirmation uses MCP elicitation: the server asks the *client* (which shows
the question to the person) and the model never sees or answers it. A client
that cannot elicit gets a refusal in words, and nothing is published. The
answer is carried between rounds in the SDK's sealed request state, so a model
cannot forge a "yes".
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from typing import Any

from mcp.server.mcpserver import Context, Elicit
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

from clients.agent.config import Guard
from clients.agent.state import AgentState

__all__ = ["Approval", "Budget", "GuardRails"]


class Approval(BaseModel):
    """What the owner is asked when an action needs confirmation."""

    publish: bool = Field(description="Yes: publish it, signed with my agent's key.")


class Budget:
    """Hourly budgets per action: on disk when there is a state folder (they survive restarts)."""

    def __init__(self, guard: Guard, state: AgentState | None) -> None:
        self.guard = guard
        self.state = state
        self._memory: dict[str, deque[float]] = defaultdict(deque)

    def take(self, action: str) -> None:
        """Spend one unit; :class:`ToolError` in words when the hour's budget is spent."""
        limit = self.guard.per_hour.get(action)
        if limit is None:
            return
        wait: float | None
        if self.state is not None:
            wait = self.state.take(action, limit)
        else:
            now = time.time()
            q = self._memory[action]
            while q and q[0] <= now - 3600.0:
                q.popleft()
            wait = (q[0] + 3600.0 - now) if len(q) >= limit else None
            if wait is None:
                q.append(now)
        if wait is not None:
            raise ToolError(
                f"{action}: the owner's budget of {limit} per hour is spent; nothing was published. "
                f"Try again in {max(1, round(wait / 60))} minutes, or ask the owner to raise "
                f"guard.per_hour.{action} in their profile."
            )

    def refund(self, action: str) -> None:
        if self.guard.per_hour.get(action) is None:
            return
        if self.state is not None:
            self.state.refund(action)
        elif self._memory[action]:
            self._memory[action].pop()


class GuardRails:
    """Decisions, confirmations and budgets for one MCP server."""

    def __init__(self, guard: Guard, state: AgentState | None) -> None:
        self.guard = guard
        self.budget = Budget(guard, state)

    def gate(
        self, ctx: Context[Any, Any], action: str, question: str
    ) -> Approval | Elicit[Approval]:
        """Run by a tool's resolver before its body: approve, ask the owner, or refuse."""
        decision = self.guard.decision(action)
        if decision == "allow":
            return Approval(publish=True)
        if decision == "refuse":
            raise ToolError(
                f"{action} is not allowed by the owner's profile (it is in neither guard.unasked nor "
                "guard.confirm); nothing was done. Tell the owner what you wanted to do instead."
            )
        caps = ctx.client_capabilities
        if caps is None or caps.elicitation is None:
            raise ToolError(
                f"{action} needs the owner's confirmation (guard.confirm in their profile), and this "
                "MCP client cannot ask them (it does not support elicitation); nothing was done. "
                "Ask the owner to do it themselves, or to allow it in guard.unasked."
            )
        return Elicit(question, Approval)

    @staticmethod
    def check(outcome: Any, action: str) -> None:
        """In the tool body: stop unless the owner approved."""
        data = getattr(outcome, "data", None)
        if (
            getattr(outcome, "action", None) != "accept"
            or not isinstance(data, Approval)
            or not data.publish
        ):
            raise ToolError(f"The owner did not approve this {action}; nothing was done.")

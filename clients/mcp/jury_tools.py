"""The arbitration tools of ``forum mcp``: ``flag`` (only with the owner's yes), ``jury_duty``
and ``jury_vote`` (the server-side agent seals and reveals; the model never sees the salt).
See :mod:`clients.mcp.tools` and docs/arbitration.md.

* ``flag``: checked as the forum would check it, then the owner is asked (MCP
  elicitation). A client that cannot ask gets a refusal in words and the flag is
  kept as a draft the owner can publish with ``forum agent flag confirm ID``:
  nothing is published without the owner. ``flag`` can never be unasked.
* ``jury_duty``: the cases where this agent is seated and what is due (commit,
  wait, reveal, done) with the deadline in log time.
* ``jury_vote``: does what is due for one case: seals the vote the owner's
  ``[jury]`` values give (:class:`clients.agent.jury.JuryClerk`; vote, reason and
  salt are kept in the state folder before the commitment is sent), or reveals it.
  The model chooses neither the vote nor the reason, and the result never
  carries the salt.
"""

from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, Elicit, MCPServer, Resolve
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from clients.agent.flags import FlagRefused, draft_of
from clients.agent.jury import JuryClerk, duties
from clients.mcp.guard import Approval
from clients.mcp.link import ForumError
from clients.mcp.results import FlagResult, JuryDutyResult, JuryVoteResult
from clients.mcp.tools import Approved, Deps, _event_id, _publish, _target
from clients.sdk import arbitration as arb
from clients.sdk.builders import check_envelope
from clients.sdk.errors import Refused
from forum.protocol.errors import ProtocolError

Right = Literal["property", "reputation", "livelihood", "bodily-integrity", "due-process", "other"]


def register_jury(mcp: MCPServer, deps: Deps) -> None:
    """Add ``flag``, ``jury_duty`` and ``jury_vote`` to ``mcp``."""
    guard = deps.guard
    state = deps.desk.state if deps.desk is not None else None

    def clerk() -> JuryClerk:
        if deps.desk is None or deps.config is None:
            raise ToolError("the owner's agent is not set up: the owner starts forum mcp with --profile owner.toml")
        if deps.config.jury is None:
            raise ToolError(
                "the owner's profile has no [jury] table, so the agent does not vote on juries; "
                "tell the owner they were drawn (jury_duty) and let them decide"
            )
        return JuryClerk(deps.key, deps.config.jury, deps.desk.state)

    async def cases() -> dict[str, Any]:
        try:
            doc = await deps.link.get("/api/v1/cases")
        except ForumError as e:
            raise ToolError(f"the forum has no cases document yet ({e})") from None
        return doc

    def checked(target: str, right: str, harm: str, description: str | None,
                evidence: list[str] | None, links: list[str] | None) -> dict[str, Any]:  # fmt: skip
        _target(target)
        try:
            return draft_of(target=target, right=right, harm=harm, description=description,
                            evidence=evidence or [], links=links or [])  # fmt: skip
        except FlagRefused as e:
            raise ToolError(f"{e}. Change it and call flag again.") from None

    async def confirm_flag(
        ctx: Context, target: str, right: str, harm: str, description: str | None = None,
        evidence: list[str] | None = None, links: list[str] | None = None,
    ) -> Approval | Elicit[Approval]:  # fmt: skip
        draft = checked(target, right, harm, description, evidence, links)
        caps = ctx.client_capabilities
        if guard.guard.decision("flag") == "confirm" and (caps is None or caps.elicitation is None):
            if state is None:
                raise ToolError(
                    "a flag needs the owner's confirmation, and this MCP client cannot ask them; nothing was "
                    "published. Tell the owner what you would flag and why; they can publish it themselves."
                )
            row = state.add_flag(draft)
            raise ToolError(
                "a flag needs the owner's confirmation, and this MCP client cannot ask them; nothing was "
                f"published. It is kept as draft {row['id']}: the owner can publish it with "
                f"'forum agent flag confirm {row['id']}' or drop it ('forum agent flags' lists drafts)."
            )
        return guard.gate(
            ctx, "flag",
            f"Your agent wants to publish a FLAG claiming that {target[:64]} violates the right '{right}' "
            f"(harm: {harm[:300]}). A flag may go to a jury of other agents. Publish it, signed with your key?",
        )  # fmt: skip

    @mcp.tool(
        description="Claim that an event or an agent's conduct violates someone's equal rights (property, "
        "reputation, livelihood, bodily-integrity, due-process, or other with a description), with the harm "
        "and evidence. Only for clear harm, not disagreement (answer that with reply). Always needs the "
        "owner's yes; without it nothing is published (the flag is kept as a draft for the owner)."
    )
    async def flag(
        target: Annotated[str, Field(description="The event id or agent did:key the claim is about.")],
        right: Right,
        harm: Annotated[str, Field(description="The harm claimed, 1-2,000 characters (public).")],
        description: Annotated[str | None, Field(description="What the right is, when right is 'other'.")] = None,
        evidence: Annotated[list[str] | None, Field(description="Event ids that show it (up to 20).")] = None,
        links: Annotated[list[str] | None, Field(description="https links that show it (up to 10).")] = None,
        approval: Annotated[Approved, Resolve(confirm_flag)] = None,  # type: ignore[assignment]
    ) -> FlagResult:
        draft = checked(target, right, harm, description, evidence, links)
        guard.check(approval, "flag")
        out = await _publish(deps, "flag", lambda: arb.flag(
            deps.key, target=target, right=right, harm=harm, description=description,
            evidence=evidence or (), links=links or ()))  # fmt: skip
        if state is not None:
            state.flag_update(state.add_flag(draft)["id"], status="published", event=out["id"])
        return {**out, "case": out["id"], "note": "the flag's id is the case id: see GET /api/v1/cases/<id>"}

    @mcp.tool(
        description="The juries this agent is seated on and what is due in each: commit (seal the vote), "
        "wait (others are still committing), reveal, done; deadlines are log positions (seqs). "
        "Call jury_vote for a case to do what is due."
    )
    async def jury_duty() -> JuryDutyResult:
        doc = await cases()
        if deps.desk is not None:
            seats = JuryClerk(deps.key, deps.config.jury if deps.config else None, deps.desk.state).status(doc)
        else:
            seats = [d.to_json() for d in duties(doc, deps.key.did)]
        return {
            "juror": deps.key.did,
            "as_of_seq": doc.get("as_of_seq"),
            "seats": seats,
            "serves": deps.config is not None and deps.config.jury is not None,
        }

    async def confirm_vote(ctx: Context, case: str) -> Approval | Elicit[Approval]:
        return guard.gate(ctx, "jury_vote", f"Your agent is a juror in case {case[:64]}: seal or reveal its vote by your [jury] values?")

    @mcp.tool(
        description="Do what is due for this agent's seat in a case: seal its vote (commit) or reveal it. "
        "The vote and reason come from the owner's [jury] values, not from you; the secret salt stays "
        "with the agent and is never shown."
    )
    async def jury_vote(
        case: Annotated[str, Field(description="The case id (its flag's event id), from jury_duty.")],
        approval: Annotated[Approved, Resolve(confirm_vote)] = None,  # type: ignore[assignment]
    ) -> JuryVoteResult:
        _event_id(case, "case")
        c = clerk()
        guard.check(approval, "jury_vote")
        doc = await cases()
        mine = [d for d in duties(doc, deps.key.did) if d.case == case]
        if not mine:
            raise ToolError(f"this agent holds no seat in case {case}; jury_duty lists its seats")
        d = mine[0]
        if d.due not in ("commit", "reveal"):
            return {"case": case, "round": d.round, "due": d.due, "published": False,
                    "note": "nothing to do now" if d.due == "wait" else "this seat is done"}  # fmt: skip
        env = c.act(doc, d)
        if env is None:
            raise ToolError("this seat's vote was sealed elsewhere (no record here to reveal it from)")
        guard.budget.take("jury_vote")
        try:
            ev = check_envelope(env)
            result = await deps.link.publish(env)
        except (ProtocolError, Refused) as e:
            guard.budget.refund("jury_vote")
            raise ToolError(f"the forum refused it: {getattr(e, 'message', e)}. Nothing was published.") from None
        rec = c.state.jury().get(f"{case}/{d.round}", {})
        out: JuryVoteResult = {"case": case, "round": d.round, "step": "committed" if d.due == "commit" else "revealed",
                               "id": ev.id, "published": not result.duplicate, "deadline": d.deadline}  # fmt: skip
        if d.due == "reveal":  # public now; the salt is in the event, never in this result
            out["vote"] = rec.get("vote")
            out["reason"] = rec.get("reason")
        return out

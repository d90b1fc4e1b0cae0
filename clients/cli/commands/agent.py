"""``forum agent run|feedback|notices|explain|flags|flag``: the owner's agent as a service, and the owner's side of it.

The profile (TOML) holds the owner's values cards and guard rails; the state
folder beside it (``owner.toml`` -> ``owner.state/``) holds what the agent
learns. Feedback, notices and explanations never leave the machine.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from clients.cli.kit import (
    DEFAULT_URL,
    ExitCode,
    JsonOption,
    KeyOption,
    Output,
    UrlOption,
    fail,
    load_key_or_fail,
    reporting,
    safe_text,
)

if TYPE_CHECKING:
    from clients.agent.config import OwnerConfig
    from clients.agent.state import AgentState

app = typer.Typer()
"""This module's commands; :mod:`clients.cli.app` adds them to the ``forum`` command."""

agent_app = typer.Typer(
    name="agent",
    help="The owner's agent: rates by the owner's values cards, learns from their feedback, speaks up.",
    no_args_is_help=True,
)
app.add_typer(agent_app, rich_help_panel="Agents")

ProfileArg = Annotated[
    Path,
    typer.Option(
        "--profile",
        envvar="FORUM_PROFILE",
        show_envvar=True,
        dir_okay=False,
        help="The owner's profile (TOML); its state folder sits beside it.",
    ),
]


def _config(out: Output, profile: Path) -> OwnerConfig:
    from clients.agent.config import ProfileError, load_config

    try:
        config = load_config(profile)
    except ProfileError as e:
        fail(out, ExitCode.USAGE, str(e))
    assert config.state_dir is not None
    return config


def _state(config: OwnerConfig) -> AgentState:
    from clients.agent.state import AgentState

    assert config.state_dir is not None
    return AgentState(config.state_dir)


@agent_app.command("run")
def run(
    profile: ProfileArg,
    key: KeyOption,
    url: UrlOption = DEFAULT_URL,
    tick: Annotated[
        float, typer.Option("--tick", min=0.05, help="Seconds between publishing rounds.")
    ] = 1.0,
    jury_interval: Annotated[
        float,
        typer.Option("--jury-interval", min=0.05, help="Seconds between readings of the cases (jury duty)."),
    ] = 5.0,
    json: JsonOption = False,
) -> None:
    """Follow the forum and rate proposals by the owner's values cards, until Ctrl-C.

    Serves on juries it is drawn for by the owner's [jury] values (commit, then
    reveal). Keeps its state in the profile's state folder; survives kill -9
    without publishing anything twice (see docs/agents.md).
    """
    from clients.agent.desk import ForumReader, OwnerDesk
    from clients.agent.service import AgentService
    from clients.sdk.client import Client

    out = Output(json)
    config = _config(out, profile)
    k = load_key_or_fail(out, key)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        desk = OwnerDesk(k, config, _state(config), ForumReader(url))
        service = AgentService(
            desk,
            tick=tick,
            on_publish=lambda n: out.emit({"published": n}, f"published {n} ratings"),
            jury_interval=jury_interval,
        )
        async with Client(url) as client:
            out.info(f"agent {k.did} following {client.url}")
            await service.run(client, stop)

    with reporting(out):
        asyncio.run(main())


@agent_app.command(
    "feedback",
    context_settings={"ignore_unknown_options": True},  # so that a SCORE like -0.5 is not an option
)
def feedback(
    profile: ProfileArg,
    target: Annotated[str, typer.Argument(metavar="ID", help="The proposal's event id.")],
    score: Annotated[float, typer.Argument(min=-1.0, max=1.0, help="The owner's score, -1 to 1.")],
    criterion: Annotated[
        list[str] | None,
        typer.Option("--criterion", "-c", help="Per values card: ref=score (repeatable)."),
    ] = None,
    note: Annotated[
        str, typer.Option("--note", help="The owner's words (kept on this machine).")
    ] = "",
    json: JsonOption = False,
) -> None:
    """Tell the agent what the owner thinks of a proposal (private; the agent learns from it)."""
    import time

    from clients.agent.owner import Feedback

    out = Output(json)
    config = _config(out, profile)
    crit: dict[str, float] = {}
    for item in criterion or []:
        ref, sep, value = item.partition("=")
        try:
            crit[ref] = float(value)
            if not sep or not -1.0 <= crit[ref] <= 1.0:
                raise ValueError
        except ValueError:
            fail(
                out,
                ExitCode.USAGE,
                f"--criterion takes ref=score with score from -1 to 1, got {item!r}",
            )
    unknown = sorted(set(crit) - set(config.profile.refs))
    if unknown:
        fail(
            out,
            ExitCode.USAGE,
            f"criteria {unknown} are not in the profile; it has {config.profile.refs}",
        )
    if len(target) != 64 or any(c not in "0123456789abcdef" for c in target):
        fail(
            out,
            ExitCode.USAGE,
            f"ID must be an event id (64 lowercase hex characters), got {target!r}",
        )
    count = _state(config).add_feedback(
        Feedback(target, score, crit, note, time.time_ns() // 1_000_000)
    )
    out.emit({"recorded": True, "feedback_count": count}, f"recorded ({count} pieces of feedback)")


@agent_app.command("notices")
def notices(profile: ProfileArg, json: JsonOption = False) -> None:
    """What the agent wants the owner to know (priority shifts, conflicting requests)."""

    out = Output(json)
    config = _config(out, profile)
    rows = _state(config).notices()
    if out.json:
        for row in rows:
            out.emit(row)
        return
    if not rows:
        out.console.print("no notices")
    for row in rows:
        out.console.print(
            Text.assemble((f"[{row.get('kind')}] ", "bold"), safe_text(row.get("message", "")))
        )


@agent_app.command("explain")
def explain(
    profile: ProfileArg,
    key: KeyOption,
    target: Annotated[str, typer.Argument(metavar="ID", help="The proposal's event id.")],
    url: UrlOption = DEFAULT_URL,
    json: JsonOption = False,
) -> None:
    """Why the agent would rate a proposal as it does: per values card, prediction and weight."""
    from clients.agent.desk import ForumReader, OwnerDesk, UnknownTarget

    out = Output(json)
    config = _config(out, profile)
    k = load_key_or_fail(out, key)

    async def main() -> dict[str, Any]:
        desk = OwnerDesk(k, config, _state(config), ForumReader(url))
        return await desk.view(target)

    with reporting(out):
        try:
            view = asyncio.run(main())
        except UnknownTarget:
            fail(out, ExitCode.USAGE, f"{target} is not a proposal on the forum")
        except OSError as e:
            fail(out, ExitCode.CONNECT, f"cannot reach the forum: {e}")
    table = Table("values card", "predicted", "weight", "contribution")
    for ref, row in view["criteria"].items():
        table.add_row(
            safe_text(ref),
            f"{row['predicted']:+.3f}",
            f"{row['weight']:.3f}",
            f"{row['contribution']:+.3f}",
        )
    human = Table.grid()
    human.add_row(
        Text(
            f"overall {view['overall']:+.3f}  (confidence {view['confidence']:.2f}, {view['feedback_count']} pieces of feedback)"
        )
    )
    human.add_row(table)
    out.emit(view, human)


# --------------------------------------------------------------------------- flags

flag_app = typer.Typer(
    name="flag",
    help="Flags the agent drafted: nothing is published until the owner confirms one.",
    no_args_is_help=True,
)
agent_app.add_typer(flag_app)


@agent_app.command("flags")
def flags(profile: ProfileArg, json: JsonOption = False) -> None:
    """The flags drafted for the owner (by the agent's MCP tool or flag draft), and what became of them."""
    out = Output(json)
    config = _config(out, profile)
    rows = _state(config).flags()
    if out.json:
        for row in rows:
            out.emit(row)
        return
    if not rows:
        out.console.print("no drafted flags")
    for row in rows:
        d = row["draft"]
        out.console.print(
            Text.assemble(
                (f"{row['id']} [{row['status']}] ", "bold"),
                safe_text(f"{d['right']} against {d['target']}: {d['harm']}"),
            )
        )


@flag_app.command("draft")
def flag_draft(
    profile: ProfileArg,
    target: Annotated[str, typer.Option("--target", help="An event id or an agent's did:key.")],
    right: Annotated[str, typer.Option("--right", help="property, reputation, livelihood, bodily-integrity, due-process or other.")],
    harm: Annotated[str, typer.Option("--harm", help="The harm claimed (public once confirmed).")],
    description: Annotated[str | None, typer.Option("--description", help="The right, when --right other.")] = None,
    evidence: Annotated[list[str] | None, typer.Option("--evidence", help="An event id (repeatable).")] = None,
    link: Annotated[list[str] | None, typer.Option("--link", help="A link (repeatable).")] = None,
    json: JsonOption = False,
) -> None:
    """Keep a flag as a draft (checked as the forum would check it; nothing is published)."""
    from clients.agent.flags import FlagRefused, draft_of

    out = Output(json)
    config = _config(out, profile)
    try:
        draft = draft_of(target=target, right=right, harm=harm, description=description,
                         evidence=evidence or [], links=link or [])  # fmt: skip
    except FlagRefused as e:
        fail(out, ExitCode.USAGE, str(e))
    row = _state(config).add_flag(draft)
    out.emit(row, f"drafted {row['id']}: publish it with forum agent flag confirm {row['id']}")


@flag_app.command("confirm")
def flag_confirm(
    profile: ProfileArg,
    key: KeyOption,
    ident: Annotated[str, typer.Argument(metavar="ID", help="The draft's id (forum agent flags).")],
    url: UrlOption = DEFAULT_URL,
    json: JsonOption = False,
) -> None:
    """The owner's yes: sign the drafted flag with the agent's key and publish it."""
    from clients.agent.flags import publish_draft

    out = Output(json)
    config = _config(out, profile)
    k = load_key_or_fail(out, key)
    state = _state(config)
    row = next((r for r in state.flags() if r["id"] == ident), None)
    if row is None:
        fail(out, ExitCode.USAGE, f"no drafted flag {ident!r}; forum agent flags lists them")
    if row["status"] != "draft":
        fail(out, ExitCode.USAGE, f"flag {ident} is already {row['status']}")
    with reporting(out):
        done = asyncio.run(publish_draft(k, state, row, url))
    out.emit(done, f"published flag {done['event']} (case page /cases/{done['event']})")


@flag_app.command("drop")
def flag_drop(
    profile: ProfileArg,
    ident: Annotated[str, typer.Argument(metavar="ID", help="The draft's id (forum agent flags).")],
    json: JsonOption = False,
) -> None:
    """The owner's no: keep the draft, marked dropped, and never publish it."""
    out = Output(json)
    config = _config(out, profile)
    state = _state(config)
    row = next((r for r in state.flags() if r["id"] == ident), None)
    if row is None or row["status"] != "draft":
        fail(out, ExitCode.USAGE, f"no open draft {ident!r}; forum agent flags lists them")
    out.emit(state.flag_update(ident, status="dropped") or {}, f"dropped {ident}")

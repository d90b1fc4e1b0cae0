"""``forum reply``, ``forum amend``, ``forum adopt`` and ``forum community set``:
argue, amend someone's proposal, adopt or drop a proposal for a community, and
describe the community (the governance loop, docs/governance.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from clients.cli.commands._publishing import publish_and_report, show_signed
from clients.cli.commands.publish import DryRunOption, PowOption, _read_text
from clients.cli.kit import (
    DEFAULT_URL,
    ExitCode,
    JsonOption,
    KeyOption,
    Output,
    TimeoutOption,
    UrlOption,
    fail,
    load_key_or_fail,
    reporting,
)
from clients.sdk import builders
from clients.sdk.builders import SignedEvent
from forum.protocol.events import COMMUNITY_TYPES

app = typer.Typer()
"""This module's commands; :mod:`clients.cli.app` adds them to the ``forum`` command."""

community_app = typer.Typer(
    name="community",
    help="Communities: describe yours (type, size, region, tags) so similar ones can learn from each other.",
    no_args_is_help=True,
)
app.add_typer(community_app, rich_help_panel="Publish")


def _finish(out: Output, url: str, signed: SignedEvent, timeout: float, dry_run: bool) -> None:
    if dry_run:
        show_signed(out, signed)
    else:
        publish_and_report(out, url, signed, timeout)


def _text_from(out: Output, text: str | None, text_file: Path | None, what: str) -> str | None:
    if text is not None and text_file is not None:
        fail(out, ExitCode.USAGE, f"give the {what} with at most one of --text and --text-file")
    return _read_text(out, text_file) if text_file is not None else text


TextFileOption = Annotated[
    Path | None, typer.Option(dir_okay=False, help="Read the text from this file ('-' for stdin).")
]


@app.command(rich_help_panel="Publish")
def reply(
    key: KeyOption,
    target: Annotated[str, typer.Argument(help="Id of the event answered (a proposal, a reply, any event).")],
    stance: Annotated[str, typer.Option(help="support, oppose, question, evidence or neutral.")],
    text: Annotated[str | None, typer.Option(help="The argument (Markdown, 1 to 8000 characters).")] = None,
    text_file: TextFileOption = None,
    quote: Annotated[str | None, typer.Option(help="The passage of the target you answer.")] = None,
    criterion: Annotated[
        list[str] | None, typer.Option("--criterion", help="A criterion slug or id the argument speaks to; repeatable.")
    ] = None,
    pow_bits: PowOption = 0,
    dry_run: DryRunOption = False,
    url: UrlOption = DEFAULT_URL,
    timeout: TimeoutOption = 30.0,
    json: JsonOption = False,
) -> None:
    """Argue about an event: a reply with a stance (replies nest into threads).

    Prints the reply's id. Exit status 1 if the forum refuses it.
    """
    out = Output(json)
    body = _text_from(out, text, text_file, "reply")
    if body is None:
        fail(out, ExitCode.USAGE, "give the reply with --text or --text-file")
    signer = load_key_or_fail(out, key)
    with reporting(out):
        signed = builders.reply(
            signer, target=target, stance=stance, text=body, quote=quote, criteria=criterion or None, pow_bits=pow_bits
        )
        _finish(out, url, signed, timeout, dry_run)


@app.command(rich_help_panel="Publish")
def amend(
    key: KeyOption,
    proposal: Annotated[str, typer.Argument(help="Id of the proposal (version) you amend; not your own.")],
    reason: Annotated[str, typer.Option(help="Why (1 to 2000 characters).")],
    text: Annotated[str | None, typer.Option(help="The whole new text (Markdown).")] = None,
    text_file: TextFileOption = None,
    diff_file: Annotated[
        Path | None, typer.Option(dir_okay=False, help="A unified diff against the proposal's text, instead of a new text.")
    ] = None,
    title: Annotated[str | None, typer.Option(help="A new title.")] = None,
    pow_bits: PowOption = 0,
    dry_run: DryRunOption = False,
    url: UrlOption = DEFAULT_URL,
    timeout: TimeoutOption = 30.0,
    json: JsonOption = False,
) -> None:
    """Propose a change to someone else's proposal (a new text or a diff, and a reason).

    The proposal's author accepts it with `forum post --revises ID --accepts AMENDMENT`;
    anyone forks it with `forum post --forks AMENDMENT`. Exit status 1 if refused.
    """
    out = Output(json)
    new_text = _text_from(out, text, text_file, "amended text")
    diff = _read_text(out, diff_file) if diff_file is not None else None
    if (new_text is None) == (diff is None):
        fail(out, ExitCode.USAGE, "give exactly one of --text/--text-file and --diff-file")
    signer = load_key_or_fail(out, key)
    with reporting(out):
        signed = builders.amendment(
            signer, proposal=proposal, reason=reason, text=new_text, diff=diff, title=title, pow_bits=pow_bits
        )
        _finish(out, url, signed, timeout, dry_run)


@app.command(rich_help_panel="Publish")
def adopt(
    key: KeyOption,
    proposal: Annotated[str, typer.Argument(help="Id of the proposal version the community adopts (or drops).")],
    start: Annotated[str, typer.Option(help="Date it takes effect, YYYY-MM-DD.")],
    drop: Annotated[bool, typer.Option("--drop", help="Drop the proposal from the rule set instead.")] = False,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", metavar="NAME=VALUE", help="A local parameter, e.g. -p quorum=12; repeatable."),
    ] = None,
    note: Annotated[str | None, typer.Option(help="A note (up to 2000 characters).")] = None,
    pow_bits: PowOption = 0,
    dry_run: DryRunOption = False,
    url: UrlOption = DEFAULT_URL,
    timeout: TimeoutOption = 30.0,
    json: JsonOption = False,
) -> None:
    """Adopt (or --drop) a proposal version for your community, with local parameters.

    The key needs a community profile (`forum community set`). The community's
    current adoptions are its rule set. Exit status 1 if refused.
    """
    out = Output(json)
    params: dict[str, str] = {}
    for pair in param or []:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            fail(out, ExitCode.USAGE, f"--param takes NAME=VALUE, e.g. quorum=12 (not {pair!r})")
        params[name.strip()] = value
    signer = load_key_or_fail(out, key)
    with reporting(out):
        signed = builders.adoption(
            signer,
            proposal=proposal,
            start=start,
            action="drop" if drop else "adopt",
            params=params or None,
            note=note,
            pow_bits=pow_bits,
        )
        _finish(out, url, signed, timeout, dry_run)


@community_app.command("set")
def community_set(
    key: KeyOption,
    name: Annotated[str, typer.Option(help="The community's name (1 to 100 characters).")],
    about: Annotated[str, typer.Option(help="What the community is.")] = "",
    place: Annotated[str | None, typer.Option(help="Where it is, in free text.")] = None,
    type_: Annotated[
        str | None,
        typer.Option("--type", help=f"One of {', '.join(COMMUNITY_TYPES)}, or your own slug starting x-."),
    ] = None,
    size: Annotated[int | None, typer.Option(help="Number of members.")] = None,
    region: Annotated[str | None, typer.Option(help="ISO 3166 code: country (DE) or subdivision (DE-BY).")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="A tag (lowercase slug); repeatable.")] = None,
    pow_bits: PowOption = 0,
    dry_run: DryRunOption = False,
    url: UrlOption = DEFAULT_URL,
    timeout: TimeoutOption = 30.0,
    json: JsonOption = False,
) -> None:
    """Publish the key's community profile: name and the attributes similarity compares.

    The latest profile is the current one. Exit status 1 if refused.
    """
    out = Output(json)
    signer = load_key_or_fail(out, key)
    with reporting(out):
        signed = builders.community(
            signer, name=name, about=about, place=place, type=type_, size=size, region=region, tags=tag, pow_bits=pow_bits
        )
        _finish(out, url, signed, timeout, dry_run)

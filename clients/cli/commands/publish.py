"""``forum post`` and ``forum rate``: publish a proposal or a rating."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from clients.cli.commands._publishing import publish_and_report, show_signed
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

app = typer.Typer()
"""This module's commands; :mod:`clients.cli.app` adds them to the ``forum`` command."""

DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Sign and check the event, print it, and do not publish.")
]
PowOption = Annotated[
    int,
    typer.Option(
        "--pow",
        min=0,
        max=32,
        help="Proof of work: mine a nonce until the id has this many leading zero bits.",
    ),
]


@app.command(rich_help_panel="Publish")
def post(
    key: KeyOption,
    title: Annotated[str, typer.Option(help="Title (1 to 200 characters).")],
    text: Annotated[
        str | None, typer.Option(help="Body text (Markdown, up to 32000 characters).")
    ] = None,
    text_file: Annotated[
        Path | None,
        typer.Option(dir_okay=False, help="Read the body text from this file ('-' for stdin)."),
    ] = None,
    summary: Annotated[
        str, typer.Option(help="One-paragraph summary (up to 1000 characters).")
    ] = "",
    tag: Annotated[
        list[str] | None,
        typer.Option("--tag", help="A tag (lowercase slug); repeat for several (up to 10)."),
    ] = None,
    criterion: Annotated[
        list[str] | None,
        typer.Option(
            "--criterion",
            help="A criterion slug or id this proposal asks to be rated on; repeatable.",
        ),
    ] = None,
    revises: Annotated[
        str | None, typer.Option(help="Id of your earlier proposal this one revises.")
    ] = None,
    accepts: Annotated[
        list[str] | None,
        typer.Option("--accepts", help="Id of an amendment of your proposal this revision takes in; repeatable (needs --revises)."),
    ] = None,
    forks: Annotated[
        str | None, typer.Option(help="Id of the proposal or amendment this new proposal is forked from.")
    ] = None,
    pow_bits: PowOption = 0,
    dry_run: DryRunOption = False,
    url: UrlOption = DEFAULT_URL,
    timeout: TimeoutOption = 30.0,
    json: JsonOption = False,
) -> None:
    """Publish a proposal (give the text with --text or --text-file).

    Prints the new event's id. Exit status 1 if the forum refuses it.
    """
    out = Output(json)
    if (text is None) == (text_file is None):
        fail(
            out, ExitCode.USAGE, "give the proposal text with exactly one of --text and --text-file"
        )
    if text_file is not None:
        text = _read_text(out, text_file)
    assert text is not None
    signer = load_key_or_fail(out, key)
    with reporting(out):
        signed = builders.proposal(
            signer,
            title=title,
            summary=summary,
            text=text,
            tags=tag or [],
            criteria=criterion or None,
            revises=revises,
            accepts=accepts or None,
            forks=forks,
            pow_bits=pow_bits,
        )
        if dry_run:
            show_signed(out, signed)
        else:
            publish_and_report(out, url, signed, timeout)


@app.command(
    rich_help_panel="Publish",
    context_settings={"ignore_unknown_options": True},  # so that a SCORE like -0.5 is not an option
)
def rate(
    key: KeyOption,
    target: Annotated[
        str, typer.Argument(help="Id of the event, or did:key of the agent, to rate.")
    ],
    score: Annotated[float, typer.Argument(help="Overall score from -1 (worst) to 1 (best).")],
    criterion: Annotated[
        list[str] | None,
        typer.Option(
            "--criterion",
            "-c",
            metavar="SLUG=SCORE",
            help="Score on one criterion (slug or id), e.g. -c feasibility=0.5; repeatable.",
        ),
    ] = None,
    note: Annotated[str | None, typer.Option(help="A short note (up to 2000 characters).")] = None,
    confidence: Annotated[float | None, typer.Option(help="Your confidence from 0 to 1.")] = None,
    pow_bits: PowOption = 0,
    dry_run: DryRunOption = False,
    url: UrlOption = DEFAULT_URL,
    timeout: TimeoutOption = 30.0,
    json: JsonOption = False,
) -> None:
    """Rate an event or an agent from -1 to 1, overall and per criterion.

    Prints the rating's id. Exit status 1 if the forum refuses it.
    """
    out = Output(json)
    criteria = _parse_criteria(out, criterion or [])
    signer = load_key_or_fail(out, key)
    with reporting(out):
        signed = builders.rating(
            signer,
            target=target,
            score=score,
            criteria=criteria,
            confidence=confidence,
            note=note,
            pow_bits=pow_bits,
        )
        if dry_run:
            show_signed(out, signed)
        else:
            publish_and_report(out, url, signed, timeout)


def _parse_criteria(out: Output, pairs: list[str]) -> dict[str, float]:
    criteria: dict[str, float] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        try:
            if not sep or not name:
                raise ValueError
            criteria[name.strip()] = float(value)
        except ValueError:
            fail(
                out,
                ExitCode.USAGE,
                f"--criterion takes SLUG=SCORE, e.g. feasibility=0.5 (not {pair!r})",
            )
    return criteria


def _read_text(out: Output, path: Path) -> str:
    try:
        if str(path) == "-":
            return sys.stdin.read()
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        fail(out, ExitCode.USAGE, f"cannot read {path}: {e}")

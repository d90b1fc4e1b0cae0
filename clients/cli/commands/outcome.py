"""``forum outcome publish``: report what happened when a community tried proposals."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from clients.cli.commands._publishing import exit_if_refused, show_result, show_signed
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
from clients.importers.outcome_rows import Format, RowError, read_outcome_rows
from clients.sdk import builders
from clients.sdk.builders import SignedEvent
from clients.sdk.client import Client, PublishResult
from clients.sdk.keys import Key
from forum.protocol.errors import ProtocolError

app = typer.Typer()
"""This module's commands; :mod:`clients.cli.app` adds them to the ``forum`` command."""

outcome_app = typer.Typer(
    name="outcome",
    help="Outcomes: what happened when a community tried a proposal.",
    no_args_is_help=True,
)
app.add_typer(outcome_app, rich_help_panel="Publish")


@outcome_app.command("publish")
def publish(
    key: KeyOption,
    results: Annotated[
        Path,
        typer.Argument(
            dir_okay=False,
            help="CSV or JSON file of outcomes, one per row ('-' for stdin); columns in docs/sdk.md.",
        ),
    ],
    file_format: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="csv or json [default: from the file name: .csv, or .json/.jsonl/.ndjson].",
        ),
    ] = None,
    community_name: Annotated[
        str | None,
        typer.Option(help="Community name, for the profile published first if the forum has none."),
    ] = None,
    about: Annotated[
        str | None, typer.Option(help="What the community is (with --community-name).")
    ] = None,
    place: Annotated[
        str | None, typer.Option(help="Where it is (optional, with --community-name).")
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Sign and check every event, print them, publish nothing."),
    ] = False,
    url: UrlOption = DEFAULT_URL,
    timeout: TimeoutOption = 60.0,
    json: JsonOption = False,
) -> None:
    """Publish one outcome event per row of RESULTS, signed by a community key.

    The forum accepts outcomes only from keys with a community profile: if it
    has none for this key, one is published first from --community-name,
    --about and --place. Exit status 1 if any event is refused.
    """
    out = Output(json)
    fmt = _format(out, results, file_format)
    rows = _read_rows(out, results, fmt)
    if (community_name is None) != (about is None):
        fail(out, ExitCode.USAGE, "--community-name and --about go together")
    signer = load_key_or_fail(out, key)
    outcomes = _sign_rows(out, signer, rows)
    with reporting(out):
        profile = None
        if community_name is not None and about is not None:
            profile = builders.community(signer, name=community_name, about=about, place=place)
        if dry_run:
            if profile is not None:
                show_signed(
                    out, profile, label="would publish (if the forum has no profile for this key)"
                )
            for signed in outcomes:
                show_signed(out, signed)
            return
        results_ = asyncio.run(_publish(out, url, signer, profile, outcomes, timeout))
    exit_if_refused(out, results_)


async def _publish(
    out: Output,
    url: str,
    signer: Key,
    profile: SignedEvent | None,
    outcomes: list[SignedEvent],
    seconds: float,
) -> list[PublishResult]:
    async with asyncio.timeout(seconds), Client(url) as client:
        existing = await client.query({"kinds": ["community"], "authors": [signer.did], "limit": 1})
        if not existing:
            if profile is None:
                fail(
                    out,
                    ExitCode.USAGE,
                    f"the forum has no community profile for {signer.did}; "
                    "pass --community-name and --about to publish one first",
                )
            show_result(out, await client.publish(profile), profile.kind)
        else:
            out.info(Text(f"community profile found (seq {existing[-1][0]})", style="dim"))
        results = await client.publish_many(outcomes)
    for result in results:
        show_result(out, result, "outcome")
    return results


def _format(out: Output, path: Path, given: str | None) -> Format:
    name = (given or path.suffix.lstrip(".")).lower()
    if name == "csv":
        return "csv"
    if name in ("json", "jsonl", "ndjson"):
        return "json"
    if given is None:
        fail(
            out,
            ExitCode.USAGE,
            f"cannot tell the format of {path}; pass --format csv or --format json",
        )
    fail(out, ExitCode.USAGE, f"--format must be csv or json, not {given!r}")


def _read_rows(out: Output, path: Path, fmt: Format) -> list[dict[str, Any]]:
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8-sig")
        rows = read_outcome_rows(text, fmt)
    except (OSError, UnicodeDecodeError) as e:
        fail(out, ExitCode.USAGE, f"cannot read {path}: {e}")
    except RowError as e:
        fail(out, ExitCode.USAGE, f"{path}: {e}")
    if not rows:
        fail(out, ExitCode.USAGE, f"{path}: no outcomes in the file")
    return rows


def _sign_rows(out: Output, signer: Key, rows: list[dict[str, Any]]) -> list[SignedEvent]:
    signed = []
    for number, row in enumerate(rows, start=1):
        try:
            signed.append(builders.outcome(signer, **row))
        except ProtocolError as e:
            fail(
                out,
                ExitCode.REFUSED,
                f"row {number}: the forum would refuse this: {e.message}",
                reason=e.reason,
            )
    return signed

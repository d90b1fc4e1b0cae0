"""``forum import-polis DIR``: publish a Polis conversation as signed proposals and ratings."""

from __future__ import annotations

import asyncio
import os
import secrets
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from clients.cli.kit import (
    DEFAULT_URL,
    ExitCode,
    JsonOption,
    Output,
    TimeoutOption,
    UrlOption,
    fail,
    reporting,
    safe_text,
)
from clients.importers.polis import (
    ImportPlan,
    ImportResult,
    load_conversation,
    plan_import,
    publish_plan,
    write_map,
)
from clients.sdk.errors import InvalidURL
from clients.sdk.urls import ws_url

SEED_ENV = "MYCELIUM_POLIS_SEED"
"""Environment variable holding the derivation secret when no --seed-file is given."""

app = typer.Typer()
"""This module's commands; :mod:`clients.cli.app` adds them to the ``forum`` command."""


@app.command("import-polis", rich_help_panel="Publish")
def import_polis(
    folder: Annotated[
        Path,
        typer.Argument(
            file_okay=False,
            help="A Polis export folder: comments.csv, votes.csv (or participants-votes.csv), summary.csv.",
        ),
    ],
    seed_file: Annotated[
        Path | None,
        typer.Option(
            "--seed-file",
            dir_okay=False,
            help="File holding the secret the participants' keys are derived from (its first "
            "line); the same secret gives the same keys and events, so a rerun publishes only "
            f"duplicates. A missing file is created with a new random secret (mode 600). Or set "
            f"{SEED_ENV}. Neither: a random secret that is not kept. Never printed: whoever "
            "knows it can sign as every participant.",
        ),
    ] = None,
    map_file: Annotated[
        Path | None,
        typer.Option("--map", dir_okay=False, help="Write a CSV of participant,did to this file."),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            help="Conversation name used in key labels and tags (default: the folder's name)."
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Read and sign everything, write --map, publish nothing."),
    ] = False,
    url: UrlOption = DEFAULT_URL,
    timeout: TimeoutOption = 60.0,
    json: JsonOption = False,
) -> None:
    """Import one Polis conversation: a key per participant, a proposal per comment, a rating per vote.

    Votes become ratings (agree +1, disagree -1, pass 0; the latest vote per comment
    and voter, dated by its Polis timestamp). A participant's vote on their own
    comment cannot be expressed (rating your own event is refused): it is skipped
    and counted. Exit status 1 if the forum refuses any event.
    """
    out = Output(json)
    if not folder.is_dir():
        fail(out, ExitCode.USAGE, f"{folder}: not a folder")
    try:
        url = ws_url(url)
    except InvalidURL as e:
        fail(out, ExitCode.USAGE, f"--url: {e}")
    seed, source = _secret(out, seed_file)
    try:
        conv = load_conversation(folder, name)
    except (OSError, ValueError, KeyError) as e:
        fail(out, ExitCode.USAGE, f"cannot read the Polis export in {folder}: {e}")
    with reporting(out):
        plan = _with_bar(out, "sign events", lambda p: plan_import(conv, seed, progress=p))
        if map_file is not None:
            try:
                write_map(plan, map_file)
            except OSError as e:
                fail(out, ExitCode.USAGE, f"cannot write {map_file}: {e}")
        result = None
        if not dry_run:
            result = _with_bar(
                out, f"publish to {url}", lambda p: asyncio.run(_publish(plan, url, timeout, p))
            )
    data = _data(plan, result, source, map_file)
    out.emit(data, _human(plan, result))
    if result is not None and not result.ok:
        fail(
            out,
            ExitCode.REFUSED,
            f"the forum refused {sum(result.refused.values())} events",
            refusals=result.refusals,
        )


async def _publish(plan: ImportPlan, url: str, wait: float, progress: Any) -> ImportResult:
    # --timeout bounds each wait for the forum, not the whole import: scale it by the size
    per_chunk = 2000
    chunks = (len(plan.proposals) + len(plan.ratings)) // per_chunk + 2
    async with asyncio.timeout(wait * chunks):
        return await publish_plan(plan, url, progress=progress, chunk=per_chunk)


def _with_bar(out: Output, label: str, fn: Any) -> Any:
    if out.json:
        return fn(None)
    with Progress(
        SpinnerColumn(),
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=out.stderr,
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)
        return fn(lambda done, total: bar.update(task, completed=done, total=total))


def _secret(out: Output, seed_file: Path | None) -> tuple[str, str]:
    """The derivation secret and where it came from ("file", "new-file", "env" or "random").

    Read from ``--seed-file`` or the environment, never from the command line
    (visible in ``ps`` and shell history), and never printed.
    """
    if seed_file is not None:
        if not seed_file.exists():
            secret = secrets.token_hex(32)
            try:
                fd = os.open(seed_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as f:
                    f.write(secret + "\n")
            except OSError as e:
                fail(out, ExitCode.USAGE, f"cannot create {seed_file}: {e}")
            out.info(Text.assemble("a new secret was written to ", str(seed_file), " (mode 600; keep it secret)"))
            return secret, "new-file"
        try:
            secret = seed_file.read_text("utf-8").splitlines()[0].strip() if seed_file.stat().st_size else ""
        except (OSError, UnicodeDecodeError) as e:
            fail(out, ExitCode.USAGE, f"cannot read {seed_file}: {e}")
        source = "file"
    elif (env := os.environ.get(SEED_ENV)) is not None:
        secret, source = env.strip(), "env"
    else:
        out.info("a random secret, not kept: pass --seed-file to rerun with the same keys")
        return secrets.token_hex(32), "random"
    if not secret or "\0" in secret:
        where = str(seed_file) if seed_file is not None else SEED_ENV
        fail(out, ExitCode.USAGE, f"the secret in {where} must be a non-empty line without NUL characters")
    return secret, source


def _data(
    plan: ImportPlan, result: ImportResult | None, seed_source: str, map_file: Path | None
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "conversation": plan.name,
        "votes_source": plan.votes_source,
        "participants": len(plan.dids),
        "proposals": len(plan.proposals),
        "ratings": len(plan.ratings),
        "skipped_self_votes": plan.skipped_self_votes,
        "skipped_unknown_comment": plan.skipped_unknown_comment,
        "map": str(map_file) if map_file else None,
    }
    data["seed_source"] = seed_source  # the secret itself is never printed
    if result is not None:
        data.update(
            accepted=result.accepted,
            duplicate=result.duplicate,
            refused=result.refused,
            refusals=[{"id": i, "message": m} for i, m in result.refusals],
            rate_limited_retries=result.rate_limited_retries,
            seconds=result.seconds,
        )
    else:
        data["dry_run"] = True
    return data


def _human(plan: ImportPlan, result: ImportResult | None) -> Table:
    t = Table(
        title=f"Polis conversation {safe_text(plan.name, one_line=True)} (votes from {plan.votes_source})",
        title_justify="left",
    )
    for col in ("", "signed", "new", "duplicate", "refused"):
        t.add_column(col, justify="right" if col else "left")
    for kind, events in (("proposal", plan.proposals), ("rating", plan.ratings)):
        if result is None:
            t.add_row(kind + "s", f"{len(events):,}", "-", "-", "-")
        else:
            t.add_row(
                kind + "s",
                f"{len(events):,}",
                f"{result.accepted[kind]:,}",
                f"{result.duplicate[kind]:,}",
                f"{result.refused[kind]:,}",
            )
    t.caption = (
        f"{len(plan.dids):,} participants; {plan.skipped_self_votes:,} votes on the voter's own comment skipped"
        + (
            f"; {plan.skipped_unknown_comment:,} votes on unknown comments skipped"
            if plan.skipped_unknown_comment
            else ""
        )
        + (f"; {result.seconds:.1f} s" if result is not None else "; dry run, nothing published")
    )
    return t

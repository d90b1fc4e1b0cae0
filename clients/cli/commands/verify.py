"""``forum verify URL``: audit every published score against the signed export."""

from __future__ import annotations

import urllib.error
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Group
from rich.table import Table
from rich.text import Text

from clients.cli.kit import (
    ExitCode,
    JsonOption,
    Output,
    TimeoutOption,
    fail,
    needs,
    progress_bar,
    reporting,
    run_async,
    safe_text,
)

if TYPE_CHECKING:
    from clients.audit import VerifyReport

app = typer.Typer()
"""This module's commands; :mod:`clients.cli.app` adds them to the ``forum`` command."""

MAX_ROWS = 50


@app.command(rich_help_panel="Follow")
def verify(
    url: Annotated[
        str,
        typer.Argument(
            envvar="FORUM_URL",
            show_envvar=True,
            help="HTTP base of the forum, e.g. http://127.0.0.1:8000 (its ws:// URL works too).",
        ),
    ],
    timeout: TimeoutOption = 60.0,
    json: JsonOption = False,
) -> None:
    """Audit a forum: check every signature in its export and recompute its scores.

    Downloads /api/v1/export, checks each event's signature, id and seq, replays
    the log and recomputes the served cheap scores (exactly), the fitted scores
    (bridging, standing, groups: from a cold start, within the tolerances of
    raters.compare) and the groups document. Exit status 0 when everything
    matches, 4 when a signature fails or a served number differs, 3 when the
    forum cannot be reached. Needs the server extra (the scoring algorithms):
    pip install 'mycelium-forum\\[server]'.
    """
    out = Output(json)
    with needs(out, "server", "forum verify"):
        from clients.audit import http_base
    try:
        base = http_base(url)
    except ValueError as e:
        fail(out, ExitCode.USAGE, str(e))
    with reporting(out):
        try:
            report = _run(out, base, timeout)
        except urllib.error.HTTPError as e:
            fail(
                out,
                ExitCode.CONNECT,
                f"{base} answered HTTP {e.code} ({e.reason}): is it a Mycelium forum?",
            )
        except urllib.error.URLError as e:
            fail(out, ExitCode.CONNECT, f"cannot reach {base}: {e.reason}")
        except OSError as e:
            fail(out, ExitCode.CONNECT, f"reading from {base} failed: {e}")
    out.emit(report.to_dict(), _human(report))
    if not report.ok:
        raise typer.Exit(int(ExitCode.VERIFICATION))


def _run(out: Output, base: str, timeout: float) -> VerifyReport:
    from clients.audit import verify_forum

    if out.json:
        return run_async(verify_forum(base, http_timeout=timeout))
    with progress_bar(out) as bar:
        tasks: dict[str, Any] = {}
        labels = {
            "download": "download and verify events (seq)",
            "cheap": "recompute cheap scores",
            "fitted": "refit bridging and groups (cold start)",
        }

        def progress(stage: str, done: int, total: int | None) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(labels.get(stage, stage), total=total)
            bar.update(tasks[stage], completed=done, total=total)

        return run_async(verify_forum(base, progress=progress, http_timeout=timeout))


def _cell(value: Any, limit: int = 60) -> Text:
    return Text(
        safe_text(value if isinstance(value, str) else repr(value), one_line=True, limit=limit)
    )


def _human(report: VerifyReport) -> Group:
    parts: list[Any] = []
    summary = Table.grid(padding=(0, 2))
    summary.add_row("forum", Text(report.source))
    summary.add_row(
        "events",
        f"{report.events:,} read, {report.verified:,} verified, last seq {report.last_seq:,}",
    )
    summary.add_row(
        "signatures",
        Text("all valid", style="green")
        if report.bad_signatures == 0
        else Text(f"{report.bad_signatures:,} failed", style="bold red"),
    )
    if report.seq_errors:
        summary.add_row("seqs", Text(f"{report.seq_errors:,} out of order", style="bold red"))
    summary.add_row(
        "cheap scores",
        f"as of seq {report.cheap_as_of_seq}"
        if report.cheap_as_of_seq is not None
        else "none served",
    )
    summary.add_row(
        "fitted scores",
        f"as of seq {report.fit_as_of_seq}" if report.fit_as_of_seq is not None else "none served",
    )
    summary.add_row("checked", ", ".join(report.checked) or "nothing")
    parts.append(summary)
    for w in report.warnings:
        parts.append(Text(f"warning: {w}", style="yellow"))
    if report.bad_lines:
        bad = Table(title="events that failed verification", title_justify="left")
        for col in ("seq", "line", "reason"):
            bad.add_column(col)
        for b in report.bad_lines[:MAX_ROWS]:
            bad.add_row(str(b.seq), str(b.line), _cell(b.reason, 120))
        parts.append(bad)
    if report.findings:
        table = Table(
            title=f"{len(report.findings)} differences (recomputed from the log vs served)",
            title_justify="left",
        )
        for col in ("section", "path", "target / rater", "recomputed", "served", "tolerance"):
            table.add_column(col, overflow="fold")
        for f in report.findings[:MAX_ROWS]:
            table.add_row(
                f.section,
                f.path,
                _cell(f.subject or "", 20),
                _cell(f.expected),
                _cell(f.actual),
                f"{f.tolerance:g}",
            )
        parts.append(table)
        if len(report.findings) > MAX_ROWS:
            parts.append(
                Text(f"... and {len(report.findings) - MAX_ROWS} more (use --json for all)")
            )
    parts.append(
        Text(
            "OK: every signature verifies and every served score matches the log",
            style="bold green",
        )
        if report.ok
        else Text("MISMATCH: the served scores or the log do not check out", style="bold red")
    )
    return Group(*parts)

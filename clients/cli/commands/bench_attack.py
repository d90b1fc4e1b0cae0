"""``forum bench attack``: how far k fresh keys move the published scores
(:mod:`clients.bench.attack`).

Its ``bench_app`` holds ``attack``; :mod:`clients.cli.app` adds it to ``forum bench``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from clients.cli.kit import ExitCode, JsonOption, Output, fail, needs, progress_bar, reporting

ATTACKS = ("one", "set", "outcome", "author")  # clients.bench.attack.ATTACKS (imported lazily)
KS = (10, 50, 100, 500)

bench_app = typer.Typer()
"""This module's ``forum bench`` commands; :mod:`clients.cli.app` adds them to the group."""


@bench_app.command("attack")
def attack(
    k: Annotated[
        list[int] | None,
        typer.Option("--k", min=1, max=5000, help=f"Fresh keys per attack (repeatable; default {', '.join(map(str, KS))})."),
    ] = None,
    kind: Annotated[
        list[str] | None,
        typer.Option("--attack", help=f"Run only this attack ({', '.join(ATTACKS)}); repeatable."),
    ] = None,
    json_file: Annotated[
        Path | None,
        typer.Option("--json-file", dir_okay=False, help="Also write the JSON report to this file."),
    ] = None,
    json: JsonOption = False,
) -> None:
    """Attack a simulated forum with k fresh keys: one target, a set, the outcome pool.

    Reports how far each published score moved, which statuses changed, whether
    standing stayed applied and where the pooled outcome landed (docs/raters.md,
    "Threat model").  Exit 0 when the targets are met, 1 when not.
    """
    out = Output(json)
    with needs(out, "server", "forum bench attack"):
        from clients.bench.attack import run_attack_bench
    ks = tuple(k or KS)
    attacks = tuple(kind or ATTACKS)
    bad = [a for a in attacks if a not in ATTACKS]
    if bad:
        fail(out, ExitCode.USAGE, f"unknown attack {bad[0]!r}; choose from {', '.join(ATTACKS)}")
    with reporting(out):
        if json:
            report = run_attack_bench(ks, attacks)
        else:
            steps = 1 + sum(1 if a == "author" else len(ks) for a in attacks)
            with progress_bar(out) as bar:
                task = bar.add_task("starting", total=steps)

                def progress(message: str) -> None:
                    bar.advance(task)
                    bar.update(task, description=message)

                report = run_attack_bench(ks, attacks, progress)
    if json_file is not None:
        try:
            json_file.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
        except OSError as e:
            fail(out, ExitCode.USAGE, f"cannot write {json_file}: {e}")
    out.emit(report, _table(report))
    if not all(report["targets_met"].values()):
        raise typer.Exit(1)


def _table(report: dict[str, Any]) -> Table:
    t = Table(title=f"forum bench attack ({report['seconds']} s)", title_justify="left")
    for col in ("attack", "k", "max move (raw mean / protected mean / bridging)", "statuses changed", "standing", "pooled cost"):
        t.add_column(col)
    for r in report["results"]:
        m = r["max_move"]
        cost = r["outcome_cost"] or {}
        pooled = "-" if cost.get("mean") is None else f"{cost['mean']:+.3f} ({cost['reports']} pooled)"
        t.add_row(
            r["attack"],
            str(r["k"]),
            f"{m.get('mean', 0):.3f} / {m.get('protected_mean', 0):.3f} / {m.get('bridging', 0):.3f}",
            str(len(r["status_changes"])),
            "on" if r["standing_applied"] else "OFF",
            pooled,
        )
    t.caption = ", ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in report["targets_met"].items())
    return t

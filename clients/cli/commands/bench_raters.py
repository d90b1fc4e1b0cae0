"""``forum bench raters``: time the scoring algorithms (:mod:`clients.bench.raters`).

Registers ``raters`` on the ``bench`` command group: the group another command module
created, if one did (modules load in name order, so ``bench.py`` comes first), else a
new one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from clients.cli.kit import ExitCode, JsonOption, Output, fail, needs, progress_bar, reporting

#: Polis conversations of a source checkout (absent from an installed package).
REPO_POLIS_DIR = Path(__file__).resolve().parents[3] / "tests" / "data" / "polis"


bench_app = typer.Typer()
"""This module's ``forum bench`` commands; :mod:`clients.cli.app` adds them to the group."""


@bench_app.command("raters")
def raters(
    json_file: Annotated[
        Path | None,
        typer.Option(
            "--json-file", dir_okay=False, help="Also write the JSON report to this file."
        ),
    ] = None,
    polis: Annotated[
        Path | None,
        typer.Option(
            file_okay=False,
            help="Folder of Polis conversations (each with participants-votes.csv) "
            "(default: tests/data/polis of a source checkout, if present).",
        ),
    ] = None,
    scale: Annotated[
        float,
        typer.Option(
            min=0.0001,
            max=10.0,
            help="Multiply the synthetic sizes (1 = 1M ratings; targets hold at 1).",
        ),
    ] = 1.0,
    section: Annotated[
        list[str] | None,
        typer.Option(
            "--section", help="Run only this section (bridging, groups, polis); repeatable."
        ),
    ] = None,
    json: JsonOption = False,
) -> None:
    """Benchmark the raters: 1M-rating bridging fit, full pipeline, opinion groups, Polis ARI.

    Prints a table (the full report with --json; --json-file FILE also writes it).
    Figures and how to read them: docs/raters.md.
    """
    out = Output(json)
    with needs(out, "server", "forum bench raters"):
        from clients.bench.raters import SECTIONS, bench_steps, run_bench
    sections = tuple(section or SECTIONS)
    bad = [s for s in sections if s not in SECTIONS]
    if bad:
        fail(out, ExitCode.USAGE, f"unknown section {bad[0]!r}; choose from {', '.join(SECTIONS)}")
    polis_dir = (
        polis if polis is not None else (REPO_POLIS_DIR if REPO_POLIS_DIR.is_dir() else None)
    )
    if polis is not None and not polis.is_dir():
        fail(out, ExitCode.USAGE, f"{polis}: not a folder")
    with reporting(out):
        if json:
            report = run_bench(None, polis_dir=polis_dir, scale=scale, sections=sections)
        else:
            with progress_bar(out) as bar:
                task = bar.add_task("starting", total=bench_steps(polis_dir, sections))
                first = [True]

                def progress(message: str) -> None:
                    if not first[0]:
                        bar.advance(task)
                    first[0] = False
                    bar.update(task, description=message)

                report = run_bench(progress, polis_dir=polis_dir, scale=scale, sections=sections)
                bar.update(task, completed=bench_steps(polis_dir, sections))
    if json_file is not None:
        try:
            json_file.write_bytes(
                orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS) + b"\n"
            )
        except OSError as e:
            fail(out, ExitCode.USAGE, f"cannot write {json_file}: {e}")
    out.emit(report, _table(report))


def _table(report: dict[str, Any]) -> Table:
    t = Table(
        title=f"{report['algorithm']} {report['version']} on {report['machine']['cpus']} CPUs (scale {report['scale']:g})",
        title_justify="left",
    )
    for col in ("section", "size", "time", "peak traced", "notes"):
        t.add_column(col)
    if "bridging_1m" in report:
        b, p = report["bridging_1m"], report["pipeline_1m"]
        size = f"{b['n_ratings']:,} ratings, {b['n_raters']:,} x {b['n_targets']:,}"
        t.add_row(
            "Ratings.build",
            size,
            f"{b['build_seconds']:.2f} s",
            f"{b['build_peak_mib']:.0f} MiB",
            "",
        )
        t.add_row("bridging fit", size, f"{b['seconds']:.2f} s", f"{b['peak_mib']:.0f} MiB",
                  f"{b['iterations']} iterations, recall {b['bridging_recall']:.3f}, {b['false_bridging']} false; target < 30 s")  # fmt: skip
        t.add_row("full pipeline", size, f"{p['seconds']:.2f} s", f"{p['peak_mib']:.0f} MiB",
                  f"k = {p['groups_k']}, standing applied: {p['standing_applied']}")  # fmt: skip
    if "groups_2000x200" in report:
        g = report["groups_2000x200"]
        t.add_row("opinion groups", f"{g['n_raters']:,} x {g['n_targets']:,}, {g['n_votes']:,} votes", f"{g['seconds']:.2f} s",
                  f"{g['peak_mib']:.0f} MiB", f"k = {g['k']}, ARI vs factions {g['ari_vs_factions']}; target < 1 s")  # fmt: skip
    polis = report.get("polis", {})
    if "skipped" in polis:
        t.add_row("polis", "", "", "", str(polis["skipped"]))
    else:
        for name, c in polis.items():
            ours, rd = c["ours"], c["red_dwarf"]
            rd_text = (
                f"red-dwarf ARI {rd['ari']} ({rd['seconds']:.2f} s)"
                if "ari" in rd
                else str(rd.get("skipped", ""))
            )
            t.add_row(f"polis: {name}", f"{c['participants']:,} x {c['comments']:,}, {c['votes']:,} votes",
                      f"{ours['seconds']:.2f} s", f"{ours['peak_mib']:.0f} MiB",
                      f"ARI {ours['ari']} (k = {ours['k']}); {rd_text}")  # fmt: skip
    t.caption = f"process peak RSS {report['max_rss_mib']:.0f} MiB"
    return t

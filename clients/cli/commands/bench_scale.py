"""``forum bench scale`` (how ingest, score updates, restart and pages grow with the log;
:mod:`clients.bench.scale`) and ``forum bench plot`` (its reports as SVG charts;
:mod:`clients.bench.plot`).

Its ``bench_app`` holds both; :mod:`clients.cli.app` adds them to ``forum bench``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from clients.cli.commands.bench import (
    JsonFileOpt,
    QuietOpt,
    ServerEnvOpt,
    Start,
    _finish,
    _parse_env,
    _run,
)
from clients.cli.kit import ExitCode, Output, fail

bench_app = typer.Typer()
"""This module's ``forum bench`` commands; :mod:`clients.cli.app` adds them to the group."""


@bench_app.command()
def scale(
    sizes: Annotated[
        str, typer.Option("--sizes", help="Log sizes to measure at, comma-separated (events).")
    ] = "100000,1000000",
    measure: Annotated[
        int, typer.Option("--measure", min=100, help="Ratings published in the measured ingest phase at each size.")
    ] = 20_000,
    requests: Annotated[
        int, typer.Option("--requests", min=1, help="Sequential GETs of each page path at each size.")
    ] = 200,
    authors: Annotated[int, typer.Option("--authors", min=2, help="Distinct rater keys (and rated agents).")] = 1000,
    fill: Annotated[
        str,
        typer.Option(
            "--fill",
            help="direct: stop the forum and write the events through its writer into the database (fast); "
            "publish: publish every event over WebSockets.",
        ),
    ] = "direct",
    start: Annotated[
        Start, typer.Option("--start", help="The database of the forum the bench starts (and restarts).")
    ] = Start.sqlite,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            file_okay=False,
            help="A kept directory holding a log filled to SIZE - MEASURE ratings (one size; SQLite): filled "
            "on the first run (or with --prepare-only), then copied into the bench's temporary data "
            "directory at every run, so the fill is never repeated and every run starts from the same log.",
        ),
    ] = None,
    prepare_only: Annotated[
        bool, typer.Option("--prepare-only", help="With --data-dir: fill it and stop (no forum, nothing measured).")
    ] = False,
    verify_wait: Annotated[
        float, typer.Option("--verify-wait", min=0, help="Seconds to wait, after each restart, for the background check of the restored state (0: do not wait).")
    ] = 1800.0,
    lock: Annotated[
        Path | None,
        typer.Option("--lock", dir_okay=False, help="With --data-dir: flock this file once the copied log is replayed and its state files written, and hold it for the measured phases (the shared machine's bench lock).")
    ] = None,
    server_env: ServerEnvOpt = None,
    json_file: JsonFileOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Fill a forum's log to each size and measure ingest, score update cost, page latency and restart there.

    The forum is started by the bench (it is killed with SIGKILL and restarted at
    each size). Restart time is until the forum listens, until /healthz answers and
    until score reads answer (the scores replay runs in the background).
    """
    from clients.bench.scale import ScaleParams, run_scale
    from clients.bench.server import BenchServer, BenchServerError, compile_bytecode, raise_fd_limit
    from clients.bench.target import Ui

    out = Output(False)
    try:
        size_list = [int(x.replace("_", "")) for x in sizes.split(",") if x.strip()]
    except ValueError:
        fail(out, ExitCode.USAGE, f"--sizes wants comma-separated integers, not {sizes!r}")
    if not size_list or min(size_list) <= measure:
        fail(out, ExitCode.USAGE, "every size must be larger than --measure")
    if fill not in ("direct", "publish"):
        fail(out, ExitCode.USAGE, "--fill must be direct or publish")
    params = ScaleParams(sizes=size_list, measure=measure, requests=requests, authors=authors, fill=fill, verify_wait=verify_wait, lock=None if lock is None else str(lock))
    if data_dir is not None:
        from clients.bench import scaledata

        if len(size_list) != 1 or start is not Start.sqlite:
            fail(out, ExitCode.USAGE, "--data-dir holds one size on SQLite: give one --sizes and --start sqlite")
        rec = scaledata.prepared(data_dir)
        if rec is None:
            rec = scaledata.prepare(data_dir, size_list[0] - measure, authors, Ui(quiet))
            out.info(f"{data_dir} filled: {rec['accepted']:,} events in {rec['seconds']} s ({rec['events_per_s']}/s, load {rec['loadavg_after']})")
        if rec["ratings"] != size_list[0] - measure or rec["authors"] != authors:
            fail(out, ExitCode.USAGE, f"{data_dir} holds {rec['ratings']:,} ratings by {rec['authors']} authors: use --sizes {rec['ratings'] + measure} --measure {measure} --authors {rec['authors']}")
        if prepare_only:
            return
        params.secret, params.prefilled, params.seed = rec["secret"], rec["ratings"], rec
    elif prepare_only:
        fail(out, ExitCode.USAGE, "--prepare-only needs --data-dir")
    raise_fd_limit()
    compiled = compile_bytecode()  # what an installed forum has: restart times count no compiling
    try:
        server = BenchServer(start.value, _parse_env(server_env, out), seed=data_dir).start()
    except BenchServerError as e:
        fail(out, ExitCode.CONNECT, str(e))
    try:
        from clients.bench.scale import _target as scale_target

        def partial(results: dict[str, Any]) -> None:  # each size's figures as soon as they are measured
            if json_file is not None:
                json_file.with_name(json_file.name + ".partial").write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))

        results = _run(out, lambda: run_scale(server, params, Ui(quiet), partial))
        results["server_bytecode_compiled"] = compiled
        _finish(out, "scale", scale_target(server), results, json_file)
    finally:
        server.stop()


@bench_app.command()
def plot(
    reports: Annotated[list[Path], typer.Argument(help="forum bench scale reports (--json-file); a size in several: the last wins.", exists=True, dir_okay=False)],
    out_dir: Annotated[Path, typer.Option("--out", file_okay=False, help="Folder for the SVG charts.")] = Path("docs/img"),
) -> None:
    """Draw the growth curves of ``forum bench scale`` reports as SVG charts (ingest rate, CPU per
    rating, score update cost, restart, page p99 against the log size)."""
    from clients.bench.plot import write_charts
    from clients.bench.report import load_report

    out = Output(False)
    try:
        written = write_charts([load_report(p) for p in reports], out_dir)
    except (ValueError, KeyError) as e:
        fail(out, ExitCode.USAGE, f"not a forum bench scale report: {e}")
    for p in written:
        out.info(f"wrote {p}")

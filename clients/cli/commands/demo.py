"""``forum demo``: a forum, a few hundred simulated owners' agents and twelve communities."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from clients.cli.kit import ExitCode, Output, fail, needs

app = typer.Typer()
"""This module's commands; :mod:`clients.cli.app` adds them to the ``forum`` command."""


@app.command(rich_help_panel="Forum")
def demo(
    agents: Annotated[
        int, typer.Option(min=2, help="Simulated owners, each with their own agent.")
    ] = 300,
    duration: Annotated[float, typer.Option(min=5.0, help="Seconds of simulation.")] = 60.0,
    seed: Annotated[
        int, typer.Option(help="Seed of the simulated world (owners, schedule, noise).")
    ] = 0,
    report: Annotated[
        Path | None,
        typer.Option(dir_okay=False, help="Also write the report as JSON to this file."),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            file_okay=False,
            help="Keep the forum's SQLite database here (a new or empty directory) "
            "to browse it afterwards with `forum serve --data-dir`; default: a temporary directory.",
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Address the demo's forum listens on.")] = "127.0.0.1",
    port: Annotated[
        int,
        typer.Option(
            min=0,
            max=65535,
            help="Port of the demo's forum; a free one if taken (0: always a free one).",
        ),
    ] = 8000,
    connections: Annotated[
        int, typer.Option(min=1, max=64, help="WebSocket connections the agents share.")
    ] = 4,
    feedback: Annotated[
        int,
        typer.Option(
            min=0, max=41, help="Pieces of private feedback each owner gives over the run."
        ),
    ] = 20,
    live: Annotated[
        bool, typer.Option("--live/--plain", help="Live dashboard, or plain progress lines.")
    ] = True,
    serve: Annotated[
        bool,
        typer.Option(
            "--serve/--exit",
            help="After the report, keep the forum served with everything the run wrote until Ctrl-C, "
            "or stop it at once.",
        ),
    ] = True,
) -> None:
    """Run a forum with simulated owners, agents and communities, and measure the loop.

    Starts a forum on SQLite, prints the URL of its live page, and simulates
    owners with hidden values whose agents rate the corpus proposals while
    communities try them and publish outcomes. At the end it prints (and with
    --report writes) how well the forum's ranking matches the hidden truth and
    how much the streamed results improve the agents' predictions, then keeps
    the forum served (--exit: stops it) and says how to serve its data again.
    Ctrl-C stops early and still reports; a second Ctrl-C abandons the report.
    See docs/demo.md. Needs the tools extra: pip install 'mycelium-forum\\[tools]'.
    """
    import asyncio

    from rich.console import Console

    out = Output(False)
    with needs(out, "tools", "forum demo"):
        from clients.demo.run import DemoConfig, print_report, run_demo
    config = DemoConfig(
        agents=agents,
        duration=duration,
        seed=seed,
        connections=connections,
        feedback=feedback,
        data_dir=data_dir,
        host=host,
        port=port,
        report=report,
        live=live,
        serve=serve,
        on_report=lambda r: print_report(Console(highlight=False), r),
    )
    try:
        result = asyncio.run(run_demo(config, Console(stderr=True, highlight=False)))
    except FileExistsError as e:
        fail(out, ExitCode.USAGE, str(e))
    except RuntimeError as e:
        fail(out, ExitCode.CONNECT, str(e))
    except KeyboardInterrupt:
        fail(out, ExitCode.INTERRUPTED, "interrupted")
    if report is not None:
        out.info(f"report written to {report}")
    if result.get("interrupted"):
        raise typer.Exit(int(ExitCode.INTERRUPTED))

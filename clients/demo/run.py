"""``forum demo``: a forum, a few hundred owners' agents and twelve communities, measured.

The demo starts a real forum (``python -m forum``, SQLite in a data directory)
and a simulated world (:mod:`clients.demo.world`) that talks to it over WebSockets
like any other client:

* owners with hidden values give their agents private feedback now and then;
* agents (:class:`clients.agent.owner_agent.OwnerAgent`) rate every proposal and re-rate
  when results change their prediction, sharing ``connections`` WebSocket
  connections (each connection's agents share one :class:`~clients.agent.model.Board`
  fed by one event subscription and one score subscription);
* some agents publish the corpus proposals over the first 60 % of the run;
* the twelve communities try proposals (half the time the forum's best-ranked
  one they have not tried, otherwise one at random) and publish a ``running``
  report, then a ``completed`` report with measured metrics.

Every owner also has a *shadow* model: identical to their agent's (same
features, same feedback at the same moments, same refits) except that it
ignores every streamed result. Comparing the two on ratings the owner never
gave measures what the streamed results are worth. Definitions of every
figure in the report are in docs/demo.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shlex
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.text import Text

from clients.demo.config import FORUM_SETTINGS, DemoConfig
from clients.demo.display import print_report, render
from clients.demo.sim import Demo
from clients.launch import ForumProcess, port_is_free

__all__ = ["DemoConfig", "print_report", "run_demo"]


def serve_command(data_dir: Path) -> str:
    """The exact command that serves a demo's kept data again, under the demo's name."""
    return f"FORUM_NAME={shlex.quote(FORUM_SETTINGS['FORUM_NAME'])} forum serve --data-dir {shlex.quote(str(data_dir.resolve()))}"


async def _stop_world(demo: Demo) -> None:
    """Stop the simulated agents and communities (the forum keeps running)."""
    for task in list(demo.publishing):
        task.cancel()
    conns, demo.conns = list(demo.conns), []
    for conn in conns:
        await conn.close()


async def _serve_on(url: str, data_dir: Path, console: Console) -> None:
    """Keep the demo's forum served until Ctrl-C (SIGINT) or SIGTERM."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    console.print(
        Text.assemble(
            "The demo is over; its forum is still served at ", (url + "/", "bold underline"),
            f" with everything it wrote (data in {data_dir}). Press Ctrl-C to stop it.",
        )
    )
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)


async def run_demo(config: DemoConfig, console: Console | None = None) -> dict[str, Any]:
    """Run the whole demo; returns the report (also written to ``config.report`` if set)."""
    console = console or Console(stderr=True)
    tmp: Path | None = None
    if config.data_dir is None:
        tmp = Path(tempfile.mkdtemp(prefix="mycelium-demo-"))
        data_dir = tmp
    else:
        data_dir = config.data_dir
        if (data_dir / "forum.db").exists():
            raise FileExistsError(
                f"{data_dir} already holds a forum; give an empty or new directory"
            )
        data_dir.mkdir(parents=True, exist_ok=True)
    port = config.port
    if port and not port_is_free(config.host, port):
        console.print(f"port {port} is taken; using a free one")
        port = 0
    server = ForumProcess(data_dir, host=config.host, port=port, settings=FORUM_SETTINGS)
    loop = asyncio.get_running_loop()
    demo: Demo | None = None
    try:
        await asyncio.to_thread(server.start)
        console.print(
            Text.assemble(
                "forum running at ", (server.url + "/", "bold underline"), f" (data in {data_dir})"
            )
        )
        demo = Demo(config, server, console)

        def interrupt() -> None:
            if demo is not None and not demo.stop.is_set():
                demo.interrupted = True
                demo.stop.set()
                console.print("stopping (Ctrl-C again to abandon the report)")
            else:
                raise KeyboardInterrupt

        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGINT, interrupt)
        await demo.setup()
        if config.live and console.is_terminal:
            with Live(render(demo), console=console, refresh_per_second=4, transient=False) as live:
                await demo.run(lambda: live.update(render(demo)))
                report = await demo.finish(lambda: live.update(render(demo)))
        else:
            last = [0.0]

            def plain() -> None:
                if demo.now() - last[0] >= max(5.0, config.duration / 12):
                    last[0] = demo.now()
                    c = demo.counts
                    p = demo.curve[-1] if demo.curve else {}
                    console.print(
                        f"{demo.now():6.1f}s proposals {c.proposals} ratings {c.ratings} "
                        f"outcomes {c.completed} feedback {c.feedback} "
                        f"accuracy {p.get('accuracy_with_stream')} vs {p.get('accuracy_without_stream')}"
                    )

            await demo.run(plain)
            report = await demo.finish(lambda: None)
        if config.report is not None:
            config.report.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        if config.on_report is not None:
            config.on_report(report)
        if config.serve and not demo.interrupted:
            await _stop_world(demo)
            await _serve_on(server.url, data_dir, console)
        return report
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGINT)
        if demo is not None:
            await _stop_world(demo)
        await asyncio.to_thread(server.stop)
        if tmp is not None and not config.serve:
            shutil.rmtree(tmp, ignore_errors=True)
            console.print(f"The demo's forum data ({tmp}) was deleted; give --data-dir to keep it.")
        else:
            console.print(
                Text.assemble(
                    "The forum's data is kept in ", (str(data_dir), "bold"), ". Serve it again with:\n  ",
                    (serve_command(data_dir), "bold"),
                )
            )

"""``forum bench``: load a forum and measure it (ingest, fan-out, queries), and compare reports.

Every mode either loads the forum at ``--url`` or starts one itself with
``--start sqlite|postgres`` (a temporary database, rate limits off, deleted
afterwards). Progress goes to stderr, a summary table to stdout, and the
full report to ``--json FILE``. The ``forum bench`` group is composed in
:mod:`clients.cli.app` from every benchmark module's ``bench_app``.
"""

from __future__ import annotations

import contextlib
import enum
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from clients.cli.kit import ExitCode, Output, fail

bench_app = typer.Typer()
"""This module's ``forum bench`` commands; :mod:`clients.cli.app` adds them to the group."""


class Start(enum.StrEnum):
    sqlite = "sqlite"
    postgres = "postgres"


class Versus(enum.StrEnum):
    nostr_relay = "nostr-relay"


UrlOpt = Annotated[
    str | None,
    typer.Option(
        "--url",
        help="The forum to load: ws://HOST:PORT/ws or http://HOST:PORT (only loopback or your own deployment).",
    ),
]
StartOpt = Annotated[
    Start | None,
    typer.Option(
        "--start", help="Start a forum for the run on a throwaway database instead of --url."
    ),
]
ServerEnvOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--server-env",
        help="With --start: a FORUM_* setting for the started forum, NAME=VALUE; repeatable.",
    ),
]
ServerPidOpt = Annotated[
    int | None,
    typer.Option(
        "--server-pid", help="With --url: the forum's pid, to report its CPU use (and profile it)."
    ),
]
JsonFileOpt = Annotated[
    Path | None,
    typer.Option("--json-file", help="Write the full report (JSON) to this file.", dir_okay=False),
]
ProfileOpt = Annotated[
    Path | None,
    typer.Option(
        "--profile",
        help="Sample the server with py-spy during each measured phase; raw stacks go to FILE.<phase>.txt "
        "and the hottest functions into the report.",
        dir_okay=False,
    ),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
ProcsOpt = Annotated[
    int,
    typer.Option(
        "--procs", min=1, help="Load-generating processes (the client can be the bottleneck)."
    ),
]


def _parse_env(items: list[str] | None, out: Output) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            fail(out, ExitCode.USAGE, f"--server-env wants NAME=VALUE, not {item!r}")
        env[name.upper().removeprefix("FORUM_")] = value
    return env


@contextmanager
def _relay(out: Output) -> Iterator[tuple[str, int]]:
    """The generator-ceiling relay (clients/bench/blast.py) in its own process: (url, pid)."""
    import subprocess
    import sys

    from clients.launch import LISTENING

    proc = subprocess.Popen([sys.executable, "-m", "clients.bench.blast"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        m = LISTENING.search(proc.stdout.readline())
        if m is None:
            fail(out, ExitCode.CONNECT, "the relay did not start")
        out.info(f"generator-ceiling relay at {m.group(1)} (pid {proc.pid})")
        yield m.group(1), proc.pid
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


@contextmanager
def _target(
    out: Output,
    url: str | None,
    start: Start | None,
    server_env: list[str] | None,
    server_pid: int | None,
    profile: Path | None,
    defaults: dict[str, str] | None = None,
) -> Iterator[Any]:
    from clients.bench.server import BenchServer, BenchServerError, raise_fd_limit
    from clients.bench.target import Target

    if (url is None) == (start is None):
        fail(
            out,
            ExitCode.USAGE,
            "give exactly one of --url (a forum to load) or --start sqlite|postgres",
        )
    raise_fd_limit()
    server: BenchServer | None = None
    try:
        if start is not None:
            env = {**(defaults or {}), **_parse_env(server_env, out)}
            out.info(f"starting a forum on {start.value} …")
            try:
                server = BenchServer(start.value, env).start()
            except BenchServerError as e:
                fail(out, ExitCode.CONNECT, str(e))
            target = Target.from_url(server.url, server.pid)
            target.description = server.describe()
            if server.pg is not None and server.pg.postmaster_pid:
                target.database_pids = [server.pg.postmaster_pid]
            out.info(f"forum at {server.url} (pid {server.pid})")
        else:
            assert url is not None
            try:
                target = Target.from_url(url, server_pid)
            except ValueError as e:
                fail(out, ExitCode.USAGE, str(e))
        if profile is not None:
            from clients.bench.profile import Profiler

            pid = target.server_pids[0] if target.server_pids else None
            if pid is None:
                fail(
                    out,
                    ExitCode.USAGE,
                    "--profile needs the server's pid: use --start, or --server-pid with --url",
                )
            try:
                target.profiler = Profiler(pid, profile)
            except RuntimeError as e:
                fail(out, ExitCode.USAGE, str(e))
        yield target
    finally:
        if server is not None:
            server.stop()


def _finish(
    out: Output, mode: str, target: Any, results: dict[str, Any], json_file: Path | None
) -> dict[str, Any]:
    from clients.bench.report import new_report, print_table, summary_table, write_report

    report = new_report(mode, target.description, results)
    if json_file is not None:
        write_report(report, json_file)
        out.info(f"report written to {json_file}")
    print_table(summary_table(report))
    return report


def _run(out: Output, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    from clients.bench.wsclient import WsError

    try:
        return fn()
    except (OSError, WsError, TimeoutError) as e:
        fail(out, ExitCode.CONNECT, f"the forum could not be loaded: {e}")
    except KeyboardInterrupt:
        fail(out, ExitCode.INTERRUPTED, "interrupted")


# ---------------------------------------------------------------------------- ingest


@bench_app.command()
def ingest(
    events: Annotated[
        int, typer.Option("--events", "-n", min=1, help="Events to publish per measured phase.")
    ] = 100_000,
    connections: Annotated[
        int, typer.Option("--connections", "-c", min=1, help="Concurrent publishing connections.")
    ] = 8,
    window: Annotated[
        int,
        typer.Option(
            "--window", "-w", min=1, max=2000, help="PUBLISH frames in flight per connection."
        ),
    ] = 500,
    kind: Annotated[
        str, typer.Option("--kind", help="Kind of event: proposal, rating (of agents) or agent.")
    ] = "proposal",
    authors: Annotated[int, typer.Option("--authors", min=1, help="Distinct signing keys.")] = 1000,
    text_bytes: Annotated[
        int, typer.Option("--text-bytes", min=0, max=30000, help="Length of each event's text.")
    ] = 200,
    warmup: Annotated[
        int, typer.Option("--warmup", min=0, help="Events published (and not measured) first.")
    ] = 2000,
    idle_subscribers: Annotated[
        int,
        typer.Option(
            "--idle-subscribers",
            min=0,
            help="Extra connections each holding a subscription that matches nothing published.",
        ),
    ] = 0,
    baseline: Annotated[
        bool,
        typer.Option(
            "--baseline/--no-baseline",
            help="With --idle-subscribers: first measure without them, then report the ratio.",
        ),
    ] = True,
    procs: ProcsOpt = 1,
    timeout: Annotated[
        float, typer.Option("--timeout", min=1, help="Seconds a phase may take before it is cut.")
    ] = 600.0,
    versus: Annotated[
        Versus | None,
        typer.Option(
            "--versus",
            help="Then the same load (events, size, connections x window) on another server, in the same run: "
            "nostr-relay (nostr-relay 1.14 on SQLite, installed once into its own virtualenv under "
            "~/.cache/mycelium-bench); the report adds its rate and the forum's over it (results.versus).",
        ),
    ] = None,
    versus_workers: Annotated[
        int,
        typer.Option(
            "--versus-workers", min=1, max=16, help="With --versus: the relay's gunicorn workers (1, its shipped default)."
        ),
    ] = 1,
    url: UrlOpt = None,
    start: StartOpt = None,
    server_env: ServerEnvOpt = None,
    server_pid: ServerPidOpt = None,
    json_file: JsonFileOpt = None,
    profile: ProfileOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Publish pre-signed events over pipelined connections: accepted events/s and OK latency.

    Events are signed before the clock starts (signing is the client's cost).
    The rate is accepted events over the time from the first PUBLISH to the
    last OK; the forum answers OK only after the commit.
    """
    from clients.bench.ingest import IngestParams, run_ingest
    from clients.bench.signing import KINDS
    from clients.bench.target import Ui

    out = Output(False)
    if kind not in KINDS:
        fail(out, ExitCode.USAGE, f"--kind must be one of {', '.join(KINDS)}")
    params = IngestParams(
        events=events,
        connections=connections,
        window=window,
        procs=procs,
        kind=kind,
        authors=authors,
        text_bytes=text_bytes,
        warmup=warmup,
        idle_subscribers=idle_subscribers,
        baseline=baseline,
        timeout=timeout,
    )
    if versus is not None and idle_subscribers and not baseline:
        fail(out, ExitCode.USAGE, "--versus compares the phase without idle subscribers: keep --baseline")
    if versus is not None:  # installed (once) before anything is measured: a failure ends the run early
        from clients.bench.nostr_relay import VersusError, ensure_venv

        try:
            ensure_venv(out.info)
        except VersusError as e:
            fail(out, ExitCode.CONNECT, f"--versus {versus}: {e.reason}: {e.detail}", reason=e.reason)
    load_before = [round(x, 2) for x in os.getloadavg()]
    with _target(out, url, start, server_env, server_pid, profile) as target:
        results = _run(out, lambda: run_ingest(target, params, Ui(quiet)))
    # The relay runs after the forum the bench started has stopped (it would take CPU from it).
    if versus is not None:
        from clients.bench.nostr import run_versus

        results["versus"] = _run(
            out, lambda: run_versus(params, results, Ui(quiet), load_before, versus_workers)
        )
    _finish(out, "ingest", target, results, json_file)
    error = results.get("versus", {}).get("error")
    if error:
        fail(out, ExitCode.CONNECT, f"--versus {versus}: {error['reason']}: {error['detail']}", reason=error["reason"])


# ---------------------------------------------------------------------------- fanout


@bench_app.command()
def fanout(
    subscribers: Annotated[
        int, typer.Option("--subscribers", "-s", min=1, help="Subscribing connections.")
    ] = 2000,
    rate: Annotated[
        float,
        typer.Option("--rate", "-r", min=0.1, help="Events a second the one publisher sends."),
    ] = 100.0,
    duration: Annotated[
        float, typer.Option("--duration", "-d", min=0.1, help="Seconds of publishing per phase.")
    ] = 20.0,
    slow_subscriber: Annotated[
        bool,
        typer.Option(
            "--slow-subscriber",
            help="Also run a phase with one more subscriber that reads nothing: report the others' latency "
            "against the phase without it, and whether the forum closed the slow one.",
        ),
    ] = False,
    slow_subscriptions: Annotated[
        int,
        typer.Option(
            "--slow-subscriptions",
            min=1,
            max=32,
            help="Subscriptions the slow subscriber holds on its one connection.",
        ),
    ] = 32,
    procs: ProcsOpt = 2,
    sample: Annotated[
        int,
        typer.Option(
            "--sample",
            min=1,
            help="Time the latency of about 1 in N events (a fixed pseudo-random subset of seqs, the same for "
            "every subscriber); every frame is still checked. 1 times every delivery.",
        ),
    ] = 8,
    drain: Annotated[
        float, typer.Option("--drain", min=0.1, help="Seconds to wait for the last deliveries.")
    ] = 30.0,
    generator_ceiling: Annotated[
        bool,
        typer.Option(
            "--generator-ceiling",
            help="Instead of a forum, load a minimal relay (clients/bench/blast.py: OK at once, the envelope "
            "sent to every subscription, no log, no checks): the frames/s and latency the load generator "
            "itself can absorb on this machine, to put beside the forum's figures.",
        ),
    ] = False,
    url: UrlOpt = None,
    start: StartOpt = None,
    server_env: ServerEnvOpt = None,
    server_pid: ServerPidOpt = None,
    json_file: JsonFileOpt = None,
    profile: ProfileOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """One publisher at a fixed rate, many subscribers: publish-to-delivery latency, exactly once in order.

    Every subscriber must receive every accepted event exactly once, in
    increasing seq order, with the same seq for the same event everywhere; the
    report says how many were missing, duplicated or out of order. With
    --start and --slow-subscriber the forum runs with
    FORUM_SUBSCRIBER_QUEUE_FRAMES=100 (unless --server-env sets it) so the
    slow subscriber is closed within the run; publish for long enough that
    it falls 100 frames behind after the kernel's socket buffers (up to 4 MB) filled.
    """
    from clients.bench.fanout import FanoutParams, run_fanout
    from clients.bench.target import Ui

    out = Output(False)
    params = FanoutParams(
        subscribers=subscribers,
        rate=rate,
        duration=duration,
        slow_subscriber=slow_subscriber,
        slow_subscriptions=slow_subscriptions,
        procs=procs,
        drain=drain,
        sample=sample,
    )
    defaults = {"SUBSCRIBER_QUEUE_FRAMES": "100"} if slow_subscriber else None
    with contextlib.ExitStack() as stack:
        if generator_ceiling:
            if url is not None or start is not None:
                fail(out, ExitCode.USAGE, "--generator-ceiling starts its own relay: no --url or --start")
            url, server_pid = stack.enter_context(_relay(out))
        target = stack.enter_context(_target(out, url, start, server_env, server_pid, profile, defaults))
        if generator_ceiling:
            target.description = {"url": url, "generator_ceiling": True, "pid": server_pid, "server": "clients/bench/blast.py"}
        results = _run(out, lambda: run_fanout(target, params, Ui(quiet)))
        report = _finish(out, "fanout", target, results, json_file)
    if not report["results"]["check"]["ok"]:
        fail(
            out,
            ExitCode.REFUSED,
            "delivery check failed: " + orjson.dumps(report["results"]["check"]).decode(),
        )


# ---------------------------------------------------------------------------- query


@bench_app.command()
def query(
    requests: Annotated[
        int, typer.Option("--requests", "-n", min=1, help="Requests in the measured phase.")
    ] = 5000,
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", min=1, help="Concurrent keep-alive connections.")
    ] = 32,
    path: Annotated[
        list[str] | None,
        typer.Option(
            "--path", help="A path to GET (repeatable); default: feeds, pages and the events API."
        ),
    ] = None,
    seed: Annotated[
        int,
        typer.Option(
            "--seed", min=0, help="Publish this many events first if the log holds fewer."
        ),
    ] = 2000,
    procs: ProcsOpt = 1,
    url: UrlOpt = None,
    start: StartOpt = None,
    server_env: ServerEnvOpt = None,
    server_pid: ServerPidOpt = None,
    json_file: JsonFileOpt = None,
    profile: ProfileOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Concurrent HTTP reads of the feeds, pages and the events API: requests/s and latency per path."""
    from clients.bench.query import QueryParams, run_query
    from clients.bench.target import Ui

    out = Output(False)
    params = QueryParams(
        requests=requests, concurrency=concurrency, paths=list(path or []), seed=seed, procs=procs
    )
    with _target(out, url, start, server_env, server_pid, profile) as target:
        results = _run(out, lambda: run_query(target, params, Ui(quiet)))
        _finish(out, "query", target, results, json_file)


# ---------------------------------------------------------------------------- abuse


@bench_app.command()
def abuse(
    proposals: Annotated[int, typer.Option("--proposals", min=0, help="Proposals in the log before the attacks.")] = 3000,
    proposal_kb: Annotated[int, typer.Option("--proposal-kb", min=1, max=60, help="Size of each proposal, KB.")] = 30,
    ratings: Annotated[int, typer.Option("--ratings", min=0, help="Ratings of the proposals and rated agents in the log.")] = 20000,
    rated_agents: Annotated[int, typer.Option("--rated-agents", min=0, help="Agent profiles published to be rated too.")] = 2000,
    seconds: Annotated[float, typer.Option("--seconds", min=1, help="Length of each attack.")] = 8.0,
    settle: Annotated[float, typer.Option("--settle", min=0, help="Seconds after an attack before memory is read again.")] = 3.0,
    attack: Annotated[
        list[str] | None,
        typer.Option("--attack", help="Run only this attack (repeatable); default: every one."),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            file_okay=False,
            help="Keep the forum's SQLite data here and reuse it: a directory filled by an earlier run with the same fill options skips the fill.",
        ),
    ] = None,
    server_env: ServerEnvOpt = None,
    json_file: JsonFileOpt = None,
) -> None:
    """Hostile clients against a forum it starts on loopback: memory, /healthz and delivery latency per attack.

    Attacks: never-read-subscribe, junk-frames, publish-junk, resubscribe-catch-up,
    scores-star, scores-listing, big-batch, events-listing, live-flood, slowloris,
    many-connections. Each runs --seconds; the report gives the server's RSS growth
    (and what it kept after the attacker left), the p99 of /healthz and of a normal
    subscriber's delivery, and what the attacker was answered. Then every acknowledged
    probe event must be in the log, forum verify must pass and the forum's output
    must hold no traceback (exit 1 otherwise).
    """
    import asyncio

    from clients.bench.abuse import ATTACKS, AbuseParams, run_abuse, verify_export
    from clients.bench.server import BenchServer, BenchServerError, raise_fd_limit

    out = Output(False)
    chosen = tuple(attack or ATTACKS)
    if unknown := [a for a in chosen if a not in ATTACKS]:
        fail(out, ExitCode.USAGE, f"unknown attack {unknown[0]!r}; one of {', '.join(ATTACKS)}")
    params = AbuseParams(
        proposals=proposals, proposal_kb=proposal_kb, ratings=ratings, rated_agents=rated_agents, seconds=seconds, settle=settle, attacks=chosen
    )
    # Every limit at its default (the fill spreads over several loopback addresses instead).
    env = {"LOG_LEVEL": "info", **_parse_env(server_env, out)}
    raise_fd_limit()
    try:
        server = BenchServer("sqlite", env, base={}, data_dir=data_dir).start()
    except BenchServerError as e:
        fail(out, ExitCode.CONNECT, str(e))
    try:
        assert server.pid is not None
        out.info(f"forum at {server.url} (pid {server.pid})")
        results = _run(out, lambda: asyncio.run(run_abuse(server.url, server.pid or 0, params, out.info, data_dir)))
        out.info("forum verify …")
        results["verify"] = verify_export(server.url)
        log = "".join(server.output)
        results["tracebacks_in_log"] = log.count("Traceback")
        results["tracebacks"] = [log[i : i + 3000] for i in _traceback_starts(log)[:3]]
        results["server"] = server.describe()
    finally:
        server.stop()
    from clients.bench.report import new_report, write_report

    report = new_report("abuse", results.pop("server"), results)
    if json_file is not None:
        write_report(report, json_file)
        out.info(f"report written to {json_file}")
    print(orjson.dumps(_abuse_summary(results), option=orjson.OPT_INDENT_2).decode())
    bad = results["acknowledged_missing"] or not results["verify"]["ok"] or results["tracebacks_in_log"]
    if bad:
        fail(out, ExitCode.REFUSED, "an acknowledged event is missing, forum verify failed or the log has a traceback")


def _traceback_starts(log: str) -> list[int]:
    """Where each traceback of the forum's output starts (its line)."""
    out, at = [], log.find("Traceback")
    while at >= 0:
        out.append(log.rfind("\n", 0, at) + 1)
        at = log.find("Traceback", at + 1)
    return out


def _abuse_summary(results: dict[str, Any]) -> dict[str, Any]:
    return {
        name: {
            "pss_growth_mb": r["pss_growth_mb"],
            "pss_kept_mb": r["pss_kept_mb"],
            "main_rss_growth_mb": r["main_rss_growth_mb"],
            "rss_growth_mb": r["rss_growth_mb"],
            "rss_kept_mb": r["rss_kept_mb"],
            "healthz_p99_ms": r["healthz"]["p99_ms"],
            "subscriber_p99_ms": r["subscriber"]["p99_ms"],
        }
        for name, r in results["attacks"].items()
    } | {
        "acknowledged_missing": results["acknowledged_missing"],
        "verify_ok": results["verify"]["ok"],
        "tracebacks_in_log": results["tracebacks_in_log"],
    }


# ---------------------------------------------------------------------------- compare


@bench_app.command()
def compare(
    a: Annotated[Path, typer.Argument(help="The first report (A).", exists=True, dir_okay=False)],
    b: Annotated[Path, typer.Argument(help="The second report (B).", exists=True, dir_okay=False)],
    everything: Annotated[
        bool, typer.Option("--all", help="Every numeric figure, not only the headline ones.")
    ] = False,
) -> None:
    """Two reports side by side, with B/A for every figure."""
    from clients.bench.report import compare_table, load_report, print_table

    out = Output(False)
    try:
        ra, rb = load_report(a), load_report(b)
    except (ValueError, orjson.JSONDecodeError) as e:
        fail(out, ExitCode.USAGE, str(e))
    if ra.get("mode") != rb.get("mode"):
        out.info(f"note: comparing a {ra.get('mode')} report with a {rb.get('mode')} report")
    print_table(compare_table(ra, rb, a.name, b.name, everything))

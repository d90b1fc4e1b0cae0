"""``forum bench scale``: how ingest, score updates, restart and page latency grow with the log.

One forum (started by the bench) is filled with ratings of agents, each
(rater, target) pair rated once before any is rated again (``authors`` keys
give ``authors x (authors - 1)`` pairs), up to each size in turn. With
``fill="direct"`` (the default) the bench stops the forum and writes the
signed events straight into its database through the forum's own writer
(:meth:`forum.store.Store.write_batch`: duplicate and context checks,
batched inserts; the signatures were made by the bench and are not checked
again), then starts it again: a log of 10^6 events fills in minutes instead of
the hour a shared machine needs to publish them. ``fill="publish"`` publishes
every event over WebSockets instead. At each size the bench measures:

* **ingest**: a phase of ``measure`` more ratings (accepted/s, CPU per event);
* **score update cost**: the forum's ``mycelium_scores_update_seconds`` over
  that phase (applying each delivered batch to the ledger and running sums),
  per batch and per event, and the last whole-document rebuild time;
* **pages**: ``requests`` sequential GETs of each path on one keep-alive
  connection (score listings, a target's view, the events API, the home
  page): p50/p99 per path;
* **restart**: kill -9, start again on the same database: seconds until the
  forum listens, until ``/healthz`` answers, until score reads answer (from
  the persisted state file when there is one), until they reflect the whole
  log (the log after the file applied, or the full replay), and until the
  restored state was checked against a full replay in the background; with
  how far the state file was behind the log at the kill (``tail_events``).
"""

from __future__ import annotations

import asyncio
import fcntl
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from clients.bench.http import HttpConnection, get
from clients.bench.ingest import IngestParams, _run_phase
from clients.bench.scaledata import loadavg
from clients.bench.server import BenchServer
from clients.bench.signing import bench_key, presign
from clients.bench.stats import LatencyHist, head_seq, scrape_metrics
from clients.bench.target import Target, Ui

FILL_CHUNK = 50_000


@dataclass
class ScaleParams:
    sizes: list[int] = field(default_factory=lambda: [100_000, 1_000_000])
    measure: int = 20_000
    requests: int = 200
    authors: int = 1000
    connections: int = 8
    window: int = 500
    timeout: float = 1800.0
    verify_wait: float = 1800.0  # seconds to wait for the background check after a restart (0: not waited)
    lock: str | None = None  # a file to flock once the log is ready, for the measured phases only
    fill: str = "direct"
    secret: str | None = None  # a prepared data directory's key secret (clients/bench/scaledata.py)
    prefilled: int = 0  # ratings already in that directory's log
    seed: dict[str, Any] | None = None  # its fill record, copied into the report


def _target(server: BenchServer) -> Target:
    t = Target.from_url(server.url, server.pid)
    t.description = server.describe()
    if server.pg is not None and server.pg.postmaster_pid:
        t.database_pids = [server.pg.postmaster_pid]
    return t


def _publish(target: Target, ui: Ui, p: ScaleParams, first: int, count: int, label: str, secret: str) -> dict[str, Any]:
    pre = presign(count, kind="rating-pairs", authors=p.authors, text_bytes=0, secret=secret, first=first)
    ip = IngestParams(events=count, connections=p.connections, window=p.window, kind="rating-pairs", authors=p.authors, timeout=p.timeout)
    return _run_phase(target, ui, pre, 0, count, ip, label, 0, profile=False)


def _database_url(server: BenchServer) -> str:
    if server.pg is not None:
        return server.pg.url
    assert server.tmpdir is not None
    return f"sqlite+aiosqlite:///{server.tmpdir / 'data' / 'forum.db'}"


async def write_direct(url: str, pre_chunks: Any, batch: int = 2000, ui: Any = None) -> int:
    """Write pre-signed envelopes through the forum's writer, without a running forum
    (``ui``: a note with the rate after each chunk)."""
    from forum.db import create_engine, migrate
    from forum.protocol.events import event_from_parsed
    from forum.store import Accepted, Store

    engine = create_engine(url)
    await migrate(engine)
    store = Store(engine)
    accepted = 0
    t0 = time.monotonic()
    try:
        for pre in pre_chunks:
            events = []
            for eid, env_json in zip(pre.ids, pre.envelopes, strict=True):
                env = orjson.loads(env_json)
                events.append(event_from_parsed(orjson.loads(env["payload"]), eid, env["payload"], env["sig"]))
            for i in range(0, len(events), batch):
                results = await store.write_batch(events[i : i + batch])
                accepted += sum(isinstance(r, Accepted) for r in results)
            if ui is not None:
                ui.note(f"{accepted:,} events written, {accepted / (time.monotonic() - t0):,.0f}/s (signing included)")
    finally:
        await engine.dispose()
    return accepted


def fill_chunks(authors: int, first: int, count: int, secret: str, *, first_profiles: bool) -> Any:
    """Pre-signed ratings ``first`` .. ``first + count`` in chunks (the agents' profiles first)."""
    if first_profiles:  # every rated agent publishes its profile first (only real targets are rated)
        yield presign(authors, kind="agent", authors=authors, text_bytes=20, secret=secret)
    for s in range(first, first + count, FILL_CHUNK):
        yield presign(min(FILL_CHUNK, first + count - s), kind="rating-pairs", authors=authors, text_bytes=0, secret=secret, first=s)


def _fill_direct(server: BenchServer, p: ScaleParams, ui: Ui, first: int, count: int, secret: str) -> dict[str, Any]:
    assert server.forum is not None
    server.forum.stop(60.0)
    t0 = time.monotonic()

    with ui.task(f"writing {count:,} events into the database", None):
        accepted = asyncio.run(write_direct(_database_url(server), fill_chunks(p.authors, first, count, secret, first_profiles=first == 0)))
    fill_s = time.monotonic() - t0
    t1 = time.monotonic()
    server.forum.start(120.0)
    return {"accepted": accepted, "seconds": round(fill_s, 1), "graceful_restart_listening_s": round(time.monotonic() - t1, 3)}


def _hist_mean(after: dict[str, float], before: dict[str, float], name: str) -> tuple[float, int]:
    s = after.get(f"{name}_sum", 0.0) - before.get(f"{name}_sum", 0.0)
    n = int(after.get(f"{name}_count", 0.0) - before.get(f"{name}_count", 0.0))
    return s, n


async def _pages(http: str, paths: list[str], requests: int) -> dict[str, Any]:
    conn = HttpConnection(http, timeout=120)
    out: dict[str, Any] = {}
    try:
        for path in paths:
            hist = LatencyHist()
            statuses: dict[str, int] = {}
            for _ in range(requests):
                t0 = time.perf_counter()
                r = await conn.get(path)
                hist.add(time.perf_counter() - t0)
                statuses[str(r.status)] = statuses.get(str(r.status), 0) + 1
            out[path] = {**hist.summary_ms(), "statuses": statuses}
    finally:
        await conn.close()
    return out


async def _scores_ready(http: str, deadline: float) -> float | None:
    t0 = time.monotonic()
    if await head_seq(http) == 0:
        return 0.0  # nothing to replay
    while time.monotonic() < deadline:
        r = await get(http, "/api/v1/scores?limit=1", time_limit=60)
        if r.status == 200 and orjson.loads(r.body).get("as_of_seq", 0) > 0:
            return time.monotonic() - t0
        await asyncio.sleep(0.05)
    return None


async def _scores_current(http: str, head: int, deadline: float) -> float | None:
    """Seconds until score reads reflect the log up to ``head`` (a restored state's tail applied)."""
    t0 = time.monotonic()
    while time.monotonic() < deadline:
        r = await get(http, "/api/v1/scores?limit=1", time_limit=60)
        if r.status == 200 and orjson.loads(r.body).get("as_of_seq", 0) >= head:
            return time.monotonic() - t0
        await asyncio.sleep(0.05)
    return None


async def _verified(http: str, deadline: float) -> tuple[float | None, dict[str, float]]:
    """Seconds until the scores engine compared a restored state with a full replay (None: not
    restored, or not within the deadline), and the state metrics then."""
    t0 = time.monotonic()
    while True:
        m = await scrape_metrics(http)
        state = {k: v for k, v in m.items() if k.startswith("mycelium_state_")}
        if not m.get('mycelium_state_restored_seq{engine="scores"}'):
            return None, state
        if m.get('mycelium_state_verified{engine="scores"}') == 1:
            return time.monotonic() - t0, state
        if time.monotonic() > deadline:
            return None, state
        await asyncio.sleep(0.5)


async def _state_saved(http: str, seq: int, deadline: float) -> float | None:
    """Seconds until both engines wrote a state file covering at least ``seq`` (None: not in time).
    At 10^6 ratings the first file after start-up is written tens of seconds after the replay;
    killed before, the restart would measure a full replay."""
    t0 = time.monotonic()
    while time.monotonic() < deadline:
        m = await scrape_metrics(http)
        if all(m.get(f'mycelium_state_saved_seq{{engine="{e}"}}', 0) >= seq for e in ("scores", "values")):
            return round(time.monotonic() - t0, 1)
        await asyncio.sleep(0.5)
    return None


def _cpu_s(pid: int | None) -> float | None:
    """CPU seconds (user + system, every thread) the process has used so far."""
    import os
    from pathlib import Path

    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 2)


def _restart(server: BenchServer, timeout: float, verify_wait: float) -> dict[str, Any]:
    """kill -9 and start again: seconds until listening, serving, scores served (possibly
    from the state file), scores current (the log after the file applied) and the state
    checked against a full replay in the background."""
    assert server.forum is not None
    before = asyncio.run(scrape_metrics(server.url))
    head = int(before.get("mycelium_log_head_seq", 0))
    saved = int(before.get('mycelium_state_saved_seq{engine="scores"}', 0))
    server.forum.kill()
    t0 = time.monotonic()
    server.forum.start(120.0)
    listening = time.monotonic() - t0
    listening_cpu = _cpu_s(server.pid)
    http = server.url

    async def probe() -> tuple[float, float | None, float | None]:
        while True:
            try:
                log_head = await head_seq(http)
                break
            except (OSError, RuntimeError, TimeoutError):
                await asyncio.sleep(0.02)
        healthz = time.monotonic() - t0
        ready = await _scores_ready(http, time.monotonic() + timeout)
        current = await _scores_current(http, log_head, time.monotonic() + timeout)
        return healthz, (None if ready is None else healthz + ready), (None if current is None else time.monotonic() - t0)

    healthz, scores, current = asyncio.run(probe())
    m = asyncio.run(scrape_metrics(http))
    verified, state = asyncio.run(_verified(http, time.monotonic() + verify_wait))
    verified_at = None if verified is None else time.monotonic() - t0
    return {
        "listening_s": round(listening, 3),
        "listening_cpu_s": listening_cpu,  # the forum process's CPU (every thread) until it listened
        "serving_s": round(healthz, 3),
        "scores_ready_s": None if scores is None else round(scores, 3),
        "scores_current_s": None if current is None else round(current, 3),
        "state_file_seq": saved,
        "tail_events": head - saved if saved else None,
        "scores_replay_s": round(m.get("mycelium_scores_replay_seconds", 0.0), 3) or None,
        # False: the file was ignored (e.g. the code changed between the two starts) and this restart replayed the log
        "restored_from_state_file": bool(m.get('mycelium_state_restored_seq{engine="scores"}')),
        "verified_s": None if verified_at is None else round(verified_at, 1),
        "state_metrics": state,
    }


def run_scale(server: BenchServer, p: ScaleParams, ui: Ui, progress: Any = None) -> dict[str, Any]:
    """Fill the started forum's log to each size and measure there; returns the report's ``results``."""
    secret = p.secret or f"forum-bench-scale-{time.time_ns()}"
    done = p.prefilled
    rows: list[dict[str, Any]] = []
    for size in sorted(p.sizes):
        target = _target(server)
        fill_t0 = time.monotonic()
        fill: dict[str, Any] = {"mode": p.fill}
        if p.seed is not None and not rows:  # a copy of a prepared log: its start replays it (no state file)
            fill = {"mode": "prepared", "prepared": {k: v for k, v in p.seed.items() if k != "secret"}}
            t0 = time.monotonic()
            asyncio.run(_scores_current(target.http, asyncio.run(head_seq(target.http)), time.monotonic() + p.timeout))
            fill["first_start_scores_current_s"] = round(time.monotonic() - t0, 1)  # after listening: the full replay
            fill["first_start_state_saved_s"] = asyncio.run(_state_saved(target.http, done, time.monotonic() + p.timeout))
            if p.lock is not None:  # the replay and the first state files were preparation; measure under the lock
                with ui.task(f"waiting for {p.lock}", None):
                    t1 = time.monotonic()
                    lock_fd = open(p.lock, "a")
                    fcntl.flock(lock_fd, fcntl.LOCK_EX)
                fill["lock_wait_s"] = round(time.monotonic() - t1, 1)
        if p.fill == "direct" and done < size - p.measure:
            fill.update(_fill_direct(server, p, ui, done, size - p.measure - done, secret))
            done = size - p.measure
            target = _target(server)
            asyncio.run(_scores_current(target.http, done, time.monotonic() + p.timeout))
            fill["verified_s"] = asyncio.run(_verified(target.http, time.monotonic() + p.timeout))[0]  # no background replay in the measure
        if done == 0 and p.fill != "direct":
            agents = presign(p.authors, kind="agent", authors=p.authors, text_bytes=20, secret=secret)
            _run_phase(target, ui, agents, 0, p.authors, IngestParams(events=p.authors, kind="agent", authors=p.authors), "agent profiles", 0, profile=False)
        while done < size - p.measure:
            n = min(FILL_CHUNK, size - p.measure - done)
            _publish(target, ui, p, done, n, f"fill to {size:,}", secret)
            done += n
        fill_s = time.monotonic() - fill_t0
        m0 = asyncio.run(scrape_metrics(target.http))
        load0 = loadavg()
        res = _publish(target, ui, p, done, p.measure, f"measure at {size:,}", secret)
        done += p.measure
        time.sleep(1.0)  # let the scores engine apply the last batches
        load1 = loadavg()
        m1 = asyncio.run(scrape_metrics(target.http))
        upd_s, upd_n = _hist_mean(m1, m0, "mycelium_scores_update_seconds")
        doc_s, doc_n = _hist_mean(m1, m0, "mycelium_scores_document_seconds")
        fit_s, fit_n = _hist_mean(m1, m0, "mycelium_scores_fit_seconds")
        head = asyncio.run(head_seq(target.http))
        some_did = bench_key(secret, 1).did
        paths = [
            "/api/v1/scores?limit=50",
            "/api/v1/scores?sort=mean&limit=50&offset=500",
            f"/api/v1/scores/{some_did}",
            "/api/v1/events?limit=100",
            "/healthz",
            "/",
        ]
        with ui.task(f"pages at {size:,}", None):
            pages: dict[str, Any] = asyncio.run(_pages(target.http, paths, p.requests))
        with ui.task(f"state files at {size:,}", None):  # a restart measures the file, not a replay
            saved_wait = asyncio.run(_state_saved(target.http, size - p.measure, time.monotonic() + p.timeout))
        with ui.task(f"restart at {size:,}", None):
            restart = _restart(server, p.timeout, p.verify_wait)
        restart["state_saved_wait_s"] = saved_wait
        target = _target(server)
        row: dict[str, Any] = {
            "size": size,
            "head_seq": head,
            "fill_s": round(fill_s, 1),
            "loadavg": {"measure_start": load0, "measure_end": load1, "restart_end": loadavg()},
            "fill": fill,
            "ingest": {
                "accepted_per_s": res["accepted_per_s"],
                "cpu_us_per_event": res["cpu_us_per_event"],
                "cpu": res["cpu"],
                "errors": res["errors"],
            },
            "scores_update": {
                "batches": upd_n,
                "ms_per_batch": round(1000 * upd_s / upd_n, 3) if upd_n else None,
                "us_per_event": round(1e6 * upd_s / max(res["accepted"], 1), 2),
                "document_rebuilds": doc_n,
                "ms_per_document_rebuild": round(1000 * doc_s / doc_n, 1) if doc_n else None,
                "fits": fit_n,
                "ms_per_fit": round(1000 * fit_s / fit_n, 1) if fit_n else None,
                # where the forum's background score time per ingested rating goes (thread wall time)
                "background_us_per_event": {
                    "batch_updates": round(1e6 * upd_s / max(res["accepted"], 1), 1),
                    "document_rebuilds": round(1e6 * doc_s / max(res["accepted"], 1), 1),
                    "fits": round(1e6 * fit_s / max(res["accepted"], 1), 1),
                },
            },
            "pages": pages,
            "restart": restart,
        }
        rows.append(row)
        if progress is not None:
            progress({"params": asdict(p), "sizes": rows})
        ui.note(
            f"{size:,}: ingest {res['accepted_per_s']:,.0f}/s, score update {row['scores_update']['us_per_event']} µs/event, "
            f"listing p99 {pages[paths[0]]['p99_ms']} ms, restart serving {restart['serving_s']} s, scores {restart['scores_ready_s']} s"
        )
    return {"params": asdict(p), "sizes": rows, "accepted_per_s": rows[-1]["ingest"]["accepted_per_s"] if rows else None}

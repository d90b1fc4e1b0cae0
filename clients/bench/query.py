"""``forum bench query``: concurrent HTTP reads of the feeds, pages and events API.

``concurrency`` keep-alive connections (spread over ``procs`` processes)
each GET the paths in turn until ``requests`` were made. Latency is from the
request's write to the whole body read. The log is seeded first with
proposals (and one rating of each of a few) if it holds fewer than ``seed``
events, so the pages have something to render.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from clients.bench.http import HttpConnection, get
from clients.bench.ingest import publish_all
from clients.bench.signing import presign
from clients.bench.stats import LatencyHist, cpu_cost, head_seq, metrics_delta, scrape_metrics
from clients.bench.target import Target, Ui
from clients.bench.workers import WorkerContext, WorkerGroup


@dataclass
class QueryParams:
    requests: int = 5000
    concurrency: int = 32
    paths: list[str] = field(default_factory=list)
    seed: int = 2000
    procs: int = 1
    warmup: int = 200


async def _default_paths(http: str) -> list[str]:
    r = await get(http, "/api/v1/events?kinds=proposal&limit=20")
    ids = [e["id"] for e in orjson.loads(r.body).get("events", [])] if r.status == 200 else []
    paths = ["/api/v1/events?limit=100", "/api/v1/events?kinds=proposal&limit=20"]
    if ids:
        paths.append(f"/api/v1/events/{ids[len(ids) // 2]}")
    paths += ["/feeds/all.atom", "/feeds/proposals.json", "/"]
    if ids:
        paths.append(f"/proposals/{ids[-1]}")
    return paths


async def _reader(
    http: str, paths: list[str], quota: int, connections: int, ctx: WorkerContext | None
) -> dict[str, Any]:
    hists = {p: LatencyHist() for p in paths}
    statuses: dict[str, Counter[int]] = {p: Counter() for p in paths}
    errors: Counter[str] = Counter()
    nbytes = 0
    left = quota
    turn = 0
    conns = [HttpConnection(http) for _ in range(connections)]
    for c in conns:  # connect before the clock starts
        await c._connect()
    if ctx is not None:
        ctx.report_ready()
        await ctx.wait_go()
    t_first = time.monotonic()

    async def loop(conn: HttpConnection) -> None:
        nonlocal left, turn, nbytes
        while left > 0:
            left -= 1
            path = paths[turn % len(paths)]
            turn += 1
            t0 = time.monotonic()
            try:
                r = await conn.get(path)
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ConnectionError) as e:
                errors[type(e).__name__] += 1
                continue
            hists[path].add(time.monotonic() - t0)
            statuses[path][r.status] += 1
            nbytes += len(r.body)
            if ctx is not None:
                ctx.progress(1)

    await asyncio.gather(*(loop(c) for c in conns))
    t_last = time.monotonic()
    for c in conns:
        await c.close()
    return {
        "hists": hists,
        "statuses": {p: dict(c) for p, c in statuses.items()},
        "errors": dict(errors),
        "bytes": nbytes,
        "first": t_first,
        "last": t_last,
    }


async def _seed(target: Target, want: int, ui: Ui) -> int:
    head = await head_seq(target.http)
    if head >= want:
        return head
    n = want - head
    pre = presign(n, kind="proposal", authors=50, text_bytes=600, procs=None)
    ui.note(f"seeding the log with {n} proposals")
    parts = [(pre.frames[c::4], pre.ids[c::4]) for c in range(4)]
    await publish_all(target.ws, parts, 500, None, 600)
    return await head_seq(target.http)


def run_query(target: Target, p: QueryParams, ui: Ui) -> dict[str, Any]:
    head = asyncio.run(_seed(target, p.seed, ui)) if p.seed else asyncio.run(head_seq(target.http))
    paths = p.paths or asyncio.run(_default_paths(target.http))
    if p.warmup:
        asyncio.run(_reader(target.http, paths, p.warmup, min(4, p.concurrency), None))
    procs = max(1, min(p.procs, p.concurrency))
    shares = [
        (
            p.requests // procs + (k < p.requests % procs),
            p.concurrency // procs + (k < p.concurrency % procs),
        )
        for k in range(procs)
    ]

    def make(quota: int, conns: int) -> Any:
        async def main(ctx: WorkerContext) -> dict[str, Any]:
            return await _reader(target.http, paths, quota, conns, ctx)

        return main

    group = WorkerGroup([make(q, c) for q, c in shares])
    group.wait_ready()
    meter = target.cpu_meter([])
    m0 = asyncio.run(scrape_metrics(target.http))
    target.profile_start("query")
    meter.start()
    group.go()
    with ui.task(f"GET × {p.requests} on {p.concurrency} connections", p.requests) as update:
        results = group.wait(3600, tick=lambda: update(group.progress()))
        update(group.progress())
    cpu = meter.stop(extra_client_seconds=sum(r.get("cpu_s", 0.0) for r in results))
    prof = target.profile_stop()
    m1 = asyncio.run(scrape_metrics(target.http))
    total = LatencyHist()
    per_path: dict[str, Any] = {}
    errors: Counter[str] = Counter()
    for path in paths:
        h = LatencyHist()
        st: Counter[int] = Counter()
        for r in results:
            h.merge(r["hists"][path])
            st.update({int(k): v for k, v in r["statuses"][path].items()})
        total.merge(h)
        per_path[path] = {
            "latency": h.summary_ms(),
            "status": {str(k): v for k, v in sorted(st.items())},
        }
    for r in results:
        errors.update(r["errors"])
    first = min(r["first"] for r in results)
    last = max(r["last"] for r in results)
    seconds = max(last - first, 1e-9)
    non_2xx = sum(
        v for pp in per_path.values() for k, v in pp["status"].items() if not k.startswith("2")
    )
    out: dict[str, Any] = {
        "params": {**asdict(p), "paths": paths},
        "log_head": head,
        "requests": total.count,
        "seconds": round(seconds, 3),
        "requests_per_s": round(total.count / seconds, 1),
        "latency": total.summary_ms(),
        "non_2xx": non_2xx,
        "errors": dict(errors),
        "mbytes_per_s": round(sum(r["bytes"] for r in results) / seconds / 1e6, 2),
        "paths": per_path,
        "cpu": cpu,
        "server_metrics": metrics_delta(m0, m1),
    }
    out["cpu_us_per_request"] = cpu_cost(cpu, out["requests_per_s"])
    if prof is not None:
        out["profile"] = prof
    ui.note(
        f"{out['requests_per_s']:,.0f} requests/s, p50 {out['latency']['p50_ms']} ms, p99 {out['latency']['p99_ms']} ms"
    )
    return out

"""``forum bench ingest``: how many signed events a second the forum accepts, durably.

N connections (spread over ``procs`` processes) publish pre-signed events,
each keeping ``window`` publishes in flight: a connection writes the next
frames as soon as OKs come back (pipelining). The clock runs from the go
signal to the last OK; the forum sends an OK only after the event's
transaction committed, so accepted/s is a durable rate. OK latency is from
the write of a PUBLISH frame to the arrival of its OK.

With ``idle_subscribers``, that many extra connections each hold one
subscription that matches none of the published events (each watches a
different quiet thread, ``{"refs": [<unused id>]}``), connected and LIVE
before the clock starts; by default a baseline phase without them runs
first on the same server, and the report gives the ratio of the two rates.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

import orjson

from clients.bench import wsclient
from clients.bench.signing import Presigned, presign, signature_check_us
from clients.bench.stats import (
    CpuMeter,
    LatencyHist,
    cpu_cost,
    head_seq,
    metrics_delta,
    scrape_metrics,
)
from clients.bench.target import Target, Ui
from clients.bench.workers import WorkerContext, WorkerGroup


@dataclass
class IngestParams:
    events: int = 100_000
    connections: int = 8
    window: int = 500
    procs: int = 1
    kind: str = "proposal"
    authors: int = 1000
    text_bytes: int = 200
    warmup: int = 2000
    idle_subscribers: int = 0
    baseline: bool = True
    timeout: float = 600.0
    sign_procs: int | None = None


# ---------------------------------------------------------------------------- one connection


class _Publisher:
    """Keeps ``window`` PUBLISH frames in flight on one connection until all got their OK."""

    def __init__(
        self,
        frames: list[bytes],
        ids: list[str],
        window: int,
        hist: LatencyHist,
        reasons: Counter[str],
        ctx: WorkerContext | None,
    ) -> None:
        self.frames = frames
        self.ids = ids
        self.window = window
        self.hist = hist
        self.reasons = reasons
        self.ctx = ctx
        self.sent_at: dict[str, float] = {}
        self.next = 0
        self.done = 0
        self.accepted = 0
        self.duplicates = 0
        self.first_send = 0.0
        self.last_ok = 0.0
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.ws: wsclient.WsClient | None = None

    def _fill(self) -> None:
        assert self.ws is not None
        room = self.window - len(self.sent_at)
        end = min(len(self.frames), self.next + room)
        if end <= self.next:
            return
        now = time.monotonic()
        if not self.first_send:
            self.first_send = now
        for i in range(self.next, end):
            self.sent_at[self.ids[i]] = now
        self.ws.write(b"".join(self.frames[self.next : end]))
        self.next = end

    def on_messages(self, texts: list[bytes], t: float) -> None:
        n = 0
        for m in texts:
            if not m.startswith(b'["OK"'):
                if m.startswith(b'["NOTICE"'):
                    self.reasons["notice: " + str(orjson.loads(m)[1])[:60]] += 1
                continue
            eid, accepted, message = self._ok_fields(m)
            t0 = self.sent_at.pop(eid, None)
            if t0 is None and (t0 := self._unmatched(accepted)) is None:
                continue
            self.hist.add(t - t0)
            n += 1
            self._count(accepted, message)
        self._answered(n, t)

    def _ok_fields(self, m: bytes) -> tuple[str, bool, str]:
        """An ``["OK", id, accepted, message]`` frame's id, verdict and message."""
        _, eid, accepted, message = orjson.loads(m)
        return eid, accepted, message

    def _unmatched(self, accepted: bool) -> float | None:
        """When the publish answered by an OK naming no id in flight was sent (None: not counted)."""
        return None

    def _count(self, accepted: bool, message: str) -> None:
        if accepted:
            if message.startswith("duplicate"):
                self.duplicates += 1
            else:
                self.accepted += 1
        else:
            self.reasons[message.split(":", 1)[0] or "refused"] += 1

    def _answered(self, n: int, t: float) -> None:
        """``n`` more publishes answered at ``t``: count them, send the next ones, or finish."""
        if n:
            self.done += n
            self.last_ok = t
            if self.ctx is not None:
                self.ctx.progress(n)
            if self.done >= len(self.frames):
                if not self.finished.done():
                    self.finished.set_result(None)
            else:
                self._fill()

    def on_closed(self) -> None:
        if not self.finished.done():
            lost = len(self.frames) - self.done
            if lost:
                self.reasons["connection-closed"] += lost
            self.finished.set_result(None)


def _closed_callback(p: _Publisher) -> Any:
    return lambda _f: p.on_closed()


async def publish_all(
    url: str,
    parts: list[tuple[list[bytes], list[str]]],
    window: int,
    ctx: WorkerContext | None,
    time_limit: float,
    publisher: type[_Publisher] | None = None,
) -> dict[str, Any]:
    """Run one publisher per (frames, ids) part on its own connection; returns the raw tallies.

    ``publisher`` reads the acknowledgements (default: the forum's OK frames;
    :mod:`clients.bench.nostr` passes one for a Nostr relay's).
    """
    hist = LatencyHist()
    reasons: Counter[str] = Counter()
    cls = publisher or _Publisher
    pubs = [cls(frames, ids, window, hist, reasons, ctx) for frames, ids in parts]
    for p in pubs:
        p.ws = await wsclient.connect(url, p.on_messages)
        p.ws.closed.add_done_callback(_closed_callback(p))
    if ctx is not None:
        ctx.report_ready()
        await ctx.wait_go()
    for p in pubs:
        if p.frames:
            p._fill()
        elif not p.finished.done():
            p.finished.set_result(None)
    try:
        async with asyncio.timeout(time_limit):
            await asyncio.gather(*(p.finished for p in pubs))
    except TimeoutError:
        for p in pubs:
            missing = len(p.frames) - p.done
            if missing:
                reasons["timeout"] += missing
    for p in pubs:
        if p.ws is not None:
            p.ws.close()
    sent = [p.first_send for p in pubs if p.first_send]
    oks = [p.last_ok for p in pubs if p.last_ok]
    return {
        "hist": hist,
        "reasons": dict(reasons),
        "accepted": sum(p.accepted for p in pubs),
        "duplicates": sum(p.duplicates for p in pubs),
        "answered": sum(p.done for p in pubs),
        "first_send": min(sent) if sent else 0.0,
        "last_ok": max(oks) if oks else 0.0,
    }


# ---------------------------------------------------------------------------- idle subscribers


async def hold_idle(url: str, count: int, ctx: WorkerContext, after_seq: int) -> dict[str, Any]:
    """``count`` connections, one quiet subscription each; LIVE before ready; held until stop."""
    frames = Counter[str]()
    live = 0

    def on_messages(texts: list[bytes], t: float) -> None:
        nonlocal live
        for m in texts:
            kind = m[2 : m.index(b'"', 2)].decode()
            frames[kind] += 1
            if kind == "LIVE":
                live += 1

    conns: list[wsclient.WsClient] = []
    for start in range(0, count, 100):
        conns += await asyncio.gather(
            *(wsclient.connect(url, on_messages) for _ in range(start, min(count, start + 100)))
        )
    for i, c in enumerate(conns):
        quiet = os.urandom(32).hex()  # an id nothing refers to: a thread that stays quiet
        c.send_text(
            orjson.dumps(["SUBSCRIBE", f"idle{i}", {"refs": [quiet], "after_seq": after_seq}])
        )
    deadline = time.monotonic() + 120
    while live < count and time.monotonic() < deadline:  # noqa: ASYNC110 - counted by a protocol callback
        await asyncio.sleep(0.05)
    ready_live = live
    ctx.report_ready()
    await ctx.wait_stop()
    closed_by_server = sum(1 for c in conns if c.is_closed)
    for c in conns:
        c.close()
    return {
        "connected": len(conns),
        "live": ready_live,
        "frames": dict(frames),
        "closed_by_server": closed_by_server,
    }


# ---------------------------------------------------------------------------- phases


def _split(
    pre: Presigned, lo: int, hi: int, connections: int, procs: int
) -> list[list[tuple[list[bytes], list[str]]]]:
    """Events lo..hi dealt over connections, connections dealt over processes."""
    frames, ids = pre.frames[lo:hi], pre.ids[lo:hi]
    conns = [(frames[c::connections], ids[c::connections]) for c in range(connections)]
    return [conns[p::procs] for p in range(procs)]


def _run_phase(
    target: Target,
    ui: Ui,
    pre: Presigned,
    lo: int,
    hi: int,
    p: IngestParams,
    label: str,
    idle: int,
    profile: bool = True,
) -> dict[str, Any]:
    holder: WorkerGroup | None = None
    idle_result: dict[str, Any] | None = None
    if idle:
        head = asyncio.run(head_seq(target.http))

        async def idle_main(ctx: WorkerContext) -> dict[str, Any]:
            return await hold_idle(target.ws, idle, ctx, head)

        holder = WorkerGroup([idle_main])
        with ui.task(f"{label}: connecting {idle} idle subscribers", None):
            holder.wait_ready(timeout=300)
    try:
        procs = max(1, min(p.procs, p.connections))
        parts = _split(pre, lo, hi, p.connections, procs)

        def make_main(part: list[tuple[list[bytes], list[str]]]) -> Any:
            async def main(ctx: WorkerContext) -> dict[str, Any]:
                r = await publish_all(target.ws, part, p.window, ctx, p.timeout)
                return r

            return main

        group = WorkerGroup([make_main(part) for part in parts])
        group.wait_ready()
        meter = target.cpu_meter(holder.pids if holder else [])
        m0 = asyncio.run(scrape_metrics(target.http))
        if profile:
            target.profile_start(label)
        results, cpu = drive(group, meter, ui, f"{label}: publishing", hi - lo, p.timeout + 60)
        prof = target.profile_stop() if profile else None
        m1 = asyncio.run(scrape_metrics(target.http))
    finally:
        if holder is not None:
            holder.stop()
            idle_result = holder.wait(120)[0]
    out: dict[str, Any] = tally(results, hi - lo)
    out.update({"cpu": cpu, "server_metrics": metrics_delta(m0, m1), "idle_subscribers": idle})
    out["cpu_us_per_event"] = cpu_cost(cpu, out["accepted_per_s"])
    if prof is not None:
        out["profile"] = prof
    if idle_result is not None:
        out["idle"] = idle_result
    return out


def run_ingest(target: Target, p: IngestParams, ui: Ui) -> dict[str, Any]:
    """The whole ingest bench: sign, warm up, then the phases; returns the report's ``results``."""
    phases = (
        [0]
        if not p.idle_subscribers
        else ([0, p.idle_subscribers] if p.baseline else [p.idle_subscribers])
    )
    total = p.warmup + p.events * len(phases)
    with ui.task(f"signing {total} {p.kind} events", total) as update:
        done = 0

        def step(n: int) -> None:
            nonlocal done
            done += n
            update(done)

        t0 = time.monotonic()
        secret = f"forum-bench-{os.urandom(4).hex()}"
        pre = presign(
            total,
            kind=p.kind,
            authors=p.authors,
            text_bytes=p.text_bytes,
            procs=p.sign_procs,
            progress=step,
            secret=secret,
        )
        sign_s = time.monotonic() - t0
    if p.kind.startswith("rating"):
        # Only real targets are rated: every rated agent publishes its profile first (unmeasured).
        agents = presign(p.authors, kind="agent", authors=p.authors, text_bytes=20, secret=secret)
        _run_phase(target, ui, agents, 0, p.authors, IngestParams(**{**asdict(p), "procs": 1}), "agent profiles", 0, profile=False)
    ui.note(f"signed {total} events in {sign_s:.1f}s ({total / sign_s:,.0f}/s on the client)")
    out: dict[str, Any] = {
        "params": asdict(p),
        "signing": {"events": total, "seconds": round(sign_s, 2)},
    }
    lo = 0
    if p.warmup:
        warm = _run_phase(
            target,
            ui,
            pre,
            0,
            p.warmup,
            IngestParams(**{**asdict(p), "procs": 1}),
            "warm-up",
            0,
            profile=False,
        )
        out["warmup"] = {"accepted": warm["accepted"], "accepted_per_s": warm["accepted_per_s"]}
        lo = p.warmup
    out["phases"] = []
    for idle in phases:
        label = f"{idle} idle subscribers" if idle else "no idle subscribers"
        res = _run_phase(target, ui, pre, lo, lo + p.events, p, label, idle)
        out["phases"].append(res)
        lo += p.events
        ui.note(
            f"{label}: {res['accepted_per_s']:,.0f} accepted/s, OK p50 {res['ok_latency']['p50_ms']} ms, p99 {res['ok_latency']['p99_ms']} ms"
        )
    sig_us = signature_check_us(p.text_bytes)
    out["signature_check_us"] = round(sig_us, 1)
    for res in out["phases"]:
        _split_cost(res, sig_us)
    main = out["phases"][-1]
    out["cpu_us_per_event"] = main["cpu_us_per_event"]
    out["accepted_per_s"] = main["accepted_per_s"]
    out["ok_latency"] = main["ok_latency"]
    out["errors"] = main["errors"]
    out["cpu"] = main["cpu"]
    if len(out["phases"]) == 2:
        base, idle_res = out["phases"]
        ratio = (
            idle_res["accepted_per_s"] / base["accepted_per_s"] if base["accepted_per_s"] else 0.0
        )
        out["idle_effect"] = {
            "baseline_per_s": base["accepted_per_s"],
            "with_idle_per_s": idle_res["accepted_per_s"],
            "ratio": round(ratio, 3),
            "drop_pct": round(100 * (1 - ratio), 1),
            "within_10pct": ratio >= 0.9,
        }
    return out


def _split_cost(res: dict[str, Any], sig_us: float) -> None:
    """Add the forum's CPU per event without the signature check and, when profiled,
    where the forum's CPU per event goes (µs by category: profile share x server µs)."""
    cost = res["cpu_us_per_event"]
    server = cost.get("server")
    if server is None:
        return
    cost["signature_check"] = round(sig_us, 1)
    cost["server_excluding_signature"] = round(server - sig_us, 1)
    prof = res.get("profile")
    if prof and prof.get("categories"):
        cats = prof["categories"]
        busy = 100.0 - cats.get("event loop waiting (select)", 0.0)
        res["server_us_per_event_by_category"] = {
            name: round(server * share / busy, 1)
            for name, share in cats.items()
            if name != "event loop waiting (select)" and busy > 0
        }


def drive(
    group: WorkerGroup, meter: CpuMeter, ui: Ui, task: str, count: int, timeout: float
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Start the ready load workers and the CPU meter, show progress, and return results and CPU."""
    meter.start()
    group.go()
    with ui.task(task, count) as update:
        results = group.wait(timeout, tick=lambda: update(group.progress()))
        update(group.progress())
    cpu = meter.stop(extra_client_seconds=sum(r.get("cpu_s", 0.0) for r in results))
    return results, cpu


def tally(results: list[dict[str, Any]], events: int) -> dict[str, Any]:
    """What the load workers' results add up to: counts, refusals by reason, rate, OK latency.

    The rate is acknowledged events over (last OK - first send), the same for the forum and for
    the relay it is compared with (clients/bench/nostr.py).
    """
    hist = LatencyHist()
    reasons: Counter[str] = Counter()
    for r in results:
        hist.merge(r["hist"])
        reasons.update(r["reasons"])
    accepted = sum(r["accepted"] for r in results)
    first = min((r["first_send"] for r in results if r["first_send"]), default=0.0)
    last = max((r["last_ok"] for r in results if r["last_ok"]), default=0.0)
    seconds = max(last - first, 1e-9)
    return {
        "events": events,
        "accepted": accepted,
        "duplicates": sum(r["duplicates"] for r in results),
        "answered": sum(r["answered"] for r in results),
        "errors": dict(sorted(reasons.items())),
        "seconds": round(seconds, 3),
        "accepted_per_s": round(accepted / seconds, 1),
        "ok_latency": hist.summary_ms(),
    }

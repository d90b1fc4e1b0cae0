"""``forum bench fanout``: one publisher at a fixed rate, many subscribers; latency and exactly-once.

Events are signed before the clock starts, all by one key, and every
subscriber subscribes with ``{"authors": [that key], "after_seq": head}``, so
other traffic on the forum does not count. The publisher (its own process)
writes event ``i`` at ``t0 + i/rate`` and records the time in shared memory
(``t_send[i]``) just before the write; a subscriber knows which event a frame
carries from its signature (a verbatim substring of the frame, so no JSON is
parsed on the hot path) and takes ``t_recv - t_send[i]`` with the same
system-wide monotonic clock.

Checks, per subscriber: every event the forum accepted arrived exactly once,
seqs strictly increase, and the same event has the same seq everywhere.

``--slow-subscriber`` runs a second phase with one more subscriber that
stops reading after LIVE, and compares the others' latency with the first
phase's; at the end the slow one reads again and the report says whether the
forum closed it with "too slow". The slow connection holds
``slow_subscriptions`` (32, the forum's default per-connection maximum)
subscriptions to the same events: the kernel buffers up to 4 MB per socket
(``tcp_wmem``) before the forum's own queue starts to fill, and 32 streams
fill that 32 times sooner than one.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import asdict, dataclass
from multiprocessing.sharedctypes import RawArray
from typing import Any

import orjson

from clients.bench import wsclient
from clients.bench.signing import Presigned, presign
from clients.bench.stats import LatencyHist, cpu_cost, head_seq, metrics_delta, scrape_metrics
from clients.bench.target import Target, Ui
from clients.bench.workers import WorkerContext, WorkerGroup


@dataclass
class FanoutParams:
    subscribers: int = 2000
    rate: float = 100.0
    duration: float = 20.0
    slow_subscriber: bool = False
    slow_subscriptions: int = 32
    procs: int = 2
    drain: float = 30.0
    text_bytes: int = 200


class _Sub:
    """One subscriber's tallies; ``on_messages`` is the hot path."""

    __slots__ = (
        "closed_reason",
        "count",
        "dups",
        "hist",
        "last_seq",
        "live",
        "order",
        "prefix",
        "seen",
        "seq_of",
        "shared",
        "unknown",
        "ws",
    )

    def __init__(self, sub_id: str, n: int, shared: _Shared, hist: LatencyHist) -> None:
        self.prefix = b'["EVENT",' + orjson.dumps(sub_id) + b","
        self.seen = bytearray(n)
        self.shared = shared
        self.hist = hist
        self.last_seq = 0
        self.count = 0
        self.dups = 0
        self.order = 0
        self.unknown = 0
        self.live = False
        self.closed_reason: str | None = None
        self.ws: wsclient.WsClient | None = None

    def on_messages(self, texts: list[bytes], t: float) -> None:
        prefix = self.prefix
        plen = len(prefix)
        sh = self.shared
        got = 0
        for m in texts:
            if m.startswith(prefix):
                j = m.index(b",", plen)
                seq = int(m[plen:j])
                k = m.rfind(b'"sig":"')
                idx = sh.index.get(m[k + 7 : -3]) if k > 0 and m.endswith(b'"}]') else None
                if idx is None:
                    self.unknown += 1
                    continue
                got += 1
                if seq <= self.last_seq:
                    self.order += 1
                self.last_seq = seq
                if self.seen[idx]:
                    self.dups += 1
                    continue
                self.seen[idx] = 1
                self.count += 1
                prev = sh.seq_of[idx]
                if prev == 0:
                    sh.seq_of[idx] = seq
                elif prev != seq:
                    sh.mismatched += 1
                self.hist.add(t - sh.t_send[idx])
            else:
                frame = orjson.loads(m)
                if frame[0] == "LIVE":
                    self.live = True
                elif frame[0] == "CLOSED":
                    self.closed_reason = str(frame[2])
        if got and sh.ctx is not None:
            sh.ctx.progress(got)


class _Shared:
    """What every subscriber of one process shares: the sig index, send times, seq map."""

    def __init__(
        self, index: dict[bytes, int], t_send: Any, n: int, ctx: WorkerContext | None
    ) -> None:
        self.index = index
        self.t_send = t_send
        self.seq_of = [0] * n
        self.mismatched = 0
        self.ctx = ctx


class _Slow:
    """The slow subscriber: one connection holding several subscriptions, reading nothing after LIVE."""

    def __init__(self, subscriptions: int) -> None:
        self.subscriptions = subscriptions
        self.live = 0
        self.events = 0
        self.closed: dict[str, str] = {}
        self.ws: wsclient.WsClient | None = None

    def on_messages(self, texts: list[bytes], t: float) -> None:
        for m in texts:
            if m.startswith(b'["EVENT"'):
                self.events += 1
                continue
            frame = orjson.loads(m)
            if frame[0] == "LIVE":
                self.live += 1
            elif frame[0] == "CLOSED":
                self.closed[str(frame[1])] = str(frame[2])


async def _subscribers(
    url: str,
    ids: list[int],
    author: str,
    after_seq: int,
    n: int,
    index: dict[bytes, int],
    t_send: Any,
    ctx: WorkerContext,
    slow: bool,
    slow_subscriptions: int = 32,
) -> dict[str, Any]:
    shared = _Shared(index, t_send, n, ctx)
    hist = LatencyHist()
    subs = [_Sub(f"f{i}", n, shared, hist) for i in ids]
    names = {id(s): f"f{i}" for s, i in zip(subs, ids, strict=True)}
    flt = {"authors": [author], "after_seq": after_seq}
    for start in range(0, len(subs), 100):
        batch = subs[start : start + 100]
        conns = await asyncio.gather(*(wsclient.connect(url, s.on_messages) for s in batch))
        for s, c in zip(batch, conns, strict=True):
            s.ws = c
            c.send_text(orjson.dumps(["SUBSCRIBE", names[id(s)], flt]))
    slow_sub: _Slow | None = None
    if slow:
        slow_sub = _Slow(slow_subscriptions)
        slow_sub.ws = await wsclient.connect(url, slow_sub.on_messages, rcvbuf=4096)
        for k in range(slow_subscriptions):
            slow_sub.ws.send_text(orjson.dumps(["SUBSCRIBE", f"slow{k}", flt]))
    deadline = time.monotonic() + 120
    while not all(s.live for s in subs) or (
        slow_sub is not None and slow_sub.live < slow_subscriptions
    ):
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    if slow_sub is not None and slow_sub.ws is not None and slow_sub.ws.transport is not None:
        slow_sub.ws.transport.pause_reading()  # from now on it reads nothing
    ctx.report_ready()
    await ctx.wait_go()
    await ctx.wait_stop()
    slow_out = None
    if slow_sub is not None and slow_sub.ws is not None:
        read_before = slow_sub.events
        if slow_sub.ws.transport is not None and not slow_sub.ws.is_closed:
            slow_sub.ws.transport.resume_reading()
        end = time.monotonic() + 20
        while (  # noqa: ASYNC110 - counted by the protocol callback
            len(slow_sub.closed) < slow_subscriptions
            and not slow_sub.ws.is_closed
            and time.monotonic() < end
        ):
            await asyncio.sleep(0.05)
        reasons = sorted(set(slow_sub.closed.values()))
        slow_out = {
            "subscriptions": slow_subscriptions,
            "event_frames_read_before_stop": read_before,
            "event_frames_read_in_all": slow_sub.events,
            "subscriptions_closed": len(slow_sub.closed),
            "closed_by_server": len(slow_sub.closed) == slow_subscriptions
            and all("too slow" in r for r in reasons),
            "closed_reason": reasons[0] if reasons else None,
        }
        slow_sub.ws.close()
    for s in subs:
        if s.ws is not None:
            s.ws.close()
    return {
        "hist": hist,
        "subs": [
            {
                "live": s.live,
                "count": s.count,
                "dups": s.dups,
                "order": s.order,
                "unknown": s.unknown,
                "closed": s.closed_reason,
                "seen": bytes(s.seen),
            }
            for s in subs
        ],
        "seq_of": shared.seq_of,
        "mismatched": shared.mismatched,
        "slow": slow_out,
    }


async def _publisher(
    url: str,
    frames: list[bytes],
    ids: list[str],
    rate: float,
    t_send: Any,
    accepted: Any,
    ctx: WorkerContext,
    ok_timeout: float,
) -> dict[str, Any]:
    where = {eid: i for i, eid in enumerate(ids)}
    reasons: Counter[str] = Counter()
    answered = 0
    ok_hist = LatencyHist()
    all_done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_messages(texts: list[bytes], t: float) -> None:
        nonlocal answered
        for m in texts:
            frame = orjson.loads(m)
            if frame[0] != "OK":
                continue
            i = where.get(frame[1])
            if i is None:
                continue
            answered += 1
            ok_hist.add(t - t_send[i])
            if frame[2] and not str(frame[3]).startswith("duplicate"):
                accepted[i] = 1
            else:
                reasons[str(frame[3]).split(":", 1)[0] or "refused"] += 1
        if answered >= len(frames) and not all_done.done():
            all_done.set_result(None)

    ws = await wsclient.connect(url, on_messages)
    ctx.report_ready()
    await ctx.wait_go()
    t0 = time.monotonic()
    lag = LatencyHist()
    for i, frame in enumerate(frames):
        due = t0 + i / rate
        now = time.monotonic()
        if due > now:
            await asyncio.sleep(due - now)
            now = time.monotonic()
        lag.add(max(0.0, now - due))
        t_send[i] = now
        ws.write(frame)
        ctx.progress(1)
    sent_s = time.monotonic() - t0
    try:
        async with asyncio.timeout(ok_timeout):
            await all_done
    except TimeoutError:
        reasons["no-ok"] += len(frames) - answered
    ws.close()
    return {
        "sent_s": sent_s,
        "answered": answered,
        "reasons": dict(reasons),
        "ok_latency": ok_hist.summary_ms(),
        "send_lag": lag.summary_ms(),
    }


def _phase(
    target: Target, ui: Ui, p: FanoutParams, pre: Presigned, author: str, label: str, slow: bool
) -> dict[str, Any]:
    n = len(pre)
    index = {s.encode(): i for i, s in enumerate(pre.sigs)}
    t_send = RawArray("d", n)
    accepted = RawArray("b", n)
    head = asyncio.run(head_seq(target.http))
    procs = max(1, min(p.procs, p.subscribers))
    groups = [list(range(p.subscribers))[k::procs] for k in range(procs)]

    def sub_main(ids: list[int], with_slow: bool) -> Any:
        async def main(ctx: WorkerContext) -> dict[str, Any]:
            return await _subscribers(
                target.ws, ids, author, head, n, index, t_send, ctx, with_slow, p.slow_subscriptions
            )

        return main

    subs = WorkerGroup([sub_main(ids, slow and k == 0) for k, ids in enumerate(groups)])

    async def pub_main(ctx: WorkerContext) -> dict[str, Any]:
        return await _publisher(
            target.ws, pre.frames, pre.ids, p.rate, t_send, accepted, ctx, p.drain
        )

    try:
        with ui.task(f"{label}: {p.subscribers} subscribers connecting", None):
            subs.wait_ready(timeout=600)
        pub = WorkerGroup([pub_main])
        pub.wait_ready()
        meter = target.cpu_meter([])
        m0 = asyncio.run(scrape_metrics(target.http))
        target.profile_start(label)
        meter.start()
        subs.go()
        pub.go()
        with ui.task(f"{label}: publishing at {p.rate:g}/s", n) as update:
            pub_res = pub.wait(p.duration * 2 + p.drain + 60, tick=lambda: update(pub.progress()))[
                0
            ]
            update(pub.progress())
        want = sum(accepted) * p.subscribers
        with ui.task(f"{label}: deliveries", want) as update:
            end = time.monotonic() + p.drain
            while subs.progress() < want and time.monotonic() < end:
                update(subs.progress())
                time.sleep(0.1)
            update(subs.progress())
            subs.stop()
            sub_res = subs.wait(120)
        cpu = meter.stop(
            extra_client_seconds=pub_res.get("cpu_s", 0.0)
            + sum(r.get("cpu_s", 0.0) for r in sub_res)
        )
        prof = target.profile_stop()
        m1 = asyncio.run(scrape_metrics(target.http))
    except BaseException:
        subs.stop()
        subs.kill()
        raise
    acc = [i for i in range(n) if accepted[i]]
    hist = LatencyHist()
    missing = dups = order = unknown = not_live = closed = 0
    for r in sub_res:
        hist.merge(r["hist"])
        for s in r["subs"]:
            seen = s["seen"]
            missing += sum(1 for i in acc if not seen[i])
            dups += s["dups"]
            order += s["order"]
            unknown += s["unknown"]
            not_live += not s["live"]
            closed += s["closed"] is not None
    mismatched = sum(r["mismatched"] for r in sub_res)
    seq_maps = [r["seq_of"] for r in sub_res]
    for i in acc:  # the same event must carry the same seq in every process
        seqs = {m[i] for m in seq_maps if m[i]}
        if len(seqs) > 1:
            mismatched += 1
    seqs_in_order = sorted(seq_maps[0][i] for i in acc if seq_maps[0][i]) if seq_maps else []
    unanswered = n - int(pub_res.get("answered", 0))
    check = {
        "ok": not (
            missing or dups or order or unknown or not_live or mismatched or closed or unanswered
        )
        and len(acc) > 0,
        "unanswered_publishes": unanswered,
        "accepted_events": len(acc),
        "expected_deliveries": len(acc) * p.subscribers,
        "delivered": hist.count,
        "missing": missing,
        "duplicates": dups,
        "out_of_order": order,
        "mismatched": mismatched,
        "unknown_frames": unknown,
        "not_live": not_live,
        "closed_by_server": closed,
        "distinct_seqs": len(set(seqs_in_order)),
    }
    seconds = cpu["wall_s"]
    out: dict[str, Any] = {
        "subscribers": p.subscribers,
        "published": n,
        "publisher": {k: v for k, v in pub_res.items() if k != "cpu_s"},
        "latency": hist.summary_ms(),
        "delivered_per_s": round(hist.count / seconds, 1) if seconds else None,
        "check": check,
        "cpu": cpu,
        "server_metrics": metrics_delta(m0, m1),
    }
    out["cpu_us_per_frame"] = cpu_cost(cpu, hist.count / seconds if seconds else 0.0)
    slow_out = next((r["slow"] for r in sub_res if r.get("slow")), None)
    if slow_out is not None:
        out["slow"] = slow_out
    if prof is not None:
        out["profile"] = prof
    return out


def run_fanout(target: Target, p: FanoutParams, ui: Ui) -> dict[str, Any]:
    n = max(1, round(p.rate * p.duration))
    phases = [False, True] if p.slow_subscriber else [False]
    with ui.task(f"signing {n * len(phases)} events", n * len(phases)) as update:
        pre = presign(n * len(phases), kind="proposal", authors=1, text_bytes=p.text_bytes, procs=1)
        update(n * len(phases))
    author = _author(pre)
    out: dict[str, Any] = {"params": asdict(p), "phases": []}
    for k, slow in enumerate(phases):
        part = Presigned(
            pre.ids[k * n : (k + 1) * n],
            pre.sigs[k * n : (k + 1) * n],
            pre.frames[k * n : (k + 1) * n],
            pre.envelopes[k * n : (k + 1) * n],
        )
        label = "with a slow subscriber" if slow else "fan-out"
        res = _phase(target, ui, p, part, author, label, slow)
        out["phases"].append(res)
        lat = res["latency"]
        ui.note(
            f"{label}: p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms, max {lat['max_ms']} ms; check {'ok' if res['check']['ok'] else 'FAILED'}"
        )
    base = out["phases"][0]
    for key in ("subscribers", "published", "latency", "delivered_per_s", "cpu", "publisher"):
        out[key] = base[key]
    checks = [ph["check"] for ph in out["phases"]]
    out["check"] = {**base["check"], "ok": all(c["ok"] for c in checks)}
    if p.slow_subscriber:
        with_slow = out["phases"][1]
        out["slow"] = with_slow.get("slow")
        b99, s99 = base["latency"]["p99_ms"], with_slow["latency"]["p99_ms"]
        b50, s50 = base["latency"]["p50_ms"], with_slow["latency"]["p50_ms"]
        out["slow_effect"] = {
            "baseline_p50_ms": b50,
            "with_slow_p50_ms": s50,
            "baseline_p99_ms": b99,
            "with_slow_p99_ms": s99,
            "p99_ratio": round(s99 / b99, 3) if b99 and s99 else None,
            "slow_closed": bool(out["slow"] and out["slow"]["closed_by_server"]),
        }
    return out


def _author(pre: Presigned) -> str:
    env = orjson.loads(pre.envelopes[0])
    return str(orjson.loads(env["payload"])["author"])

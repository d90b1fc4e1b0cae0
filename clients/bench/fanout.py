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
from clients.bench.fanreader import Sampler, Shared, SubscriberConn, tally
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
    sample: int = 8  # latency timed for about 1 in `sample` seqs (every subscriber, the same seqs)


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
    sample_every: int = 1,
) -> dict[str, Any]:
    # Seqs of this run are after_seq + 1 .. after_seq + n when nothing else is published; the
    # bitmaps leave room for other traffic in between (its events count as unknown).
    sampler = Sampler(2 * n + 1000, sample_every)
    shared = Shared(index, t_send, n, sampler, ctx.progress)
    subs = [SubscriberConn(f"f{i}", after_seq, shared, witness=k == 0) for k, i in enumerate(ids)]
    flt = {"authors": [author], "after_seq": after_seq}
    for start in range(0, len(subs), 100):
        batch = subs[start : start + 100]
        await asyncio.gather(*(wsclient.connect(url, protocol=s) for s in batch))
        for s in batch:
            s.send_text(orjson.dumps(["SUBSCRIBE", s.sub_id, flt]))
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
        s.close()
    return {**tally(subs, shared), "slow": slow_out}


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
                target.ws, ids, author, head, n, index, t_send, ctx, with_slow, p.slow_subscriptions, p.sample
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
    check = _check(sub_res, acc, n, head, p.subscribers)
    check["unanswered_publishes"] = n - int(pub_res.get("answered", 0))
    check["ok"] = check["ok"] and not check["unanswered_publishes"]
    hist = LatencyHist()
    for r in sub_res:
        hist.merge(r["hist"])
    delivered = check["delivered"]
    seconds = cpu["wall_s"]
    out: dict[str, Any] = {
        "subscribers": p.subscribers,
        "published": n,
        "publisher": {k: v for k, v in pub_res.items() if k != "cpu_s"},
        "latency": hist.summary_ms(),
        "latency_sample": {
            "every": p.sample,
            "timed": hist.count,
            "how": "every subscriber times the events whose seq is in one fixed pseudo-random subset "
            "of about 1 in `every` seqs (clients/bench/fanreader.py); every frame is checked",
        },
        "delivered_per_s": round(delivered / seconds, 1) if seconds else None,
        "check": check,
        "cpu": cpu,
        "server_metrics": metrics_delta(m0, m1),
    }
    out["cpu_us_per_frame"] = cpu_cost(cpu, delivered / seconds if seconds else 0.0)
    slow_out = next((r["slow"] for r in sub_res if r.get("slow")), None)
    if slow_out is not None:
        out["slow"] = slow_out
    if prof is not None:
        out["profile"] = prof
    return out


def _check(sub_res: list[dict[str, Any]], acc: list[int], n: int, head: int, subscribers: int) -> dict[str, Any]:
    """Every subscriber got exactly the accepted events' seqs, each once, in increasing order.

    The witnesses (one connection per process) say which seq each event got and
    that every accepted event reached them once; every subscriber's bitmap of
    seqs must then equal the accepted events' seqs (``missing``: a seq it lacks,
    ``extra``: a seq no accepted event has), and its seqs increased frame by frame.
    """
    mismatched = sum(r["mismatched"] for r in sub_res)
    witness_missing = witness_dups = 0
    seq_of: list[int] = [0] * n
    for r in sub_res:
        witness_dups += r["witness_dups"]
        seen = r["witness_seen"]
        witness_missing += sum(1 for i in acc if not seen[i])
        for i in acc:  # the same event must carry the same seq in every process
            seq = r["seq_of"][i]
            if seq and seq_of[i] and seq != seq_of[i]:
                mismatched += 1
            seq_of[i] = seq_of[i] or seq
    slots = max((len(b) for r in sub_res for b in r["bitmaps"]), default=0)
    want = bytearray(slots)
    for i in acc:
        if 0 < seq_of[i] - head <= slots:
            want[seq_of[i] - head - 1] = 1
    # An event with a seq but no OK within the drain (counted in unanswered_publishes) is in the
    # log; whether a subscriber got it is not held against the others' check.
    unsure = bytearray(slots)
    accepted = set(acc)
    for r in sub_res:
        for i, seq in enumerate(r["seq_of"]):
            if seq and i not in accepted and 0 < seq - head <= slots:
                unsure[seq - head - 1] = 1
    missing = extra = 0
    for r in sub_res:
        for bitmap, count in r["bitmaps"].items():
            if bitmap != want:
                pairs = [(w, g) for w, g, u in zip(want, bitmap, unsure, strict=True) if not u]
                missing += count * sum(1 for w, g in pairs if w and not g)
                extra += count * sum(1 for w, g in pairs if g and not w)
    out = {
        "accepted_events": len(acc),
        "expected_deliveries": len(acc) * subscribers,
        "delivered": sum(r["delivered"] for r in sub_res),
        "missing": missing,
        "extra": extra,
        "out_of_order": sum(r["order"] for r in sub_res),
        "mismatched": mismatched,
        "unknown_frames": sum(r["unknown"] for r in sub_res),
        "not_live": sum(r["not_live"] for r in sub_res),
        "closed_by_server": sum(r["closed"] for r in sub_res),
        "closed_reasons": sorted({x for r in sub_res for x in r["closed_reasons"]}),
        "witness_missing": witness_missing,
        "witness_duplicates": witness_dups,
        "distinct_seqs": len({seq_of[i] for i in acc if seq_of[i]}),
    }
    bad = ("missing", "extra", "out_of_order", "mismatched", "unknown_frames", "not_live", "closed_by_server",
           "witness_missing", "witness_duplicates")
    out["ok"] = bool(acc) and not any(out[k] for k in bad) and out["distinct_seqs"] == len(acc)
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

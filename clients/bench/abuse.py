"""``forum bench abuse``: the hostile clients of issue 11, against a forum on loopback.

The bench starts its own forum (a temporary SQLite database, every limit at
its default), fills the log with ``--proposals`` proposals of about
``--proposal-kb`` KB and ``--ratings`` ratings of those proposals and of
``--rated-agents`` agents (so that the score attacks meet real score views),
from several loopback addresses (each address has its own publish bucket),
waits for the scores to be fitted, then runs each attack for ``--seconds``
from its own loopback address (``ATTACKER_ADDRESS``: per-address limits
apply to the attacker, not to the normal clients) while measuring, from
this process (127.0.0.1):

* the server's resident memory (RSS) before, at its peak during, and
  ``--settle`` seconds after the attack (its connections closed);
* the latency of ``GET /healthz`` on a kept-alive connection, every 20 ms;
* a normal subscriber's delivery latency: one WebSocket publishes a small
  event every 100 ms, another (subscribed live) receives it;
* what the attacker was answered (close codes, HTTP statuses, reasons).

At the end every acknowledged probe event must be in the log, ``forum verify``
must pass on the export, and the forum's output must hold no traceback. Only
loopback addresses are attacked (the forum is started here). The report is
JSON (``--json-file``); figures are noisy on a shared machine, so the report
carries the load average.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2 as httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from clients.bench.probes import Probes, _p
from clients.sdk import builders
from clients.sdk.keys import derive_key

MB = 1024 * 1024
ATTACKER_ADDRESS = "127.0.0.2"  # the attacker's source address (loopback: 127.0.0.0/8 all reaches 127.0.0.1)
FILL_ADDRESSES = tuple(f"127.0.0.{10 + i}" for i in range(8))  # the fill spreads over these
ATTACKS = (
    "never-read-subscribe",
    "junk-frames",
    "publish-junk",
    "resubscribe-catch-up",
    "scores-star",
    "scores-listing",
    "big-batch",
    "events-listing",
    "live-flood",
    "slowloris",
    "many-connections",
)


@dataclass
class AbuseParams:
    proposals: int = 3000
    proposal_kb: int = 30
    ratings: int = 20000
    rated_agents: int = 2000
    seconds: float = 8.0
    settle: float = 3.0
    attacks: tuple[str, ...] = ATTACKS


# ---------------------------------------------------------------------------- attackers


async def _never_reading(ws_url: str, rcvbuf: int = 4096) -> ClientConnection:
    u = urlsplit(ws_url)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.bind((ATTACKER_ADDRESS, 0))
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (u.hostname, u.port))
    return await connect(ws_url, sock=sock, max_queue=1, compression=None, open_timeout=30, close_timeout=1)


def _abort(ws: ClientConnection) -> None:
    with contextlib.suppress(Exception):
        ws.transport.abort()


def _attacker_ws(ws_url: str, **kw: Any) -> Any:
    """A WebSocket connection from the attacker's address."""
    return connect(ws_url, compression=None, local_addr=(ATTACKER_ADDRESS, 0), **kw)


def _attacker_http(url: str, timeout: float) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(local_address=ATTACKER_ADDRESS)
    return httpx.AsyncClient(base_url=url, timeout=timeout, transport=transport)


async def _attacker_tcp(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    u = urlsplit(url)
    return await asyncio.open_connection(u.hostname, u.port, local_addr=(ATTACKER_ADDRESS, 0))


async def _flood(ws: ClientConnection, frame: str, stop: asyncio.Event) -> int:
    """Send ``frame`` as fast as the server reads it until ``stop`` (a send blocked by
    back-pressure is abandoned then: the attack lasts its time, not until the server reads)."""
    sent = 0

    async def go() -> None:
        nonlocal sent
        while True:
            await ws.send(frame)
            sent += 1
            if sent % 512 == 0:
                await asyncio.sleep(0)

    task = asyncio.create_task(go())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait([task, stopping], return_when=asyncio.FIRST_COMPLETED)
    for t in (task, stopping):
        t.cancel()
    with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
        await task
    return sent


async def _drain_answers(ws: ClientConnection, limit: float = 3.0) -> dict[str, Any]:
    """Read what the server answered (after the attack): frame kinds and the first reasons."""
    kinds: dict[str, int] = {}
    reasons: list[str] = []
    with contextlib.suppress(ConnectionClosed, TimeoutError):
        async with asyncio.timeout(limit):
            async for raw in ws:
                m = orjson.loads(raw)
                kinds[m[0]] = kinds.get(m[0], 0) + 1
                text = m[2] if m[0] == "CLOSED" else m[1] if m[0] == "NOTICE" else m[3] if m[0] == "OK" and not m[2] else None
                if isinstance(text, str) and text and len(reasons) < 3 and text not in reasons:
                    reasons.append(text)
    return {"frames": kinds, "reasons": reasons, "close_code": ws.close_code, "close_reason": ws.close_reason}


async def attack_never_read_subscribe(url: str, ws_url: str, stop: asyncio.Event) -> dict[str, Any]:
    ws = await _never_reading(ws_url)
    for i in range(8):
        await ws.send(orjson.dumps(["SUBSCRIBE", f"a{i}", {"kinds": ["proposal"], "after_seq": 0}]).decode())
    await stop.wait()
    _abort(ws)
    return {"subscriptions": 8}


async def attack_junk_frames(url: str, ws_url: str, stop: asyncio.Event) -> dict[str, Any]:
    ws = await _never_reading(ws_url)
    sent = await _flood(ws, "x", stop)
    _abort(ws)
    return {"frames_sent": sent}


async def attack_publish_junk(url: str, ws_url: str, stop: asyncio.Event) -> dict[str, Any]:
    ws = await _never_reading(ws_url)
    sent = await _flood(ws, '["PUBLISH",{}]', stop)
    answers = {"close_code": ws.close_code, "close_reason": ws.close_reason}
    _abort(ws)
    return {"frames_sent": sent, **answers}


async def attack_resubscribe_catch_up(url: str, ws_url: str, stop: asyncio.Event) -> dict[str, Any]:
    async with _attacker_ws(ws_url, max_size=None) as ws:
        for _ in range(40):
            await ws.send(orjson.dumps(["SUBSCRIBE", "s", {"kinds": ["proposal"], "limit": 1000}]).decode())
        t0 = time.perf_counter()
        live_after = None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(1.0, _remaining(stop))):
                async for raw in ws:
                    if isinstance(raw, str) and raw.startswith('["LIVE"'):
                        live_after = round(time.perf_counter() - t0, 2)
                        break
        answers = await _drain_answers(ws, 1.0)
    await stop.wait()
    return {"frames_sent": 40, "live_after_s": live_after, **answers}


async def attack_scores_star(url: str, ws_url: str, stop: asyncio.Event) -> dict[str, Any]:
    async with _attacker_ws(ws_url, max_size=None) as ws:
        for i in range(10):
            await ws.send(orjson.dumps(["SUBSCRIBE", f"sc{i}", {"scores": ["*"]}]).decode())
        await stop.wait()
        answers = await _drain_answers(ws, 1.0)
    return {"frames_sent": 10, **answers}


async def _http_loop(url: str, path: str, stop: asyncio.Event, workers: int) -> dict[str, Any]:
    statuses: dict[str, int] = {}
    times: list[float] = []

    async def one() -> None:
        async with _attacker_http(url, 60) as http:
            while not stop.is_set():
                t0 = time.perf_counter()
                try:
                    r = await http.get(path)
                    key = str(r.status_code)
                except httpx.HTTPError as e:
                    key = type(e).__name__
                times.append(time.perf_counter() - t0)
                statuses[key] = statuses.get(key, 0) + 1

    await asyncio.gather(*(one() for _ in range(workers)))
    return {"requests": len(times), "statuses": statuses, "p50_ms": _p(times, 0.5), "max_ms": _p(times, 1.0)}


async def attack_scores_listing(url: str, ws_url: str, stop: asyncio.Event) -> dict[str, Any]:
    return await _http_loop(url, "/api/v1/scores?limit=1", stop, 10)


async def attack_events_listing(url: str, ws_url: str, stop: asyncio.Event) -> dict[str, Any]:
    return await _http_loop(url, "/api/v1/events?kinds=proposal&limit=1000", stop, 8)


async def attack_big_batch(url: str, ws_url: str, stop: asyncio.Event) -> dict[str, Any]:
    key = derive_key("bench-abuse-batch", "batch")
    text = "y" * 30_000
    lines = []
    size = 0
    i = 0
    while size < 16 * MB - 70_000:
        ev = builders.proposal(key, title=f"Batch {i}", summary="s", text=text, tags=["batch"])
        env = dict(ev.envelope)
        env["sig"] = env["sig"][:-4] + "AAAA"  # refused at verification: the cost is what is measured
        line = orjson.dumps(env)
        lines.append(line)
        size += len(line) + 1
        i += 1
    body = b"\n".join(lines)
    statuses: dict[str, int] = {}
    async with _attacker_http(url, 120) as http:
        while not stop.is_set():
            r = await http.post("/api/v1/events:batch", content=body)
            statuses[str(r.status_code)] = statuses.get(str(r.status_code), 0) + 1
            if r.status_code != 200:
                statuses["reason:" + r.json().get("reason", "")] = 1
                with contextlib.suppress(TimeoutError, ValueError):  # refused: wait as told, as a client would
                    await asyncio.wait_for(stop.wait(), min(float(r.headers.get("retry-after", "1")), _remaining(stop)) or 0.01)
    return {"body_mb": round(len(body) / MB, 1), "lines": len(lines), "statuses": statuses}


async def attack_live_flood(url: str, ws_url: str, stop: asyncio.Event) -> dict[str, Any]:
    u = urlsplit(url)
    statuses: dict[str, int] = {}
    writers = []
    for _ in range(2000):
        if stop.is_set():
            break
        try:
            reader, writer = await _attacker_tcp(url)
        except OSError as e:
            statuses[type(e).__name__] = statuses.get(type(e).__name__, 0) + 1
            continue
        writer.write(f"GET /live HTTP/1.1\r\nHost: {u.netloc}\r\n\r\n".encode())
        writers.append((reader, writer))
    for reader, _ in writers:
        try:
            line = await asyncio.wait_for(reader.readline(), 2)
            code = line.split(b" ")[1].decode() if line.startswith(b"HTTP/") else "closed"
        except (TimeoutError, OSError, IndexError):
            code = "no-answer"
        statuses[code] = statuses.get(code, 0) + 1
    await stop.wait()
    for _, w in writers:
        w.close()
    return {"connections": len(writers), "statuses": statuses}


async def attack_slowloris(url: str, ws_url: str, stop: asyncio.Event) -> dict[str, Any]:
    conns = []
    for _ in range(300):
        try:
            reader, writer = await _attacker_tcp(url)
        except OSError:
            break
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        conns.append((reader, writer))
    await stop.wait()
    statuses: dict[str, int] = {}
    for reader, writer in conns:
        try:
            data = await asyncio.wait_for(reader.read(200), 0.05)
            code = data.split(b" ")[1].decode() if data.startswith(b"HTTP/") else "closed"
        except (TimeoutError, OSError, IndexError):
            code = "still-open"
        statuses[code] = statuses.get(code, 0) + 1
        writer.close()
    return {"connections": len(conns), "statuses": statuses}


async def attack_many_connections(url: str, ws_url: str, stop: asyncio.Event) -> dict[str, Any]:
    """1,000 never-reading connections, each catching up the whole log. Handshakes go 50 at a
    time; refused ones (e.g. 429 past the handshake rate) are retried after a second, as a
    persistent attacker would, until 1,000 are open or the attack ends."""
    conns: list[ClientConnection] = []
    refused: dict[str, int] = {}
    opened_after: float | None = None
    t0 = time.monotonic()

    async def one(i: int) -> None:
        try:
            ws = await _never_reading(ws_url)
            await ws.send(orjson.dumps(["SUBSCRIBE", f"m{i}", {"kinds": ["proposal"], "after_seq": 0}]).decode())
        except InvalidStatus as e:
            key = f"http {e.response.status_code}"
            refused[key] = refused.get(key, 0) + 1
            return
        except (OSError, TimeoutError, ConnectionClosed) as e:
            refused[type(e).__name__] = refused.get(type(e).__name__, 0) + 1
            return
        conns.append(ws)

    i = 0
    while len(conns) < 1000 and not stop.is_set():
        before = len(conns)
        want = min(50, 1000 - len(conns))
        await asyncio.gather(*(one(i + j) for j in range(want)))
        i += want
        if len(conns) - before < want:  # some were refused: wait as told
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
    if len(conns) >= 1000:
        opened_after = round(time.monotonic() - t0, 1)
    await stop.wait()
    for ws in conns:
        _abort(ws)
    return {"connections": len(conns), "all_open_after_s": opened_after, "refused": refused}


ATTACKERS: dict[str, Callable[[str, str, asyncio.Event], Coroutine[Any, Any, dict[str, Any]]]] = {
    "never-read-subscribe": attack_never_read_subscribe,
    "junk-frames": attack_junk_frames,
    "publish-junk": attack_publish_junk,
    "resubscribe-catch-up": attack_resubscribe_catch_up,
    "scores-star": attack_scores_star,
    "scores-listing": attack_scores_listing,
    "big-batch": attack_big_batch,
    "events-listing": attack_events_listing,
    "live-flood": attack_live_flood,
    "slowloris": attack_slowloris,
    "many-connections": attack_many_connections,
}

_deadline: dict[int, float] = {}


def _remaining(stop: asyncio.Event) -> float:
    return max(0.0, _deadline.get(id(stop), time.monotonic()) - time.monotonic())


# ---------------------------------------------------------------------------- the run


async def _post_batches(url: str, lines: list[bytes], per_batch: int, progress: Callable[[str], None], what: str) -> int:
    """POST ``lines`` in batches, spread over the fill addresses; returns the last seq accepted."""
    clients = [
        httpx.AsyncClient(base_url=url, timeout=120, transport=httpx.AsyncHTTPTransport(local_address=a)) for a in FILL_ADDRESSES
    ]
    last = 0
    try:
        for n, i in enumerate(range(0, len(lines), per_batch)):
            r = await clients[n % len(clients)].post("/api/v1/events:batch", content=b"\n".join(lines[i : i + per_batch]))
            r.raise_for_status()
            results = r.json()["results"]
            if refused := [x for x in results if not x["accepted"]]:
                raise RuntimeError(f"the fill was refused: {refused[0]['message']}")
            last = max([last, *(x["seq"] or 0 for x in results)])
            progress(f"filled {min(i + per_batch, len(lines))}/{len(lines)} {what}")
    finally:
        for c in clients:
            await c.aclose()
    return last


async def fill(url: str, params: AbuseParams, progress: Callable[[str], None]) -> dict[str, int]:
    """Fill the log: ``proposals`` proposals of about ``proposal_kb`` KB (100 authors), then
    ``rated_agents`` agent profiles and ``ratings`` ratings of those proposals and agents
    (500 raters in two camps), then wait until the scores are fitted."""
    import random
    import zlib

    keys = [derive_key("bench-abuse-fill", f"author {i}") for i in range(100)]
    text = "z" * max(1, params.proposal_kb * 1000 - 500)
    proposals = [
        builders.proposal(keys[j % 100], title=f"Filler {j}", summary="filler", text=text, tags=["filler"])
        for j in range(params.proposals)
    ]
    await _post_batches(url, [orjson.dumps(e.envelope) for e in proposals], 200, progress, "proposals")
    agents = [derive_key("bench-abuse-fill", f"agent {i}") for i in range(params.rated_agents)]
    profiles = [orjson.dumps(builders.agent(k, name=f"agent {i}", about="rated").envelope) for i, k in enumerate(agents)]
    if profiles:
        await _post_batches(url, profiles, 1000, progress, "agent profiles")
    targets = [e.id for e in proposals] + [k.did for k in agents]
    raters = [derive_key("bench-abuse-fill", f"rater {i}") for i in range(500)]
    rng = random.Random(11)
    per_rater = -(-params.ratings // len(raters)) if params.ratings else 0
    ratings: list[bytes] = []
    for r, key in enumerate(raters):
        if len(ratings) >= params.ratings or not targets:
            break
        camp = 1 if r % 2 else -1
        for t in rng.sample(targets, min(per_rater, len(targets), params.ratings - len(ratings))):
            lean = camp if zlib.crc32(t.encode()) % 2 else -camp  # two camps that disagree on half the targets
            score = round(max(-1.0, min(1.0, lean * 0.6 + rng.uniform(-0.4, 0.4))), 2)
            ratings.append(orjson.dumps(builders.rating(key, target=t, score=score).envelope))
    last = await _post_batches(url, ratings, 2000, progress, "ratings") if ratings else 0
    fitted = await _wait_for_fit(url, last) if ratings else 0
    return {"proposals": len(proposals), "rated_agents": len(agents), "ratings": len(ratings), "fit_as_of_seq": fitted}


async def _wait_for_fit(url: str, seq: int, limit: float = 300.0) -> int:
    """Wait until the fitted scores cover ``seq`` (the attacks must not share the CPU with a fit)."""
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        deadline = time.monotonic() + limit
        fitted = 0
        while time.monotonic() < deadline:
            fitted = (await http.get("/api/v1/scores", params={"limit": "1"})).json().get("fit_as_of_seq") or 0
            if fitted >= seq:
                break
            await asyncio.sleep(1.0)
        return int(fitted)


async def _wait_for_restore_checks(url: str, limit: float = 300.0) -> None:
    """After a restart on a kept log: wait until each engine that restored its state file has
    checked it against a full replay of the log (background work the attacks must not share)."""
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            text = (await http.get("/metrics")).text
            restored = {ln.split('"')[1] for ln in text.splitlines() if ln.startswith("mycelium_state_restored_seq{") and not ln.endswith(" 0.0")}
            verified = {ln.split('"')[1] for ln in text.splitlines() if ln.startswith("mycelium_state_verified{") and ln.endswith(" 1.0")}
            if restored <= verified:
                return
            await asyncio.sleep(1.0)


HOLD_SECONDS = {
    "slowloris": 12.0,  # past the 10 s header timeout, so its answer shows
    "many-connections": 24.0,  # 1,000 handshakes at the default 50 a second after a burst of 200, then held
}


async def _attack_main(name: str, url: str, ws_url: str, seconds: float) -> dict[str, Any]:
    stop = asyncio.Event()
    _deadline[id(stop)] = time.monotonic() + seconds
    task = asyncio.create_task(ATTACKERS[name](url, ws_url, stop))
    await asyncio.sleep(seconds)
    stop.set()
    return await asyncio.wait_for(task, 120)


def _attack_process(name: str, url: str, ws_url: str, seconds: float, queue: Any) -> None:
    """The attacker runs in its own process: the probes here must not wait behind it."""
    from clients.bench.server import raise_fd_limit

    raise_fd_limit()
    try:
        queue.put(asyncio.run(_attack_main(name, url, ws_url, seconds)))
    except Exception as e:  # the attacker itself failed: reported, the run goes on
        queue.put({"attacker_error": f"{type(e).__name__}: {e}"})


async def run_attack(name: str, probes: Probes, url: str, ws_url: str, params: AbuseParams) -> dict[str, Any]:
    import multiprocessing

    probes.reset()
    rss_before = await asyncio.to_thread(probes.memory_now)
    probe_stop = asyncio.Event()
    probe_task = asyncio.create_task(probes.run(probe_stop))
    await asyncio.sleep(0.5)  # probes running before the attack starts
    seconds = max(params.seconds, HOLD_SECONDS.get(name, 0.0))
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_attack_process, args=(name, url, ws_url, seconds, queue), daemon=True)
    t0 = time.monotonic()
    probes.mark("attacker_started")
    proc.start()
    try:
        answers = await asyncio.to_thread(queue.get, True, seconds + 180)
    except Exception as e:
        answers = {"attacker_error": f"no answer from the attacker: {type(e).__name__}"}
    await asyncio.to_thread(proc.join, 30)
    if proc.is_alive():
        proc.kill()
    probes.mark("attacker_done")
    probe_stop.set()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(probe_task, 30)
    await asyncio.sleep(params.settle)
    rss_after = await asyncio.to_thread(probes.memory_now)
    out = probes.summary(rss_before, rss_after)
    out["seconds"] = round(time.monotonic() - t0, 1)
    out["answers"] = answers
    out["loadavg"] = list(os.getloadavg())
    return out


def verify_export(url: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "clients", "verify", url, "--json", "--timeout", "300"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    return {"exit_code": proc.returncode, "ok": proc.returncode == 0, "last": (proc.stdout.strip().splitlines() or [""])[-1][:300]}


async def check_acked(url: str, ids: list[str]) -> int:
    """How many acknowledged probe events the log does not hold."""
    missing = 0
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            r = await http.get("/api/v1/events", params={"ids": ",".join(chunk), "limit": "1000"})
            found = {e["id"] for e in r.json()["events"]}
            missing += sum(1 for x in chunk if x not in found)
    return missing


FILL_MARK = "bench-abuse-fill.json"  # in a kept data directory: what its log was filled with


async def run_abuse(
    url: str, pid: int, params: AbuseParams, progress: Callable[[str], None], data_dir: Path | None = None
) -> dict[str, Any]:
    """Fill the log (or reuse the log of ``data_dir``, filled by an earlier run with the same
    fill parameters), run each attack with the probes, then check the acknowledged events."""
    ws_url = "ws" + url[len("http") :] + "/ws"
    t0 = time.monotonic()
    mark = data_dir / FILL_MARK if data_dir is not None else None
    shape = {"proposals": params.proposals, "proposal_kb": params.proposal_kb, "ratings": params.ratings, "rated_agents": params.rated_agents}
    kept = orjson.loads(mark.read_bytes()) if mark is not None and mark.exists() else None
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        head = int((await http.get("/healthz")).json()["head_seq"])
    if kept is not None and kept.get("shape") == shape:
        filled = kept["filled"]
        filled["fit_as_of_seq"] = await _wait_for_fit(url, filled["fit_as_of_seq"])
        await _wait_for_restore_checks(url)
        progress(f"reused the log of {data_dir} (head {head}), scores fitted in {time.monotonic() - t0:.0f}s: {filled}")
    elif head:
        raise RuntimeError(f"{data_dir} holds another log than this run's fill ({kept and kept.get('shape')}); give a new directory")
    else:
        filled = await fill(url, params, progress)
        if mark is not None:
            mark.write_bytes(orjson.dumps({"shape": shape, "filled": filled}))
        progress(f"log filled and scores fitted in {time.monotonic() - t0:.0f}s: {filled}")
    probes = Probes(url, pid)
    results: dict[str, Any] = {}
    for name in params.attacks:
        progress(f"attack {name} …")
        results[name] = await run_attack(name, probes, url, ws_url, params)
        r = results[name]
        progress(
            f"  pss +{r['pss_growth_mb']} MB (kept {r['pss_kept_mb']}), forum process rss +{r['main_rss_growth_mb']} MB, "
            f"summed rss +{r['rss_growth_mb']} MB, healthz p99 {r['healthz']['p99_ms']} ms, "
            f"subscriber p99 {r['subscriber']['p99_ms']} ms"
        )
    missing = await check_acked(url, probes.acked)
    return {
        "params": {**filled, "proposal_kb": params.proposal_kb, "seconds": params.seconds, "settle": params.settle, "attacker_address": ATTACKER_ADDRESS},
        "attacks": results,
        "acknowledged_probe_events": len(probes.acked),
        "acknowledged_missing": missing,
    }

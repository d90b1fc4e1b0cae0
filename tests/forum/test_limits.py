"""Each resource limit of docs/protocol.md ("Limits") pinned against a real server.

One ``forum serve`` process (port 0, SQLite) with small limits and a log of
large proposals; hostile clients on real sockets. Each test checks the
documented answer (reason string or close code) and, where memory is the
point, the server's resident memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx2 as httpx
import orjson
import psutil
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.forum.helpers import Signer, event_id
from tests.support.server import ForumProcess
from tests.support.timeouts import timeout

LOG_PROPOSALS = 200
TEXT = "x" * 30_000  # ~30 KB proposals, as in issue 11
SUB_BYTES = 64 * 1024
CONTROL_BYTES = 16 * 1024
MB = 1024 * 1024


def big_proposal(s: Signer, i: int, tag: str = "bulk") -> dict[str, str]:
    return s.envelope(
        "proposal", {"title": f"Big {i}", "summary": "Large.", "text": TEXT, "tags": [tag]}
    )


def post_batch(url: str, envelopes: list[dict[str, str]]) -> list[dict[str, Any]]:
    body = b"\n".join(orjson.dumps(e) for e in envelopes)
    r = httpx.post(url + "/api/v1/events:batch", content=body, timeout=timeout(30))
    assert r.status_code == 200, r.text
    results: list[dict[str, Any]] = r.json()["results"]
    assert all(x["accepted"] for x in results), results[:3]
    return results


@pytest.fixture(scope="module")
def forum(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForumProcess]:
    server = ForumProcess(
        tmp_path_factory.mktemp("limits"),
        author_rate=0,
        address_rate=0,
        subscriber_queue_bytes=SUB_BYTES,
        connection_queue_bytes=2 * SUB_BYTES,
        control_queue_bytes=CONTROL_BYTES,
        subscribe_rate=0.001,  # no refill during a test: the burst is what a connection gets
        subscribe_burst=40,
        max_http_connections_per_address=24,
        http_header_timeout_s=1,
        http_body_timeout_s=1,
        max_live_streams_per_address=2,
    ).start()
    try:
        s = Signer("limits-bulk")
        for start in range(0, LOG_PROPOSALS, 100):
            post_batch(server.url, [big_proposal(s, i) for i in range(start, start + 100)])
        yield server
    finally:
        server.kill()
    assert "Traceback" not in "".join(server.output), "".join(server.output)[-3000:]


def rss(server: ForumProcess) -> int:
    assert server.proc is not None
    return int(psutil.Process(server.proc.pid).memory_info().rss)


def metric(server: ForumProcess, name: str) -> float:
    text = httpx.get(server.url + "/metrics", timeout=timeout(10)).text
    return sum(float(ln.split()[-1]) for ln in text.splitlines() if ln.startswith(name + " ") or ln.startswith(name + "{"))


def ws_url(server: ForumProcess) -> str:
    return server.ws_url


async def never_reading(server: ForumProcess) -> ClientConnection:
    """A WebSocket whose owner stops reading: tiny receive window, one message buffered."""
    u = urlsplit(server.url)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (u.hostname, u.port))
    return await connect(ws_url(server), sock=sock, max_queue=1, compression=None, open_timeout=timeout(10))


async def recv(ws: ClientConnection) -> list[Any]:
    return list(orjson.loads(await asyncio.wait_for(ws.recv(), timeout(20))))


def healthz_seconds(server: ForumProcess) -> float:
    t0 = time.perf_counter()
    assert httpx.get(server.url + "/healthz", timeout=timeout(10)).status_code == 200
    return time.perf_counter() - t0


# --------------------------------------------------------------------------- WebSocket


async def test_subscriptions_that_are_never_read_hold_bounded_memory(forum: ForumProcess) -> None:
    before = rss(forum)
    ws = await never_reading(forum)
    for i in range(16):  # 16 catch-ups of the whole log (200 x 30 KB each): ~96 MB unbounded
        await ws.send(orjson.dumps(["SUBSCRIBE", f"a{i}", {"kinds": ["proposal"], "after_seq": 0}]).decode())
    await asyncio.sleep(3)
    grown = rss(forum) - before
    assert grown < 40 * MB, f"server grew {grown / MB:.0f} MB for one never-reading connection"
    assert await asyncio.to_thread(healthz_seconds, forum) < 1.0
    ws.transport.abort()


async def test_a_live_subscription_over_its_byte_budget_is_closed_with_a_resume_hint(forum: ForumProcess) -> None:
    s = Signer("limits-live")
    async with connect(ws_url(forum), compression=None) as ws:
        await ws.send(orjson.dumps(["SUBSCRIBE", "live", {"tags": ["live-budget"]}]).decode())
        assert (await recv(ws))[0] == "LIVE"
        envs = [big_proposal(s, i, "live-budget") for i in range(8)]  # one commit of ~240 KB > 64 KiB
        await asyncio.to_thread(post_batch, forum.url, envs)
        got: list[int] = []
        while (m := await recv(ws))[0] == "EVENT":
            got.append(m[2])
        assert m[0] == "CLOSED" and m[1] == "live"
        assert m[2].startswith("error: subscriber too slow: ")
        assert 0 < len(got) < len(envs)
        assert m[2].endswith(f"after_seq set to the last seq you received ({got[-1]})")
        # Resuming from the hint loses nothing and repeats nothing.
        await ws.send(orjson.dumps(["SUBSCRIBE", "again", {"tags": ["live-budget"], "after_seq": got[-1]}]).decode())
        while (m := await recv(ws))[0] == "EVENT":
            got.append(m[2])
        assert m[0] == "LIVE"
        ids = {event_id(e) for e in envs}
        assert len(got) == len(set(got)) == len(ids)


async def test_refused_publishes_never_read_end_in_back_pressure_or_1008(forum: ForumProcess) -> None:
    """Refused publishes are answered after verification, so their OKs can pile up after
    the reader stopped reading. Either the server stops reading (the client's sends block)
    or, past control_queue_bytes, it closes the connection with its documented reason."""
    before = rss(forum)
    ws = await never_reading(forum)
    sent = 0

    async def flood() -> None:
        nonlocal sent
        for _ in range(300_000):
            await ws.send('["PUBLISH",{}]')
            sent += 1

    task = asyncio.create_task(flood())
    last = -1
    while sent != last and not task.done():
        last = sent
        await asyncio.sleep(1)
    if task.done():  # the connection ended: it must have been the control-frame limit
        with contextlib.suppress(ConnectionClosed):
            task.result()
        with contextlib.suppress(ConnectionClosed):  # read what was sent, up to the close frame
            while True:
                await asyncio.wait_for(ws.recv(), timeout(10))
        # The close frame (1008, reason) is sent, but a client still sending when the server
        # closes gets a reset that may discard it (1006): the server's counter says which.
        assert ws.close_code in (1008, 1006)
        if ws.close_code == 1008:
            assert ws.close_reason == "blocked: replies piled up unread; read your frames"
        assert metric(forum, "mycelium_connections_closed_replies_piled_up_total") >= 1
    else:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
            await task
        assert sent < 300_000
    assert rss(forum) - before < 20 * MB
    ws.transport.abort()


def test_an_outbox_whose_replies_pile_up_overflows_once() -> None:
    from forum.hub import Outbox

    calls: list[int] = []
    box = Outbox(limit=1 << 20, control_limit=CONTROL_BYTES, on_overflow=lambda: calls.append(box.control))
    frame = '["NOTICE","invalid: ' + "x" * 100 + '"]'
    for _ in range(CONTROL_BYTES // len(frame)):
        box.put(frame)
        assert box.reader_full() == (box.control > CONTROL_BYTES // 4)
    assert not calls
    box.put(frame)
    box.put(frame)
    assert len(calls) == 1 and box.overflowed and calls[0] > CONTROL_BYTES


async def test_junk_frames_stop_being_read_while_notices_are_unread(forum: ForumProcess) -> None:
    """Back-pressure: the server reads no more than ~control_queue_bytes / 4 of replies ahead."""
    before = rss(forum)
    ws = await never_reading(forum)
    sent = 0

    async def flood() -> None:
        nonlocal sent
        for _ in range(200_000):
            await ws.send("x" * 1000)  # each answered by a NOTICE nobody reads
            sent += 1

    task = asyncio.create_task(flood())
    last = -1
    while sent != last and not task.done():  # until the server stops reading (the kernel buffers are full)
        last = sent
        await asyncio.sleep(1)
    assert not task.done(), "the server kept reading junk frames nobody reads the answers to"
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
        await task
    assert sent < 150_000  # of 200 MB sent, the server read a few MB (what the kernel holds)
    assert rss(forum) - before < 20 * MB
    ws.transport.abort()


async def test_subscribe_is_rate_limited_per_connection(forum: ForumProcess) -> None:
    async with connect(ws_url(forum), compression=None) as ws:
        for _ in range(41):  # the burst is 40 and replacing the same sub_id still costs
            await ws.send(orjson.dumps(["SUBSCRIBE", "same", {"kinds": ["proposal"], "limit": 1000}]).decode())
        closed = []
        while True:
            m = await recv(ws)
            if m[0] == "CLOSED" and m[2]:
                closed.append(m[2])
                break
        assert closed[0].startswith("rate-limited: too many SUBSCRIBEs on this connection, retry in ")
        t0 = time.perf_counter()
        assert await asyncio.to_thread(healthz_seconds, forum) < 1.0, time.perf_counter() - t0


# --------------------------------------------------------------------------- HTTP


def _raw(url: str) -> socket.socket:
    u = urlsplit(url)
    return socket.create_connection((u.hostname or "127.0.0.1", u.port or 80), timeout=timeout(10))


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_partial_headers_get_408_after_the_header_timeout(forum: ForumProcess) -> None:
    with _raw(forum.url) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        t0 = time.monotonic()
        reply = _read_all(sock)
        assert 0.5 < time.monotonic() - t0 < timeout(5)
    assert reply.startswith(b"HTTP/1.1 408 ")
    assert b"blocked: request headers not received within 1s" in reply


def test_a_slow_body_gets_408_after_the_body_timeout(forum: ForumProcess) -> None:
    with _raw(forum.url) as sock:
        sock.sendall(b"POST /api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n{\"payload\"")
        reply = _read_all(sock)
    assert b" 408 " in reply.split(b"\r\n", 1)[0]
    assert b"blocked: request body not received within 1s" in reply


def test_http_connections_per_address_are_capped(forum: ForumProcess) -> None:
    idle = [_raw(forum.url) for _ in range(24)]
    try:
        time.sleep(0.2)
        with _raw(forum.url) as extra:
            reply = _read_all(extra)
        assert reply.startswith(b"HTTP/1.1 503 ")
        assert b"blocked: too many HTTP connections from this address" in reply
    finally:
        for s in idle:
            s.close()
    time.sleep(0.3)
    assert healthz_seconds(forum) < 1.0  # the slots came back


def test_an_aborted_body_is_one_debug_line_not_a_traceback(forum: ForumProcess) -> None:
    with _raw(forum.url) as sock:
        sock.sendall(b"POST /api/v1/events:batch HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"{" * 5000)
    time.sleep(0.5)
    assert healthz_seconds(forum) < 1.0
    assert "Traceback" not in "".join(forum.output)


def test_live_streams_are_capped_per_address(forum: ForumProcess) -> None:
    with httpx.Client(base_url=forum.url, timeout=timeout(10)) as c:
        with c.stream("GET", "/live") as a, c.stream("GET", "/live") as b:
            assert a.status_code == b.status_code == 200
            r = c.get("/live")
            assert r.status_code == 429 and r.headers["retry-after"]
            assert "too many live streams from this address" in r.text


def test_the_host_header_never_reaches_a_link(forum: ForumProcess) -> None:
    evil = {"Host": "evil.example"}
    feed = httpx.get(forum.url + "/feeds/all.atom", headers=evil, timeout=timeout(10))
    assert feed.status_code == 200 and b"<feed" in feed.content
    assert b"evil.example" not in feed.content
    assert forum.url.encode() in feed.content  # unset public_url: the address the server listens on
    r = httpx.get(forum.url + "/feeds/all.atom/", headers=evil, timeout=timeout(10))
    if r.is_redirect:
        assert "evil.example" not in r.headers["location"]


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForumProcess]:
    """A second forum: a public URL and a small address bucket charged by bytes."""
    server = ForumProcess(
        tmp_path_factory.mktemp("strict"),
        public_url="https://forum.example.org",
        author_rate=0,
        address_rate=0.001,
        address_burst=100,
        rate_token_bytes=1024,
    ).start()
    try:
        yield server
    finally:
        server.kill()


def test_public_url_is_used_for_every_link(strict: ForumProcess) -> None:
    s = Signer("limits-public")
    r = httpx.post(strict.url + "/api/v1/events", content=orjson.dumps(s.envelope("agent", {"name": "p", "about": "a"})), timeout=timeout(10))
    assert r.status_code == 201
    feed = httpx.get(strict.url + "/feeds/all.atom", headers={"Host": "evil.example"}, timeout=timeout(10))
    assert feed.status_code == 200 and b"evil.example" not in feed.content
    assert b"https://forum.example.org/feeds/all.atom" in feed.content
    assert strict.url.encode() not in feed.content


def test_publishing_costs_address_tokens_by_bytes(strict: ForumProcess) -> None:
    s = Signer("limits-cost")
    # ten ~30 KB events cost ~310 tokens as one batch: more than the whole burst
    body = b"\n".join(orjson.dumps(big_proposal(s, i)) for i in range(10))
    r = httpx.post(strict.url + "/api/v1/events:batch", content=body, timeout=timeout(30))
    assert r.status_code == 413 and r.json()["reason"] == "too-large"
    assert "address tokens, more than the address burst (100)" in r.json()["message"]
    # one at a time each costs the same ~31 tokens: three fit in what is left (100 - 1.3), not four
    codes = [
        httpx.post(strict.url + "/api/v1/events", content=orjson.dumps(big_proposal(s, i)), timeout=timeout(10)).status_code
        for i in range(4)
    ]
    assert codes == [201, 201, 201, 429]


def test_event_pages_stop_at_their_byte_bound_and_link_the_rest(forum: ForumProcess) -> None:
    from forum.api import PAGE_BYTES

    seen: list[int] = []
    url: str | None = "/api/v1/events?kinds=proposal&tags=bulk&after_seq=0&limit=1000"
    pages = 0
    while url:
        r = httpx.get(forum.url + url, timeout=timeout(30))
        page = r.json()
        assert r.headers.get("transfer-encoding") == "chunked"  # streamed, never built whole
        payloads = sum(len(e["payload"]) for e in page["events"])
        assert len(r.content) < PAGE_BYTES + 64 * 1024 and payloads <= PAGE_BYTES
        if page["next"]:
            assert payloads > PAGE_BYTES - 40_000  # full: one more 30 KB event would not fit
        seen += [e["seq"] for e in page["events"]]
        url = page["next"]
        pages += 1
    assert len(seen) == len(set(seen)) == LOG_PROPOSALS and seen == sorted(seen)
    assert pages >= LOG_PROPOSALS * 30_000 // PAGE_BYTES  # 200 x 30 KB does not fit one page
    newest = httpx.get(forum.url + "/api/v1/events?kinds=proposal&tags=bulk&limit=1000", timeout=timeout(30)).json()
    assert newest["events"][-1]["seq"] == seen[-1] and newest["next"]  # newest kept, older ones linked
    older = httpx.get(forum.url + newest["next"], timeout=timeout(30)).json()
    assert older["events"][-1]["seq"] == seen[seen.index(newest["events"][0]["seq"]) - 1]  # it ends where that began
    empty = httpx.get(forum.url + "/api/v1/events?kinds=proposal&tags=none-such", timeout=timeout(30))
    assert empty.json() == {"events": [], "next": None, "head": empty.json()["head"]}


# --------------------------------------------------------------------------- reads are charged


def test_a_debt_of_read_tokens_is_paid_back_at_the_rate() -> None:
    from forum.ratelimit import TokenBuckets

    now = [0.0]
    b = TokenBuckets(10, 100, clock=lambda: now[0])
    assert b.take("a", 1) == 0.0  # 99 left
    b.charge("a", 150)  # a response already sent: the bucket goes into debt (-51)
    assert b.take("a", 1) == pytest.approx(5.2)  # 52 tokens at 10/s
    b.charge("a", 10_000)
    now[0] += 10.0  # the debt is never deeper than -burst: 100 + 10 s x 10 = 0 again
    assert b.take("a", 1) == pytest.approx(0.1)
    assert b.take("b", 1) == 0.0  # another address is untouched


@pytest.fixture(scope="module")
def reads(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForumProcess]:
    """A forum with a small read bucket (100 tokens/s, 300 at most, a token per 1 KiB), a
    small frame budget per WebSocket connection (50 frames/s, 50 at most) and 5 WebSocket
    handshakes per address."""
    server = ForumProcess(
        tmp_path_factory.mktemp("reads"),
        author_rate=0,
        address_rate=0,
        address_read_rate=100,
        address_read_burst=300,
        rate_token_bytes=1024,
        connection_frame_rate=50,
        connection_frame_burst=50,
        address_upgrade_rate=0.001,  # no refill during a test: the burst is what an address gets
        address_upgrade_burst=5,
    ).start()
    try:
        post_batch(server.url, [big_proposal(Signer("limits-reads"), i, "reads") for i in range(20)])
        yield server
    finally:
        server.kill()


def test_reads_cost_address_tokens_by_the_bytes_they_return(reads: ForumProcess) -> None:
    with httpx.Client(base_url=reads.url, timeout=timeout(10)) as c:
        for _ in range(400):  # /healthz is free: 400 reads, more than the whole bucket
            assert c.get("/healthz").status_code == 200
        big = c.get("/api/v1/events?kinds=proposal&limit=20")  # ~600 KB: served whole, ~600 tokens
        assert big.status_code == 200 and len(big.json()["events"]) == 20
        for path in ("/api/v1/events?limit=1", "/", "/api/v1/scores?limit=1"):  # the API and pages alike
            r = c.get(path)
            assert r.status_code == 429, (path, r.status_code)
            body = r.json()
            assert body["ok"] is False and body["status"] == 429 and body["reason"] == "rate-limited"
            assert body["message"].startswith("rate-limited: address over its read budget")
            wait = int(r.headers["retry-after"])
            assert 1 <= wait <= 7  # a debt of ~300 tokens at 100 a second
    # Another address has its own bucket.
    other = httpx.Client(base_url=reads.url, timeout=timeout(10), transport=httpx.HTTPTransport(local_address="127.0.0.2"))
    with other:
        assert other.get("/api/v1/events?limit=1").status_code == 200
    time.sleep(wait + 0.5)
    with httpx.Client(base_url=reads.url, timeout=timeout(10)) as c:
        assert c.get("/api/v1/events?limit=1").status_code == 200
        small = [c.get("/api/v1/events?kinds=agent&limit=1").status_code for _ in range(20)]
    assert small == [200] * 20  # ~1 token each: small reads pass at the rate


async def test_a_connection_is_read_at_its_frame_budget(reads: ForumProcess) -> None:
    """3,000 junk frames sent at once are read at 50 a second (each answered by a NOTICE);
    another connection is read at once all the while."""
    async with connect(reads.ws_url, compression=None) as ws, connect(reads.ws_url, compression=None) as other:

        async def flood() -> None:
            for _ in range(3000):
                await ws.send("x" * 100)

        sender = asyncio.create_task(flood())
        notices = 0
        t0 = time.monotonic()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(3.0):
                while True:
                    m = orjson.loads(await ws.recv())
                    assert m[0] == "NOTICE" and m[1].startswith("invalid: ")
                    notices += 1
        elapsed = time.monotonic() - t0
        # burst + rate x time, plus at most one 8 KiB slice of ~107-byte frames parsed at once
        assert 50 <= notices <= 50 + 50 * elapsed + 8192 // 107 + 1, notices
        t1 = time.monotonic()
        await other.send("y")
        assert (await recv(other))[0] == "NOTICE"
        assert time.monotonic() - t1 < 1.0
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
            await sender


async def test_websocket_handshakes_are_rate_limited_per_address(reads: ForumProcess) -> None:
    from websockets.exceptions import InvalidStatus

    opened: list[ClientConnection] = []
    refusal = None
    for _ in range(8):  # from an address no other test uses: its whole burst is 5
        try:
            opened.append(await connect(reads.ws_url, compression=None, local_addr=("127.0.0.3", 0)))
        except InvalidStatus as e:
            refusal = e.response
            break
    assert len(opened) == 5 and refusal is not None
    assert refusal.status_code == 429 and int(refusal.headers["Retry-After"]) >= 1
    body = orjson.loads(refusal.body)
    assert body["reason"] == "rate-limited" and body["status"] == 429
    assert body["message"].startswith("rate-limited: too many WebSocket handshakes from this address, retry in ")
    for ws in opened:  # the open ones work
        await ws.send("x")
        assert (await recv(ws))[0] == "NOTICE"
        await ws.close()
    async with connect(reads.ws_url, compression=None, local_addr=("127.0.0.4", 0)) as other:  # another address
        await other.send("x")
        assert (await recv(other))[0] == "NOTICE"

"""The HTTP API under /api/v1, plus the well-known document, health and metrics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from forum import __version__
from forum.ingest import Result
from forum.openapi import openapi_document
from forum.protocol import strictjson
from forum.protocol.errors import ProtocolError
from forum.protocol.events import KINDS, PROTOCOL_VERSION
from forum.protocol.filters import DECIMAL, DEFAULT_LIMIT, MAX_LIMIT, filter_from_query
from forum.ratelimit import publish_cost
from forum.responses import JSON, error, from_protocol_error
from forum.store import Stored
from forum.ws import client_address


def _event_json(s: Stored) -> dict[str, Any]:
    return {"seq": s.seq, "id": s.event.id, "payload": s.event.payload, "sig": s.event.sig, "retracted": s.retracted}


def _result_json(r: Result) -> dict[str, Any]:
    return {"id": r.id, "accepted": r.accepted, "message": r.message, "seq": r.seq}


class BodyTimeout(Exception):
    """The request body did not arrive within http_body_timeout_s."""


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, at most ``limit`` bytes (checked as it arrives) and within the body timeout."""
    size = 0
    chunks = []
    if (declared := request.headers.get("content-length", "")).isdigit() and int(declared) > limit:
        raise ProtocolError("too-large", f"request body is over {limit} bytes")
    try:
        async with asyncio.timeout(request.app.state.settings.http_body_timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise ProtocolError("too-large", f"request body is over {limit} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise BodyTimeout from None
    return b"".join(chunks)


def _body_timeout(request: Request) -> Response:
    seconds = request.app.state.settings.http_body_timeout_s
    return error("blocked", f"request body not received within {seconds:g}s", status=408, headers={"Connection": "close"})


def _rate_limit(request: Request, n: float = 1) -> float:
    return float(request.app.state.address_buckets.take(client_address(request.scope), n))


async def publish(request: Request) -> Response:
    st = request.app.state
    try:
        body = await _read_body(request, st.settings.max_frame_bytes)
        envelope = strictjson.loads(body, what="envelope")
    except ProtocolError as e:
        return from_protocol_error(e)
    except BodyTimeout:
        return _body_timeout(request)
    if wait := _rate_limit(request, publish_cost(len(body), st.settings.rate_token_bytes)):
        return from_protocol_error(
            ProtocolError("rate-limited", f"address over its rate limit, retry in {wait:.2f}s"), wait
        )
    r = await st.ingest.submit(envelope, len(body))
    if not r.accepted:
        refusal = ProtocolError(r.reason or "error", r.message.split(": ", 1)[-1])
        return from_protocol_error(refusal, r.retry_after)
    return JSON({"ok": True, **_result_json(r)}, status_code=201 if r.seq else 200)


async def publish_batch(request: Request) -> Response:
    st = request.app.state
    try:
        body = await _read_body(request, st.settings.max_batch_body_bytes)
    except ProtocolError as e:
        return from_protocol_error(e)
    except BodyTimeout:
        return _body_timeout(request)
    lines = [ln for ln in body.split(b"\n") if ln.strip()]
    # A batch costs what its events cost one by one: 1 token each plus 1 per rate_token_bytes.
    unit = st.settings.rate_token_bytes
    cost = sum(publish_cost(len(ln), unit) for ln in lines)
    burst = st.settings.address_burst
    if st.settings.address_rate and cost > burst:
        return error("too-large", f"this batch costs {cost:.0f} address tokens, more than the address burst ({burst}); split it")
    if wait := _rate_limit(request, cost):
        return from_protocol_error(
            ProtocolError("rate-limited", f"address over its rate limit, retry in {wait:.2f}s"), wait
        )
    # The lines go to the verifier processes unparsed (they parse, check and verify them):
    # a 16 MB body costs the event loop a split and a length check per line, no JSON.
    max_line = st.settings.max_frame_bytes
    futures = []
    results: list[Result | None] = [None] * len(lines)
    for i, line in enumerate(lines):
        if len(line) > max_line:
            results[i] = Result("", False, f"too-large: line is over {max_line} bytes")
        else:
            futures.append((i, st.ingest.submit_nowait(line, len(line))))
    for i, fut in futures:
        results[i] = await fut
    return JSON({"ok": True, "results": [_result_json(r) for r in results if r is not None]})


async def list_events(request: Request) -> Response:
    st = request.app.state
    params: dict[str, list[str]] = {}
    for k, v in request.query_params.multi_items():
        params.setdefault(k, []).append(v)
    before = params.pop("before_seq", None)
    try:
        if before is not None and (len(before) != 1 or not DECIMAL.fullmatch(before[0])):
            raise ProtocolError("invalid", "before_seq must be one non-negative integer")
        f = filter_from_query(params)
    except ProtocolError as e:
        return from_protocol_error(e)
    limit = f.effective_limit
    store = st.store
    # A page is at most `limit` events and at most PAGE_BYTES of payloads (read in slices sized
    # to what is left of that); `next` continues where it stopped. At most READS_AT_ONCE such
    # reads run at once per process; the body is then streamed (_events_body), never whole.
    async with _reads(request):
        rows: list[Any] = []
        size = 0
        full = False
        if f.after_seq is not None:
            cursor = f.after_seq
            while len(rows) < limit and size < PAGE_BYTES:
                want = _slice(limit - len(rows), len(rows), size)
                got = await store.query_rows(f, after_seq=cursor, limit=want)
                for r in got:
                    if rows and size + len(r.payload) > PAGE_BYTES:
                        full = True
                        break
                    rows.append(r)
                    size += len(r.payload)
                if full or len(got) < want:
                    break
                cursor = got[-1].seq
            more = full or len(rows) == limit
            nxt = {**_flat(params), "after_seq": str(rows[-1].seq)} if more and rows else None
        else:
            below = int(before[0]) if before else None
            while len(rows) < limit and size < PAGE_BYTES:
                want = _slice(limit - len(rows), len(rows), size)
                got = await store.query_rows(f, before_seq=below, limit=want)
                kept: list[Any] = []
                for r in reversed(got):  # newest first, so the page keeps the newest ones
                    if (rows or kept) and size + len(r.payload) > PAGE_BYTES:
                        full = True
                        break
                    kept.append(r)
                    size += len(r.payload)
                rows = kept[::-1] + rows
                if full or len(got) < want:
                    break
                below = got[0].seq
            more = full or len(rows) == limit
            nxt = {**_flat(params), "before_seq": str(rows[0].seq)} if more and rows else None
        doc = {"next": f"/api/v1/events?{urlencode(nxt)}" if nxt else None, "head": await store.head()}
    return StreamingResponse(_events_body(rows, doc), media_type="application/json")


PAGE_BYTES = 1024 * 1024
"""Payload bytes in one page of GET /api/v1/events (at least one event). What one listing
holds while it is served; ``forum bench abuse`` events-listing: 8 loops of ``limit=1000``
over 30 KB events grew the server 42-57 MB with 4 MiB pages built whole."""
PAGE_SLICE = 100  # rows read from the database at a time for one page, at most
FIRST_SLICE = 16  # rows of the first read; the next reads are sized by the bytes they took
READS_AT_ONCE = 4  # large event reads served at once per process; the others wait their turn
BODY_CHUNK = 256 * 1024  # bytes of JSON handed to the server at a time (then a yield) when a page is sent


def _slice(left: int, got: int, size: int) -> int:
    """Rows to read next: at most PAGE_SLICE and ``left``, and about what fits in what is left
    of PAGE_BYTES at the mean size of the ``got`` rows read so far (``size`` bytes)."""
    if not got:
        return min(left, FIRST_SLICE)
    return max(1, min(left, PAGE_SLICE, (PAGE_BYTES - size) * got // max(size, 1) + 1))


def _reads(request: Request) -> asyncio.Semaphore:
    st = request.app.state
    sem = getattr(st, "read_slots", None)
    if sem is None:
        sem = st.read_slots = asyncio.Semaphore(READS_AT_ONCE)
    return sem


async def _events_body(rows: list[Any], doc: dict[str, Any]) -> AsyncIterator[bytes]:
    """``{"events": [...], "next", "head"}`` in chunks of about BODY_CHUNK, each row let go once
    it is serialized: a page is never held twice (rows and JSON), nor its JSON whole."""
    chunk = [b'{"events":[']
    n = len(chunk[0])
    for i, r in enumerate(rows):
        rows[i] = None
        part = orjson.dumps({"seq": r.seq, "id": r.id, "payload": r.payload, "sig": r.sig, "retracted": bool(r.retracted)})
        chunk.append(b"," + part if i else part)
        n += len(part) + 1
        if n >= BODY_CHUNK:
            yield b"".join(chunk)
            chunk, n = [], 0
            await asyncio.sleep(0)  # a send does not suspend: let a disconnect end the response
    chunk.append(b"]," + orjson.dumps(doc)[1:])
    yield b"".join(chunk)


def _flat(params: dict[str, list[str]]) -> dict[str, str]:
    return {k: ",".join(v) for k, v in params.items()}


async def get_event(request: Request) -> Response:
    eid = request.path_params["id"]
    stored = await request.app.state.store.get(eid) if len(eid) == 64 else None
    if stored is None:
        return error("not-found", f"no event {eid[:64]!r} in this forum")
    return JSON(_event_json(stored))


async def export(request: Request) -> Response:
    raw = request.query_params.get("after_seq", "0")
    if not DECIMAL.fullmatch(raw):
        return error("invalid", "after_seq must be a non-negative integer")
    store = request.app.state.store

    async def lines() -> AsyncIterator[bytes]:
        async for page in store.export(int(raw)):
            yield b"".join(
                orjson.dumps({"seq": seq, "id": eid, "payload": payload, "sig": sig}) + b"\n"
                for seq, eid, payload, sig in page
            )

    return StreamingResponse(lines(), media_type="application/x-ndjson")


def well_known_document(settings: Any, head: int) -> dict[str, Any]:
    s = settings
    return {
        "name": s.name,
        "software": "mycelium-forum",
        "version": __version__,
        "protocol_version": PROTOCOL_VERSION,
        "signature_prefix": "mycelium/event/v1\n",
        "kinds": list(KINDS),
        "endpoints": {"websocket": "/ws", "events": "/api/v1/events", "export": "/api/v1/export", "openapi": "/openapi.json"},
        "head_seq": head,
        "limits": {
            "max_payload_bytes": s.max_payload_bytes,
            "max_frame_bytes": s.max_frame_bytes,
            "max_batch_body_bytes": s.max_batch_body_bytes,
            "max_future_ms": s.max_future_ms,
            "min_pow_bits": s.min_pow_bits,
            "author_rate": s.author_rate,
            "author_burst": s.author_burst,
            "address_rate": s.address_rate,
            "address_burst": s.address_burst,
            "max_connections_per_address": s.max_connections_per_address,
            "max_subscriptions_per_connection": s.max_subscriptions_per_connection,
            "subscriber_queue_bytes": s.subscriber_queue_bytes,
            "connection_queue_bytes": s.connection_queue_bytes,
            "address_queue_bytes": s.address_queue_bytes,
            "control_queue_bytes": s.control_queue_bytes,
            "rate_token_bytes": s.rate_token_bytes,
            "subscribe_rate": s.subscribe_rate,
            "subscribe_burst": s.subscribe_burst,
            "address_subscribe_rate": s.address_subscribe_rate,
            "address_subscribe_burst": s.address_subscribe_burst,
            "address_read_rate": s.address_read_rate,
            "address_read_burst": s.address_read_burst,
            "filter_default_limit": DEFAULT_LIMIT,
            "filter_max_limit": MAX_LIMIT,
        },
    }


async def well_known(request: Request) -> Response:
    st = request.app.state
    return JSON(well_known_document(st.settings, await st.store.head()))


async def healthz(request: Request) -> Response:
    st = request.app.state
    return JSON({"ok": True, "head_seq": await st.store.head(), "database": st.store.engine.dialect.name})


async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


async def openapi(request: Request) -> Response:
    return JSON(openapi_document())


routes = [
    Route("/api/v1/events", publish, methods=["POST"]),
    Route("/api/v1/events:batch", publish_batch, methods=["POST"]),
    Route("/api/v1/events", list_events, methods=["GET"]),
    Route("/api/v1/events/{id}", get_event, methods=["GET"]),
    Route("/api/v1/export", export, methods=["GET"]),
    Route("/.well-known/mycelium.json", well_known, methods=["GET"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"]),
]
"""Every HTTP route of the core API (tests check each is documented in docs/api.md)."""

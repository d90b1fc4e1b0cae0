"""The WebSocket endpoint ``/ws``: one reader loop and one sender task per connection.

The reader hands PUBLISH frames, unparsed, to the ingest path without waiting
for the commit (so clients can pipeline; worker processes parse and verify
them), parses every other frame (sans-I/O, forum.protocol.wire), and
starts a catch-up task per SUBSCRIBE. The sender drains the connection's
Outbox. Bad frames get an error and the connection keeps working.

Bounds (docs/protocol.md, 11.6 and 11.9): the outbox is counted in bytes per
subscription, per connection and per client address; the reader reads no
further frame while replies are piling up or the outbox is full
(back-pressure: the client's own TCP window fills), and closes the connection
if replies pile up anyway. PUBLISH costs address tokens by its size,
SUBSCRIBE costs subscription tokens per connection and per address, and
replacing or closing a subscription cancels its catch-up.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

import structlog
from starlette.websockets import WebSocket, WebSocketDisconnect

from forum.corked import FLUSH_BYTES, RAW_TEXT
from forum.hub import AddressBudget, Outbox, Subscription
from forum.ingest import Result, id_of_submitted
from forum.protocol import wire
from forum.protocol.errors import ProtocolError, StorageError
from forum.ratelimit import TokenBuckets, publish_cost

if TYPE_CHECKING:
    from forum.scores.engine import ScoresEngine

log = structlog.get_logger("forum.ws")

MAX_INFLIGHT_PUBLISHES = 2000  # per connection: beyond it the reader waits for OKs
MAX_INFLIGHT_BYTES = 16 * 1024 * 1024  # per connection: frame bytes of PUBLISHes awaiting their OK
SCORES_SUBSCRIBE_COST = 4.0  # subscription tokens a scores subscription costs (an event one costs 1)
FAIR_FRAMES = 32  # frames one connection's reader handles before it yields to the event loop
CLOSE_REPLIES_PILED_UP = "blocked: replies piled up unread; read your frames"
SEND_BATCH_BYTES = FLUSH_BYTES  # at most this much taken from the outbox for one write; never more than the
# transport's room under its high-water mark (RawTextSender.room), so a peer that does not read holds about one
# high-water mark (64 KiB) outside the outbox's byte budgets, not a batch on top of it (1,000 such peers: +865 MB)
PUBLISH_PREFIX = '["PUBLISH",'  # frames starting so go to the workers unparsed; any other spelling is parsed here


def client_address(scope: Any) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"


async def websocket_endpoint(ws: WebSocket) -> None:
    state = ws.app.state
    settings = state.settings
    address = client_address(ws.scope)
    conns: dict[str, int] = state.connections_per_address
    limit = settings.max_connections_per_address
    if limit and conns.get(address, 0) >= limit:
        await ws.close(code=1008, reason="blocked: too many connections from this address")
        return
    await ws.accept()
    conns[address] = conns.get(address, 0) + 1
    budgets: dict[str, AddressBudget] = state.address_budgets
    budget = budgets.get(address) or budgets.setdefault(
        address, AddressBudget(settings.address_queue_bytes, settings.max_catch_up_reads_per_address)
    )
    state.metrics.connections.inc()
    conn = _Connection(ws, address, budget)
    try:
        await conn.run()
    finally:
        conns[address] -= 1
        if not conns[address]:
            del conns[address]
            budgets.pop(address, None)
        state.metrics.connections.dec()


class _Connection:
    def __init__(self, ws: WebSocket, address: str, budget: AddressBudget) -> None:
        self.ws = ws
        self.address = address
        st = ws.app.state
        self.settings = s = st.settings
        self.hub = st.hub
        self.ingest = st.ingest
        self.address_buckets = st.address_buckets
        self.subscribe_buckets: TokenBuckets = st.subscribe_buckets  # per address
        self.own_subscribe_bucket = TokenBuckets(s.subscribe_rate, s.subscribe_burst)  # this connection
        self.scores: ScoresEngine = st.scores
        self.outbox = Outbox(
            limit=s.connection_queue_bytes,
            control_limit=s.control_queue_bytes,
            address=budget,
            on_overflow=self._overflowed,
        )
        self.subs: dict[str, Subscription] = {}
        self.catchups: dict[Subscription, asyncio.Task[Any]] = {}
        self.inflight = 0
        self.inflight_bytes = 0
        self.room = asyncio.Event()  # set while the in-flight PUBLISHes are under both bounds
        self.room.set()
        self.reader_task: asyncio.Task[Any] | None = None

    async def run(self) -> None:
        sender = asyncio.create_task(self._sender())
        self.reader_task = asyncio.current_task()
        try:
            await self._reader()
        except WebSocketDisconnect:
            pass
        except asyncio.CancelledError:
            if not self.outbox.overflowed:
                raise
            log.info("connection closed: replies piled up", address=self.address, queued=self.outbox.bytes)
            self.ws.app.state.metrics.replies_closed.inc()
            with contextlib.suppress(Exception):
                await self.ws.close(code=1008, reason=CLOSE_REPLIES_PILED_UP)
        finally:
            for sub in self.subs.values():
                self.hub.remove(sub)
                self.scores.unsubscribe(sub)
            self.outbox.abandon()
            for t in self.catchups.values():
                t.cancel()
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender

    def _overflowed(self) -> None:
        """Replies piled up past control_queue_bytes: this connection ends (1008)."""
        self.outbox.abandon()
        if self.reader_task is not None:
            self.reader_task.cancel()

    async def _sender(self) -> None:
        raw = self.ws.scope.get("extensions", {}).get(RAW_TEXT)  # forum serve's protocol (forum/corked.py)
        try:
            if raw is None:  # another ASGI server: one frame at a time through Starlette
                while (frame := await self.outbox.get()) is not None:
                    await self.ws.send_text(frame)
            else:  # what is queued leaves in one write, up to SEND_BATCH_BYTES at a time
                while True:
                    room = min(await raw.room(), SEND_BATCH_BYTES)  # waits while over the high-water mark
                    if (frames := await self.outbox.take(max(room, 1))) is None:
                        break
                    await raw.send(frames)
        except Exception:  # the peer went away; the reader will notice too
            self.outbox.abandon()
            with contextlib.suppress(Exception):
                await self.ws.close()

    async def _reader(self) -> None:
        max_frame = self.settings.max_frame_bytes
        outbox = self.outbox
        n = 0
        while True:
            if outbox.reader_full():
                await outbox.reader_room()  # back-pressure: read nothing more until it drains
            n += 1
            if n % FAIR_FRAMES == 0:
                # One read can hold thousands of tiny frames, all handled without an await;
                # let every other connection run between slices of them.
                await asyncio.sleep(0)
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                self.outbox.put(wire.notice("invalid: binary frames are not accepted; send JSON text frames"))
                continue
            if len(text) > max_frame // 4 and len(text.encode("utf-8", "surrogatepass")) > max_frame:
                self.outbox.put(wire.notice(f"too-large: frame is over {max_frame} bytes"))
                continue
            if text.startswith(PUBLISH_PREFIX):  # parsed and verified by a worker process
                await self._publish(text, len(text))
                continue
            try:
                msg = wire.parse_message(text)
            except ProtocolError as e:
                self.outbox.put(wire.notice(e.message))
                continue
            if isinstance(msg, wire.Publish):
                await self._publish(msg.envelope, len(text))
            elif isinstance(msg, wire.Subscribe):
                self._subscribe(msg)
            elif isinstance(msg, wire.BadSubscribe):
                self._drop(msg.sub_id)  # a refused re-SUBSCRIBE ends the old one too
                self.outbox.put(wire.closed(msg.sub_id, msg.error))
            else:
                self._unsubscribe(msg.sub_id)

    async def _publish(self, envelope: Any, size: int) -> None:
        """Submit an envelope (dict) or a raw ``["PUBLISH", ...]`` frame (str) of ``size`` bytes."""
        wait = self.address_buckets.take(self.address, publish_cost(size, self.settings.rate_token_bytes))
        if wait:
            self.outbox.put(wire.ok(id_of_submitted(envelope), False, f"rate-limited: address over its rate limit, retry in {wait:.2f}s"))
            return
        if self.inflight >= MAX_INFLIGHT_PUBLISHES or self.inflight_bytes + size > MAX_INFLIGHT_BYTES:
            self.room.clear()
            await self.room.wait()  # back-pressure: read no more frames until OKs drain
        self.inflight += 1
        self.inflight_bytes += size
        fut = self.ingest.submit_nowait(envelope, size)
        fut.add_done_callback(lambda f: self._acked(f, size))

    def _acked(self, fut: asyncio.Future[Result], size: int) -> None:
        self.inflight -= 1
        self.inflight_bytes -= size
        if self.inflight < MAX_INFLIGHT_PUBLISHES and self.inflight_bytes <= MAX_INFLIGHT_BYTES // 2:
            self.room.set()
        if fut.cancelled():
            return
        r = fut.result()
        self.outbox.put(wire.notice(r.message) if r.notice else wire.ok(r.id, r.accepted, r.message))

    def _drop(self, sub_id: str) -> bool:
        sub = self.subs.pop(sub_id, None)
        if sub is None:
            return False
        if (task := self.catchups.pop(sub, None)) is not None:
            task.cancel()  # a replaced or closed subscription stops reading the log
        self.hub.remove(sub)
        self.scores.unsubscribe(sub)
        return True

    def _subscribe(self, msg: wire.Subscribe) -> None:
        self._drop(msg.sub_id)  # re-using a sub_id replaces the subscription
        for key in [k for k, s in self.subs.items() if s.closed]:
            del self.subs[key]  # closed by the server (e.g. too slow)
        if len(self.subs) >= self.settings.max_subscriptions_per_connection:
            self.outbox.put(wire.closed(msg.sub_id, ProtocolError("blocked", f"at most {self.settings.max_subscriptions_per_connection} subscriptions per connection")))
            return
        cost = 1.0 if msg.scores is None else SCORES_SUBSCRIBE_COST
        who, wait = "connection", self.own_subscribe_bucket.take("", cost)
        if not wait:
            who, wait = "address", self.subscribe_buckets.take(self.address, cost)
        if wait:
            self.outbox.put(
                wire.closed(msg.sub_id, ProtocolError("rate-limited", f"too many SUBSCRIBEs on this {who}, retry in {wait:.2f}s"))
            )
            return
        sub = Subscription(self.outbox, msg.sub_id, msg.filter)
        self.subs[msg.sub_id] = sub
        task = asyncio.create_task(self._catch_up(sub, msg.scores))
        self.catchups[sub] = task
        task.add_done_callback(lambda t: self.catchups.pop(sub, None) if self.catchups.get(sub) is t else None)

    async def _catch_up(self, sub: Subscription, scores: tuple[str, ...] | None) -> None:
        try:
            if scores is not None:
                await self.scores.subscribe(sub, scores)
            await self.hub.run_subscription(sub)
        except asyncio.CancelledError:
            raise
        except StorageError as e:  # e.g. a stored row that no longer parses: one line, no traceback
            log.error("subscription failed", sub_id=sub.sub_id, error=str(e))
            self._failed(sub)
        except Exception:
            log.exception("subscription failed", sub_id=sub.sub_id)
            self._failed(sub)

    def _failed(self, sub: Subscription) -> None:
        self.hub.remove(sub)
        self.subs.pop(sub.sub_id, None)
        self.outbox.put(wire.closed(sub.sub_id, ProtocolError("error", "the subscription failed on the server; resubscribe with after_seq")))

    def _unsubscribe(self, sub_id: str) -> None:
        if not self._drop(sub_id):
            self.outbox.put(wire.notice(f"invalid: no subscription {sub_id!r}"))
            return
        self.outbox.put(wire.closed(sub_id, ""))  # an empty reason: closed at your request

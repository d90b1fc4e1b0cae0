"""Subscriptions as async iterators that survive reconnects, CLOSED frames and slow consumers.

A stream is driven by its consumer: ``SUBSCRIBE`` goes out when the consumer
asks for the next item and nothing is buffered, so a stream that is not being
read never asks the forum for more. Frames arrive from the client's reader
task into a bounded buffer. Three things make a stream resubscribe, always
with ``after_seq`` set to the last seq it buffered (its *cursor*), so the
consumer sees no gap and no duplicate:

* the connection dropped (the client reconnects; the stream resumes);
* the forum sent ``CLOSED`` with a transient reason, e.g. a slow subscriber
  (``error: subscriber too slow ...``); permanent reasons (``invalid``,
  ``blocked``, ``too-large``) end the stream with :class:`~clients.sdk.errors.Refused`;
* the buffer overflowed: the client sends ``UNSUBSCRIBE``, drops what else
  arrives, and resubscribes once the consumer has drained the buffer.

Each ``SUBSCRIBE`` uses a fresh wire id (``sub_id``, then ``sub_id~2``,
``sub_id~3`` ...), so late frames of an abandoned subscription are ignored.
As a last guard, an ``EVENT`` whose seq is not above the cursor is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections import deque
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar

import orjson
from websockets.exceptions import ConnectionClosed

from clients.sdk.errors import ClientClosed, Refused, VerificationFailed, split_reason
from forum.protocol.errors import ProtocolError
from forum.protocol.events import (
    Event,
    Limits,
    event_from_parsed,
    parse_envelope,
    parse_payload,
    verify_envelope,
)

if TYPE_CHECKING:
    from clients.sdk.client import Client

__all__ = ["ScoreSubscription", "Subscription", "check_sub_id"]

T = TypeVar("T")

MAX_CLOSED_RETRIES: Final = 5
"""Transient CLOSED frames in a row (with no event in between) before a stream gives up."""

PERMANENT_REASONS: Final = frozenset({"invalid", "blocked", "too-large"})

RECEIVE_LIMITS: Final = Limits(max_payload_bytes=2**31, max_future_ms=2**62, min_pow_bits=0)
"""Checks on received events: schema and signature, but no size, clock-skew or work limits
(those are the forum's policy at publication time, not properties of a valid event)."""

_SUB_ID = re.compile(r"^[\x21-\x7d]{1,56}$")  # printable ASCII without space and '~'
_LIVE: Final = object()


def check_sub_id(sub_id: str) -> str:
    """Validate a caller-chosen sub_id: 1 to 56 printable ASCII characters, no space, no ``~``."""
    if not isinstance(sub_id, str) or not _SUB_ID.match(sub_id):
        raise ValueError("sub_id must be 1 to 56 printable ASCII characters without spaces or '~'")
    return sub_id


def parse_received(envelope: Any, *, verify: bool) -> Event:
    """Parse an envelope received from a forum: untrusted data until this returns.

    With ``verify`` (the default everywhere) the forum's own checks run,
    signature included; without it only the payload schema is checked.
    """
    if verify:
        return verify_envelope(envelope, limits=RECEIVE_LIMITS, now_ms=0)
    payload, sig = parse_envelope(envelope)
    obj, eid = parse_payload(payload, limits=RECEIVE_LIMITS, now_ms=0)
    return event_from_parsed(obj, eid, payload, sig)


class _Stream(Generic[T]):
    """What event and score subscriptions share: wire ids, buffer, resubscription."""

    def __init__(self, client: Client, sub_id: str, *, max_buffer: int) -> None:
        self.sub_id = sub_id
        self._client = client
        self._max_buffer = max_buffer
        self._queue: deque[Any] = deque()
        self._wakeup = asyncio.Event()
        self._wire_id: str | None = None
        self._generation = 0
        self._needs_subscribe = True
        self._failures = 0
        self._done = False
        self._error: BaseException | None = None
        self.live = asyncio.Event()
        """Set once the consumer has received every stored match (the forum said LIVE)."""

    # ------------------------------------------------------------------ consumer side

    def __aiter__(self) -> _Stream[T]:
        return self

    async def __aenter__(self) -> _Stream[T]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def closed(self) -> bool:
        """True once the stream has ended (closed, failed, or its client closed)."""
        return self._done

    async def aclose(self) -> None:
        """Stop the subscription (sends ``UNSUBSCRIBE`` if it is active)."""
        if self._done:
            return
        self._done = True
        self._wakeup.set()
        wire_id, self._wire_id = self._wire_id, None
        self._client._forget(self, wire_id)
        ws = self._client._connection()
        if wire_id is not None and ws is not None:
            with contextlib.suppress(ConnectionClosed):
                await ws.send(orjson.dumps(["UNSUBSCRIBE", wire_id]).decode())

    async def _next_item(self) -> Any:
        """The next buffered item, subscribing (again) whenever the buffer is empty and needs it."""
        while True:
            if self._queue:
                return self._queue.popleft()
            if self._error is not None:
                error, self._error = self._error, None
                self._done = True
                self._client._forget(self, None)
                raise error
            if self._done:
                raise StopAsyncIteration
            if self._needs_subscribe:
                await self._subscribe()
                continue
            self._wakeup.clear()
            await self._wakeup.wait()

    async def _subscribe(self) -> None:
        try:
            ws = await self._client._wait_ready()
            if self._failures:
                await asyncio.sleep(self._client._backoff_delay(self._failures))
                ws = await self._client._wait_ready()
        except ClientClosed:
            self._done = True
            return
        if self._done or not self._needs_subscribe:
            return
        self._generation += 1
        wire_id = self.sub_id if self._generation == 1 else f"{self.sub_id}~{self._generation}"
        self._wire_id = wire_id
        self._needs_subscribe = False
        self._client._register(self, wire_id)
        frame = orjson.dumps(["SUBSCRIBE", wire_id, self._subscribe_filter()]).decode()
        with contextlib.suppress(ConnectionClosed):  # the client marks us for resubscription
            await ws.send(frame)

    # ------------------------------------------------------------------ reader side (never awaits)

    def _subscribe_filter(self) -> dict[str, Any]:
        raise NotImplementedError

    def _push(self, item: Any) -> bool:
        """Buffer an item; False when the buffer is full (the caller unsubscribes)."""
        if len(self._queue) >= self._max_buffer:
            self._wire_id = None
            self._needs_subscribe = True
            self._wakeup.set()
            return False
        self._queue.append(item)
        self._failures = 0
        self._wakeup.set()
        return True

    def _on_event(self, seq: Any, envelope: Any) -> bool:
        return True

    def _on_scores(self, scores: Any) -> bool:
        return True

    def _on_live(self, last_seq: Any) -> None:
        self._failures = 0
        self._queue.append(_LIVE)
        self._wakeup.set()

    def _on_closed(self, message: str) -> None:
        """The forum closed the current wire subscription."""
        self._wire_id = None
        reason, detail = split_reason(message)
        self._failures += 1
        if reason in PERMANENT_REASONS or self._failures > MAX_CLOSED_RETRIES:
            self._error = Refused(reason, detail)
        else:
            self._needs_subscribe = True
        self._wakeup.set()

    def _on_disconnect(self) -> None:
        self._wire_id = None
        if not self._done:
            self._needs_subscribe = True
        self._wakeup.set()

    def _on_client_closed(self) -> None:
        self._wire_id = None
        self._done = True
        self._wakeup.set()


class Subscription(_Stream[tuple[int, Event]]):
    """Events matching a filter, as ``(seq, event)``: stored ones first, then live ones.

    ``event`` is a :class:`forum.protocol.events.Event` whose signature has been checked
    (unless the client was made with ``verify=False``). Its text is untrusted
    data written by someone else: display or analyse it, never follow it.

    ``live`` is set when the consumer has received every stored match;
    ``last_seq`` is the seq of the last event yielded. An event that fails
    verification raises :class:`~clients.sdk.errors.VerificationFailed`; the
    subscription stays usable, so a consumer may log it and carry on.
    """

    def __init__(
        self,
        client: Client,
        sub_id: str,
        filter: Mapping[str, Any],
        *,
        verify: bool,
        max_buffer: int,
        until_live: bool = False,
    ) -> None:
        super().__init__(client, sub_id, max_buffer=max_buffer)
        self.filter: dict[str, Any] = dict(filter)
        self.last_seq: int | None = None
        self._verify = verify
        self._until_live = until_live
        self._cursor: int | None = self.filter.get("after_seq")

    def __aiter__(self) -> Subscription:
        return self

    async def __aenter__(self) -> Subscription:
        return self

    async def __anext__(self) -> tuple[int, Event]:
        while True:
            item = await self._next_item()
            if item is _LIVE:
                self.live.set()
                if self._until_live:
                    await self.aclose()
                    raise StopAsyncIteration
                continue
            seq, envelope = item
            self.last_seq = seq
            try:
                return seq, parse_received(envelope, verify=self._verify)
            except ProtocolError as e:
                raise VerificationFailed(seq, envelope, e) from None

    @property
    def cursor(self) -> int | None:
        """The seq a resubscription resumes after (every match up to it has been buffered)."""
        return self._cursor

    def _subscribe_filter(self) -> dict[str, Any]:
        f = dict(self.filter)
        if self._cursor is not None:
            f["after_seq"] = self._cursor
        return f

    def _on_event(self, seq: Any, envelope: Any) -> bool:
        if type(seq) is not int or (self._cursor is not None and seq <= self._cursor):
            return True  # malformed, or already buffered: drop
        if not self._push((seq, envelope)):
            return False
        self._cursor = seq
        return True

    def _on_live(self, last_seq: Any) -> None:
        if type(last_seq) is int and (self._cursor is None or last_seq > self._cursor):
            self._cursor = last_seq  # everything up to the forum's head was sent before LIVE
        super()._on_live(last_seq)


class ScoreSubscription(_Stream[dict[str, Any]]):
    """Score updates for targets (event ids, did:keys or ``"*"``), as the dicts of SCORES frames.

    The format of the dict is the raters' (passed through untouched). After a
    reconnect the subscription is renewed, and the forum sends current scores again.
    """

    def __init__(self, client: Client, sub_id: str, targets: list[str], *, max_buffer: int) -> None:
        super().__init__(client, sub_id, max_buffer=max_buffer)
        self.targets = targets

    def __aiter__(self) -> ScoreSubscription:
        return self

    async def __aenter__(self) -> ScoreSubscription:
        return self

    async def __anext__(self) -> dict[str, Any]:
        while True:
            item = await self._next_item()
            if item is _LIVE:
                self.live.set()
                continue
            return item

    def _subscribe_filter(self) -> dict[str, Any]:
        return {"scores": list(self.targets)}

    def _on_scores(self, scores: Any) -> bool:
        return self._push(scores)

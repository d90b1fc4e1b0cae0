"""One socket write per connection per event-loop pass, and text frames written without per-frame layers.

The hub can queue hundreds of frames for one connection in a single pass; uvicorn
writes each to the socket as it is sent. :class:`CorkedWebSocketProtocol` wraps
the connection's transport so that everything written during one pass leaves in
a single ``write`` (one syscall, full TCP segments) at the end of the pass. It
keeps Nagle off (low latency when little is sent) without paying a syscall per
frame when a lot is.

It also offers the app a :class:`RawTextSender` (in the connection's ASGI scope,
``scope["extensions"][RAW_TEXT]``): the outbox's frames, already text, leave as
WebSocket text frames built here (server frames are unmasked: a 2-, 4- or
10-byte header and the UTF-8 bytes, RFC 6455 section 5.2) in one write per batch, instead
of one trip per frame through Starlette's ``send``, uvicorn's ASGI ``send`` and
websockets' frame objects (about half of the forum's CPU per delivered frame in
a fan-out to 2,000 subscribers, docs/performance.md). It sends only while the
connection is open (handshake done, no close sent or received) and waits, like
uvicorn's ``send``, while the transport is over its high-water mark. No
compression is negotiated (``ws_per_message_deflate=False`` in forum/server.py),
so a text frame is its header and its bytes.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

FLUSH_BYTES = 256 * 1024
RAW_TEXT = "forum.raw_text_frames"
"""The ASGI scope extension under which a connection's :class:`RawTextSender` is found."""


class CorkedTransport:
    """A transport proxy that joins the writes of one loop pass (flow control passes through)."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []
        self._size = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(bytes(data))
        self._size += len(data)
        if self._size >= FLUSH_BYTES:
            # Hand it to the transport now: past its high-water mark the protocol is paused
            # and the sender waits, so a peer that does not read holds at most this much here
            # (the outbox, counted in bytes, holds the rest).
            self._flush()

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def write_now(self, data: bytes) -> None:
        """Write ``data`` to the socket now, after anything pending (one write, no loop pass)."""
        if self._pending:
            self._pending.append(data)
            self._flush()
        elif not self._transport.is_closing():
            self._transport.write(data)

    def _flush(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        self._size = 0
        if not self._transport.is_closing():
            self._transport.write(data)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + self._size

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending.clear()
        self._size = 0
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


_HEAD16 = struct.Struct("!BBH").pack


def text_frame(payload: bytes) -> bytes:
    """The header of one final, unmasked text frame of ``payload`` (RFC 6455, 5.2)."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n))
    if n < 65536:
        return b"\x81\x7e" + n.to_bytes(2, "big")
    return b"\x81\x7f" + n.to_bytes(8, "big")


class ConnectionGone(Exception):
    """The WebSocket is closing or closed: nothing more may be sent on it."""


class RawTextSender:
    """Sends text messages on one served WebSocket as frames built here, in one write."""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: CorkedWebSocketProtocol) -> None:
        self._protocol = protocol

    async def room(self) -> int:
        """Bytes the transport takes before its high-water mark, after waiting until it takes any.

        The sender takes at most this much from the outbox for one write, so a peer that does
        not read holds about one high-water mark outside the outbox's byte budgets (the
        transport's buffer), as with one frame at a time through uvicorn's ``send``, and never
        a whole batch more on top of it.
        """
        p = self._protocol
        if not p.writable.is_set():
            await p.writable.wait()  # over the high-water mark: wait for the peer to read
        transport = p.transport
        high = transport.get_write_buffer_limits()[1]
        return max(high - transport.get_write_buffer_size(), 0)

    async def send(self, texts: list[str]) -> None:
        """Send ``texts`` as text frames, in order, in one write; raises ConnectionGone once closed."""
        p = self._protocol
        if not p.writable.is_set():
            await p.writable.wait()  # as uvicorn's send: over the high-water mark, wait for the peer
        if p.disconnected or p.close_sent or p.conn.state is not State.OPEN:  # websockets' own check
            raise ConnectionGone
        parts: list[bytes] = []
        add = parts.append
        for text in texts:  # text_frame inlined for the usual size (126 to 65,535 bytes)
            data = text.encode()
            n = len(data)
            add(_HEAD16(0x81, 126, n) if 125 < n < 65536 else text_frame(data))
            add(data)
        transport = p.transport
        assert isinstance(transport, CorkedTransport)
        transport.write_now(b"".join(parts))


class CorkedWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol on a :class:`CorkedTransport`."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.transport = self.wrap_transport(self.transport)  # type: ignore[assignment]

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:  # an accepted upgrade: the app may send frames built here
            scope["extensions"][RAW_TEXT] = RawTextSender(self)

    def wrap_transport(self, transport: asyncio.Transport) -> CorkedTransport:
        return CorkedTransport(transport, self.loop)

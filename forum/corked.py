"""One socket write per connection per event-loop pass.

The hub can queue hundreds of frames for one connection in a single pass; uvicorn
writes each to the socket as it is sent. :class:`CorkedWebSocketProtocol` wraps
the connection's transport so that everything written during one pass leaves in
a single ``write`` (one syscall, full TCP segments) at the end of the pass. It
keeps Nagle off (low latency when little is sent) without paying a syscall per
frame when a lot is.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

FLUSH_BYTES = 256 * 1024


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


class CorkedWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol on a :class:`CorkedTransport`."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.transport = self.wrap_transport(self.transport)  # type: ignore[assignment]

    def wrap_transport(self, transport: asyncio.Transport) -> CorkedTransport:
        return CorkedTransport(transport, self.loop)

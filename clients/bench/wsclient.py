"""A minimal RFC 6455 client for load generation: frames in, frames out, no per-message tasks.

The SDK's :class:`clients.sdk.client.Client` verifies every received signature and
keeps a future per publish; that is right for an agent, but a load generator
must cost far less than the server it measures (2,000 subscribers at 100
events/s is 200,000 frames a second to read). This module is an
``asyncio.Protocol``: ``data_received`` splits the bytes into frames in one
loop and hands every complete text message of that read to a callback at
once, with the time the bytes arrived. Sending is ``transport.write`` of
frames that may be built (and masked) long before, by another process.

Only what a benchmark needs: no extensions (no compression is offered), text
messages, ping/pong and close. Client frames are masked as the RFC requires
(with websockets' C ``apply_mask``); the mask comes from a fast PRNG, since it
protects proxies' caches and is no secret.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import random
import socket
import struct
import time
from collections.abc import Callable
from urllib.parse import urlsplit

try:  # C speedups ship with websockets' wheels
    from websockets.speedups import apply_mask as _apply_mask
except ImportError:  # pragma: no cover - pure-Python fallback
    from websockets.utils import apply_mask as _apply_mask

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_rand = random.Random(os.urandom(16))

OnMessages = Callable[[list[bytes], float], None]


def encode_frame(data: bytes | str, opcode: int = 0x1) -> bytes:
    """One final, masked client frame carrying ``data`` (text by default)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    n = len(data)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    mask = _rand.randbytes(4)
    return head + mask + _apply_mask(data, mask)


class WsError(Exception):
    """The handshake failed or the peer broke the protocol."""


class WsClient(asyncio.Protocol):
    """One WebSocket connection. ``on_messages(texts, t)`` gets every whole text message of one read."""

    def __init__(self, on_messages: OnMessages | None = None) -> None:
        self.on_messages: OnMessages = on_messages or (lambda texts, t: None)
        self.transport: asyncio.Transport | None = None
        self.open: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.close_code: int | None = None
        self.close_reason = ""
        self._handshake: bytes | None = None  # the request's key until the answer came
        self._buf = bytearray()
        self._fragments: list[bytes] = []
        self.bytes_received = 0

    # ------------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        t = time.monotonic()
        self.bytes_received += len(data)
        buf = self._buf
        buf += data
        if self._handshake is not None:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > 65536:
                    self._fail(WsError("handshake answer too long"))
                return
            head = bytes(buf[:end]).decode("latin-1")
            del buf[: end + 4]
            try:
                self._check_handshake(head)
            except WsError as e:
                self._fail(e)
                return
            self._handshake = None
            if not self.open.done():
                self.open.set_result(None)
        texts: list[bytes] = []
        pos = 0
        n = len(buf)
        while n - pos >= 2:
            b0 = buf[pos]
            b1 = buf[pos + 1]
            ln = b1 & 0x7F
            hl = 2
            if ln == 126:
                if n - pos < 4:
                    break
                ln = (buf[pos + 2] << 8) | buf[pos + 3]
                hl = 4
            elif ln == 127:
                if n - pos < 10:
                    break
                ln = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                hl = 10
            if b1 & 0x80:
                self._fail(WsError("the server masked a frame"))
                return
            if n - pos < hl + ln:
                break
            payload = bytes(buf[pos + hl : pos + hl + ln])
            pos += hl + ln
            opcode = b0 & 0x0F
            fin = b0 & 0x80
            if opcode in (0x1, 0x2):
                if fin:
                    texts.append(payload)
                else:
                    self._fragments = [payload]
            elif opcode == 0x0:
                self._fragments.append(payload)
                if fin:
                    texts.append(b"".join(self._fragments))
                    self._fragments = []
            elif opcode == 0x9:  # ping
                self.write(encode_frame(payload, 0xA))
            elif opcode == 0x8:  # close
                if len(payload) >= 2:
                    self.close_code = int.from_bytes(payload[:2], "big")
                    self.close_reason = payload[2:].decode("utf-8", "replace")
                else:
                    self.close_code = 1005
                self.write(encode_frame(payload[:2], 0x8))
                if self.transport is not None:
                    self.transport.close()
                break
        if pos:
            del buf[:pos]
        if texts:
            self.on_messages(texts, t)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.open.done():
            self.open.set_exception(WsError(f"connection lost before the handshake: {exc}"))
        if not self.closed.done():
            self.closed.set_result(None)

    # ------------------------------------------------------------------ use

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def send_text(self, text: str | bytes) -> None:
        self.write(encode_frame(text))

    def close(self) -> None:
        """Close politely (a close frame), then the socket."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(encode_frame(struct.pack("!H", 1000), 0x8))
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    @property
    def is_closed(self) -> bool:
        return self.closed.done()

    # ------------------------------------------------------------------ internals

    def _request(self, host: str, port: int, path: str) -> bytes:
        key = base64.b64encode(os.urandom(16))
        self._handshake = key
        return (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key.decode()}\r\n"
            "Sec-WebSocket-Version: 13\r\nUser-Agent: forum-bench\r\n\r\n"
        ).encode("latin-1")

    def _check_handshake(self, head: str) -> None:
        lines = head.split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or parts[1] != "101":
            raise WsError(f"handshake refused: {lines[0]!r}")
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        assert self._handshake is not None
        want = base64.b64encode(hashlib.sha1(self._handshake + _GUID).digest()).decode()
        if headers.get("sec-websocket-accept") != want:
            raise WsError("handshake: wrong Sec-WebSocket-Accept")

    def _fail(self, exc: Exception) -> None:
        if not self.open.done():
            self.open.set_exception(exc)
        if self.transport is not None:
            self.transport.abort()


async def connect(
    url: str,
    on_messages: OnMessages | None = None,
    *,
    time_limit: float = 30.0,
    rcvbuf: int | None = None,
    protocol: WsClient | None = None,
) -> WsClient:
    """Open a connection to ``url`` (ws://host:port/path); ``rcvbuf`` shrinks the socket's receive buffer.

    ``protocol``: a (subclass) instance to connect instead of a new :class:`WsClient`.
    """
    parts = urlsplit(url)
    if parts.scheme != "ws":
        raise ValueError(f"the bench speaks plain ws:// only, not {url!r}")
    host = parts.hostname or "127.0.0.1"
    port = parts.port or 80
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    loop = asyncio.get_running_loop()
    proto = protocol if protocol is not None else WsClient(on_messages)
    sock = None
    if rcvbuf is not None:
        info = (await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM))[0]
        sock = socket.socket(info[0], socket.SOCK_STREAM)
        sock.setsockopt(
            socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf
        )  # before connect: sets the window
        sock.setblocking(False)
        await loop.sock_connect(sock, info[4])
        await loop.create_connection(lambda: proto, sock=sock)
    else:
        await loop.create_connection(lambda: proto, host, port)
    assert proto.transport is not None
    sock_obj = proto.transport.get_extra_info("socket")
    if sock_obj is not None:
        sock_obj.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    proto.write(proto._request(host, port, path))
    async with asyncio.timeout(time_limit):
        await proto.open
    return proto

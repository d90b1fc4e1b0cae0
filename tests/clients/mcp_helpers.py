"""Helpers for the ``forum mcp`` tests: a recording TCP relay, a seed scanner, a profile writer."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import zlib
from pathlib import Path

from clients.sdk.keys import Key
from forum.protocol.identity import b58encode


class Relay:
    """A TCP relay on 127.0.0.1 that records every byte in each direction."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.connections: list[
            tuple[bytearray, bytearray]
        ] = []  # (client -> target, target -> client)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Relay:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            with contextlib.suppress(BaseException):
                await t

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        up_log, down_log = bytearray(), bytearray()
        self.connections.append((up_log, down_log))

        async def pump(
            src: asyncio.StreamReader, dst: asyncio.StreamWriter, log: bytearray
        ) -> None:
            try:
                while data := await src.read(65536):
                    log += data
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    dst.close()

        for coro in (pump(reader, up_w, up_log), pump(up_r, writer, down_log)):
            task = asyncio.create_task(coro)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @property
    def upstream(self) -> bytes:
        """Everything clients sent, WebSocket frames unmasked and inflated."""
        return b"".join(decode_ws(bytes(up)) for up, _ in self.connections)

    @property
    def downstream(self) -> bytes:
        """Everything the target sent back (WebSocket frames decoded when unmasked and uncompressed)."""
        return b"".join(decode_ws(bytes(down), server_side=True) for _, down in self.connections)


def decode_ws(raw: bytes, *, server_side: bool = False) -> bytes:
    """The bytes of one connection with its WebSocket frames decoded (handshake kept as is).

    Client frames are masked (RFC 6455) and may be compressed (permessage-deflate,
    RFC 7692): scanning the raw bytes for a secret would find nothing even if it
    were there, so the frames are unmasked and inflated first.
    """
    head, sep, rest = raw.partition(b"\r\n\r\n")
    if not sep or b"websocket" not in head.lower():
        return raw
    out = bytearray(head + sep)
    inflate = zlib.decompressobj(-15)
    message = bytearray()
    compressed = False
    i = 0
    while i + 2 <= len(rest):
        b0, b1 = rest[i], rest[i + 1]
        fin, rsv1, opcode = b0 & 0x80, b0 & 0x40, b0 & 0x0F
        masked, length = b1 & 0x80, b1 & 0x7F
        i += 2
        if length == 126:
            length = int.from_bytes(rest[i : i + 2], "big")
            i += 2
        elif length == 127:
            length = int.from_bytes(rest[i : i + 8], "big")
            i += 8
        mask = rest[i : i + 4] if masked else b""
        i += 4 if masked else 0
        payload = rest[i : i + length]
        i += length
        if masked:
            payload = bytes(c ^ mask[j % 4] for j, c in enumerate(payload))
        if opcode in (1, 2):
            message, compressed = bytearray(payload), bool(rsv1)
        elif opcode == 0:
            message += payload
        else:
            out += payload
            continue
        if fin:
            out += (
                inflate.decompress(bytes(message) + b"\x00\x00\xff\xff") if compressed else message
            )
            out += b"\n"
    return bytes(out)


def seed_forms(key: Key) -> list[bytes]:
    """The key's seed written every common way: hex (both cases), base64 (both alphabets), base58."""
    seed = key.seed
    forms = {
        seed.hex(),
        seed.hex().upper(),
        base64.b64encode(seed).decode(),
        base64.b64encode(seed).decode().rstrip("="),
        base64.urlsafe_b64encode(seed).decode().rstrip("="),
        b58encode(seed),
        b58encode(bytes(key.signing_key)),  # seed + public key, as some tools print it
        base64.b64encode(bytes(key.signing_key)).decode().rstrip("="),
    }
    return [f.encode() for f in forms]


def assert_no_seed(key: Key, *blobs: bytes) -> None:
    for blob in blobs:
        for form in seed_forms(key):
            assert form not in blob, "the key's seed appeared on the wire"


def write_profile(
    path: Path, *, unasked: list[str], confirm: list[str], per_hour: dict[str, int] | None = None
) -> Path:
    budgets = "\n".join(f"{k} = {v}" for k, v in (per_hour or {}).items())
    path.write_text(
        f"""name = "Test owner (private)"

[[criteria]]
ref = "affordability"
weight = 2.0
title = "Affordability"
description = "What it costs the households that pay."
policies = ["Look at who pays."]

[[criteria]]
ref = "fairness"
weight = 1.0
title = "Fairness"
description = "Who gains and who loses."

[guard]
unasked = {unasked!r}
confirm = {confirm!r}
[guard.per_hour]
{budgets}
""".replace("'", '"'),
        "utf-8",
    )
    path.chmod(0o600)
    return path

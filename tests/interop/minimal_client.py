"""A minimal Mycelium client written from docs/protocol.md alone.

It deliberately shares no code with the forum: it imports only the standard
library, PyNaCl (Ed25519) and ``websockets``. Everything the protocol asks of
a client is implemented here from the text of the specification:

* base58btc (Bitcoin alphabet) and did:key for Ed25519 (multicodec 0xed 0x01);
* compact JSON encoding of the payload (no whitespace, non-ASCII as is);
* the signature over ``b"mycelium/event/v1\\n" + payload`` (base64url, no padding);
* the event id (hex SHA-256 of the payload bytes) and its proof of work;
* the WebSocket frames (PUBLISH, SUBSCRIBE, UNSUBSCRIBE / OK, EVENT, LIVE,
  CLOSED, NOTICE) with OKs matched to publishes by event id.

If this module ever needs to import ``forum`` or ``clients`` to work, the
specification is incomplete.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import math
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import nacl.signing
from websockets.asyncio.client import ClientConnection, connect

# --------------------------------------------------------------------------- base58btc

B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def b58encode(data: bytes) -> str:
    """Bitcoin-alphabet base58: big-endian integer in base 58, each leading 0x00 byte as '1'."""
    n = int.from_bytes(data, "big")
    digits = []
    while n > 0:
        n, r = divmod(n, 58)
        digits.append(B58_ALPHABET[r])
    zeros = len(data) - len(data.lstrip(b"\x00"))
    return "1" * zeros + "".join(reversed(digits))


def b58decode(text: str) -> bytes:
    n = 0
    for ch in text:
        idx = B58_ALPHABET.find(ch)
        if idx < 0:
            raise ValueError(f"not base58: {ch!r}")
        n = n * 58 + idx
    zeros = len(text) - len(text.lstrip("1"))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\x00" * zeros + body


# --------------------------------------------------------------------------- did:key

ED25519_MULTICODEC = bytes([0xED, 0x01])
DID_PREFIX = "did:key:z"


def did_from_public_key(public_key: bytes) -> str:
    assert len(public_key) == 32
    return DID_PREFIX + b58encode(ED25519_MULTICODEC + public_key)


def public_key_from_did(did: str) -> bytes:
    if not did.startswith(DID_PREFIX) or len(did) != len(DID_PREFIX) + 47:
        raise ValueError("not an Ed25519 did:key")
    raw = b58decode(did[len(DID_PREFIX) :])
    if len(raw) != 34 or raw[:2] != ED25519_MULTICODEC:
        raise ValueError("not an Ed25519 did:key")
    return raw[2:]


# --------------------------------------------------------------------------- compact JSON

_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _encode_str(s: str) -> str:
    out = ['"']
    for ch in s:
        if ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)  # non-ASCII stays as is (UTF-8 on the wire)
    out.append('"')
    return "".join(out)


def encode_json(value: Any) -> str:
    """Compact JSON: no insignificant whitespace, object keys in insertion order."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        if abs(value) > 2**53:
            raise ValueError("integer outside +-2^53")
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("NaN and infinities are not JSON")
        return repr(value)  # shortest text that round-trips
    if isinstance(value, str):
        return _encode_str(value)
    if isinstance(value, Mapping):
        return "{" + ",".join(_encode_str(k) + ":" + encode_json(v) for k, v in value.items()) + "}"
    if isinstance(value, Sequence):
        return "[" + ",".join(encode_json(v) for v in value) + "]"
    raise TypeError(f"cannot encode {type(value).__name__}")


# --------------------------------------------------------------------------- events

SIGNATURE_PREFIX = b"mycelium/event/v1\n"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def event_id(payload: str) -> str:
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def leading_zero_bits(hex_id: str) -> int:
    bits = 0
    for ch in hex_id:
        v = int(ch, 16)
        if v == 0:
            bits += 4
            continue
        bits += 4 - v.bit_length()
        break
    return bits


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Agent:
    """An Ed25519 key and its did:key."""

    def __init__(self, seed: bytes) -> None:
        self.key = nacl.signing.SigningKey(seed)
        self.public_key = bytes(self.key.verify_key)
        self.did = did_from_public_key(self.public_key)

    def sign(self, payload: str) -> str:
        return b64url(self.key.sign(SIGNATURE_PREFIX + payload.encode("utf-8")).signature)

    def payload(self, kind: str, body: Mapping[str, Any], created_at: int | None = None, nonce: str | None = None) -> str:
        obj: dict[str, Any] = {
            "v": 1,
            "kind": kind,
            "author": self.did,
            "created_at": now_ms() if created_at is None else created_at,
            "body": dict(body),
        }
        if nonce is not None:
            obj["nonce"] = nonce
        return encode_json(obj)

    def envelope(self, kind: str, body: Mapping[str, Any], created_at: int | None = None, nonce: str | None = None) -> dict[str, str]:
        p = self.payload(kind, body, created_at, nonce)
        return {"payload": p, "sig": self.sign(p)}

    def mine(self, kind: str, body: Mapping[str, Any], bits: int, created_at: int | None = None) -> dict[str, str]:
        """Vary the nonce until the id has ``bits`` leading zero bits."""
        created = now_ms() if created_at is None else created_at
        n = 0
        while True:
            p = self.payload(kind, body, created, nonce=str(n))
            if leading_zero_bits(event_id(p)) >= bits:
                return {"payload": p, "sig": self.sign(p)}
            n += 1


def envelope_id(envelope: Mapping[str, str]) -> str:
    return event_id(envelope["payload"])


# --------------------------------------------------------------------------- WebSocket session


@dataclass(frozen=True)
class Ok:
    id: str
    accepted: bool
    message: str

    @property
    def reason(self) -> str:
        return self.message.split(":", 1)[0] if self.message else ""


class Session:
    """One WebSocket connection. A reader task routes frames:

    OK → the future of the PUBLISH with that id; EVENT/LIVE/CLOSED/SCORES →
    the queue of their sub_id; NOTICE → ``notices``.
    """

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.pending: dict[str, list[asyncio.Future[Ok]]] = defaultdict(list)
        self.subs: dict[str, asyncio.Queue[list[Any]]] = defaultdict(asyncio.Queue)
        self.notices: asyncio.Queue[str] = asyncio.Queue()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, url: str) -> Session:
        return cls(await connect(url, max_size=None))

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
        try:
            await self._reader
        except asyncio.CancelledError:
            pass

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _read(self) -> None:
        async for text in self.ws:
            frame = json.loads(text)
            kind = frame[0]
            if kind == "OK":
                waiters = self.pending.get(frame[1])
                if waiters:
                    fut = waiters.pop(0)
                    if not fut.done():
                        fut.set_result(Ok(frame[1], frame[2], frame[3]))
            elif kind in ("EVENT", "LIVE", "CLOSED", "SCORES"):
                self.subs[frame[1]].put_nowait(frame)
            elif kind == "NOTICE":
                self.notices.put_nowait(frame[1])
            # any other frame type: ignored, as the specification asks

    async def send_raw(self, frame: Any) -> None:
        await self.ws.send(frame if isinstance(frame, str) else encode_json(frame))

    async def publish(self, envelope: Mapping[str, Any], *, expect_id: str | None = None) -> Ok:
        """Send PUBLISH and wait for the OK with the envelope's id."""
        eid = expect_id if expect_id is not None else envelope_id(envelope)
        fut: asyncio.Future[Ok] = asyncio.get_running_loop().create_future()
        self.pending[eid].append(fut)
        await self.send_raw(["PUBLISH", envelope])
        return await fut

    async def subscribe(self, sub_id: str, filt: Mapping[str, Any]) -> asyncio.Queue[list[Any]]:
        await self.send_raw(["SUBSCRIBE", sub_id, filt])
        return self.subs[sub_id]

    async def unsubscribe(self, sub_id: str) -> None:
        await self.send_raw(["UNSUBSCRIBE", sub_id])

    async def next_frame(self, sub_id: str) -> list[Any]:
        return await self.subs[sub_id].get()

    async def until_live(self, sub_id: str) -> tuple[list[tuple[int, dict[str, str]]], int]:
        """Collect the stored EVENTs of a subscription up to its LIVE: ([(seq, envelope)], live_seq)."""
        events = []
        while True:
            frame = await self.next_frame(sub_id)
            if frame[0] == "EVENT":
                events.append((frame[2], frame[3]))
            elif frame[0] == "LIVE":
                return events, frame[2]
            else:
                raise AssertionError(f"unexpected frame before LIVE: {frame}")

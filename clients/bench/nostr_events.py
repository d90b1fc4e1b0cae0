"""Nostr events (NIP-01) for ``forum bench ingest --versus nostr-relay``; also a script.

This file imports only the standard library, so the relay's own virtualenv
runs it as a script (``RELAY_PYTHON nostr_events.py '{"count": ...}'``) and
signs with the relay's library, coincurve (libsecp256k1's BIP-340), which the
project itself never installs. It prints one event a line, compact JSON in
NIP-01's field order. The project imports the same functions to size the
events and to check a sample with its own pure-Python BIP-340
(:mod:`clients.bench.bip340`).

NIP-01: ``id`` is the hex sha256 of the UTF-8 JSON array
``[0, pubkey, created_at, kind, tags, content]`` with no whitespace and
non-ASCII characters verbatim (what ``json.dumps(..., separators=(",", ":"),
ensure_ascii=False)`` writes; the relay's aionostr serializes the same way);
``sig`` is the BIP-340 Schnorr signature of the 32 id bytes by the x-only
``pubkey``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Iterator
from typing import Any

KIND_TEXT_NOTE = 1
"""Kind 1 (a text note): stored as is, never replaced (no replaceable-event lookups)."""
_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

Signer = Callable[[bytes, bytes], bytes]
"""sign(msg32, seckey32) -> 64-byte BIP-340 signature."""
PublicKeyOf = Callable[[bytes], bytes]
"""public_key(seckey32) -> 32-byte x-only public key."""


def serialize(pubkey: str, created_at: int, kind: int, tags: list[list[str]], content: str) -> bytes:
    """NIP-01's serialization, the bytes an event id is the hash of."""
    data = [0, pubkey, created_at, kind, tags, content]
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def event_id(pubkey: str, created_at: int, kind: int, tags: list[list[str]], content: str) -> str:
    return hashlib.sha256(serialize(pubkey, created_at, kind, tags, content)).hexdigest()


def encode(event: dict[str, Any]) -> str:
    """An event as compact JSON, fields in NIP-01's order."""
    ordered = {k: event[k] for k in ("id", "pubkey", "created_at", "kind", "tags", "content", "sig")}
    return json.dumps(ordered, separators=(",", ":"), ensure_ascii=False)


def derive_secret(secret: str, n: int) -> bytes:
    """Author ``n``'s 32-byte secret key, reproducible from the run's secret."""
    h = hashlib.sha256(f"{secret}/nostr-author-{n}".encode()).digest()
    while not 1 <= int.from_bytes(h, "big") < _N:  # probability ~2^-128
        h = hashlib.sha256(h).digest()
    return h


def content_for(i: int, tag: str, size: int) -> str:
    """Event ``i``'s text, exactly ``size`` ASCII characters (the forum bench's phrasing)."""
    return (f"Load test event {i} of run {tag}. " * (2 + size // 24))[:size]


def empty_event_bytes(created_at: int) -> int:
    """Length of an event's JSON with empty content (ids, keys and signature are fixed-width hex)."""
    return len(
        encode(
            {
                "id": "0" * 64,
                "pubkey": "0" * 64,
                "created_at": created_at,
                "kind": KIND_TEXT_NOTE,
                "tags": [],
                "content": "",
                "sig": "0" * 128,
            }
        )
    )


def build(
    count: int,
    *,
    authors: int,
    secret: str,
    content_bytes: int,
    created_at: int,
    tag: str,
    sign: Signer,
    public_key: PublicKeyOf,
    first: int = 0,
) -> Iterator[dict[str, Any]]:
    """``count`` signed kind-1 events, author ``i % authors``, no tags."""
    keys: dict[int, tuple[bytes, str]] = {}
    for i in range(first, first + count):
        a = i % max(1, authors)
        if a not in keys:
            sk = derive_secret(secret, a)
            keys[a] = (sk, public_key(sk).hex())
        sk, pub = keys[a]
        content = content_for(i, tag, content_bytes)
        eid = event_id(pub, created_at, KIND_TEXT_NOTE, [], content)
        sig = sign(bytes.fromhex(eid), sk).hex()
        yield {
            "id": eid,
            "pubkey": pub,
            "created_at": created_at,
            "kind": KIND_TEXT_NOTE,
            "tags": [],
            "content": content,
            "sig": sig,
        }


def _coincurve() -> tuple[Signer, PublicKeyOf]:
    """Signing with coincurve (libsecp256k1), as aionostr does; only in the relay's virtualenv."""
    import importlib

    cc = importlib.import_module("coincurve")

    def sign(msg: bytes, sk: bytes) -> bytes:
        return bytes(cc.PrivateKey(sk).sign_schnorr(msg, None))  # aux randomness from the OS

    def public_key(sk: bytes) -> bytes:
        return bytes(cc.PrivateKey(sk).public_key_xonly.format())

    return sign, public_key


def main(argv: list[str]) -> int:
    """``nostr_events.py '{"count", "first", "authors", "secret", "content_bytes", "created_at", "tag"}'``."""
    args = json.loads(argv[1])
    sign, public_key = _coincurve()
    out = sys.stdout
    for ev in build(
        int(args["count"]),
        authors=int(args["authors"]),
        secret=str(args["secret"]),
        content_bytes=int(args["content_bytes"]),
        created_at=int(args["created_at"]),
        tag=str(args["tag"]),
        sign=sign,
        public_key=public_key,
        first=int(args.get("first", 0)),
    ):
        out.write(encode(ev) + "\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

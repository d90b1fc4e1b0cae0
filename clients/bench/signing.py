"""Pre-signed events: signing is the client's cost, so it happens before any clock starts.

Events are signed by a pool of processes (about 20 µs per Ed25519 signature
per core, plus the payload's JSON), with reproducible keys
(:func:`clients.sdk.keys.derive_key` of a per-run secret), payloads built by
:func:`clients.sdk.builders.encode_payload` (byte for byte what the builders
sign) and each chunk's first event checked with the forum's own
:func:`clients.sdk.builders.check_envelope`. Every event comes back as its id,
its signature and a finished, masked WebSocket frame ``["PUBLISH", envelope]``
that a connection only has to write.
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from clients.bench.wsclient import encode_frame
from clients.sdk.builders import check_envelope, encode_payload, now_ms
from clients.sdk.keys import Key, derive_key

KINDS = ("proposal", "rating", "agent", "rating-pairs")
_CHUNK = 4000

_keys: dict[tuple[str, int], Key] = {}


def bench_key(secret: str, n: int) -> Key:
    """Author number ``n`` of a run (cached per process)."""
    k = _keys.get((secret, n))
    if k is None:
        k = _keys[(secret, n)] = derive_key(secret, f"bench-author-{n}")
    return k


@dataclass
class Presigned:
    ids: list[str] = field(default_factory=list)
    sigs: list[str] = field(default_factory=list)
    frames: list[bytes] = field(default_factory=list)
    envelopes: list[bytes] = field(default_factory=list)  # compact envelope JSON (for HTTP batches)

    def __len__(self) -> int:
        return len(self.ids)

    def extend(self, other: Presigned) -> None:
        self.ids += other.ids
        self.sigs += other.sigs
        self.frames += other.frames
        self.envelopes += other.envelopes


def body_for(
    kind: str, i: int, tag: str, text_bytes: int, authors: int, secret: str
) -> dict[str, Any]:
    if kind == "proposal":
        text = (f"Load test event {i} of run {tag}. " * (1 + text_bytes // 32))[:text_bytes]
        return {"title": f"bench {tag} #{i}", "summary": "", "text": text, "tags": ["bench"]}
    if kind == "rating":
        target = bench_key(secret, (i + 1) % max(authors, 2)).did
        return {
            "target": target,
            "score": ((i % 201) - 100) / 100.0,
            "criteria": {},
            "note": f"bench {tag} #{i}",
        }
    if kind == "rating-pairs":  # rater i % A rates every other author once before any twice
        a = max(authors, 2)
        target = bench_key(secret, (i % a + 1 + (i // a) % (a - 1)) % a).did
        return {"target": target, "score": ((i * 7919) % 201 - 100) / 100.0, "criteria": {}}
    if kind == "agent":
        return {"name": f"bench {tag} #{i}", "about": ("x" * text_bytes)[:2000]}
    raise ValueError(f"unknown bench kind {kind!r} (one of {', '.join(KINDS)})")


def sign_range(
    start: int, count: int, kind: str, authors: int, text_bytes: int, tag: str, secret: str
) -> Presigned:
    out = Presigned()
    created = now_ms()
    for i in range(start, start + count):
        key = bench_key(secret, i % authors)
        payload = encode_payload(
            "rating" if kind == "rating-pairs" else kind,
            key.did,
            created,
            body_for(kind, i, tag, text_bytes, authors, secret),
        )
        sig = key.sign(payload)
        env = {"payload": payload, "sig": sig}
        if i == start:
            check_envelope(env)  # the forum's own stateless checks, once per chunk
        env_json = orjson.dumps(env)
        out.ids.append(hashlib.sha256(payload.encode()).hexdigest())
        out.sigs.append(sig)
        out.frames.append(encode_frame(b'["PUBLISH",' + env_json + b"]"))
        out.envelopes.append(env_json)
    return out


def _task(args: tuple[Any, ...]) -> Presigned:
    return sign_range(*args)


def presign(
    count: int,
    *,
    kind: str = "proposal",
    authors: int = 1000,
    text_bytes: int = 200,
    tag: str | None = None,
    secret: str | None = None,
    procs: int | None = None,
    progress: Callable[[int], None] | None = None,
    first: int = 0,
) -> Presigned:
    """``count`` signed events by ``authors`` keys, signed by ``procs`` processes (default: every core)."""
    if kind not in KINDS:
        raise ValueError(f"unknown bench kind {kind!r} (one of {', '.join(KINDS)})")
    tag = tag or os.urandom(4).hex()
    secret = secret or f"forum-bench-{tag}"
    authors = max(1, authors)
    tasks = [
        (first + s, min(_CHUNK, count - s), kind, authors, text_bytes, tag, secret)
        for s in range(0, count, _CHUNK)
    ]
    out = Presigned()
    procs = procs or os.cpu_count() or 1
    if procs <= 1 or count <= _CHUNK:
        for t in tasks:
            out.extend(_task(t))
            if progress:
                progress(t[1])
        return out
    with mp.get_context("fork").Pool(procs) as pool:
        for part in pool.imap(_task, tasks):
            out.extend(part)
            if progress:
                progress(len(part))
    return out


def signature_check_us(text_bytes: int = 200, rounds: int = 2000) -> float:
    """CPU µs of one Ed25519 check (libsodium, as the forum calls it) on this machine now.

    ``forum bench ingest`` subtracts it from the forum's CPU per event to report
    the cost of everything else (``server_excluding_signature``).
    """
    import time

    import nacl.bindings

    from clients.sdk.keys import derive_key as _derive

    key = _derive("signature-calibration", "k")
    message = b"x" * (text_bytes + 300)
    signed = key.signing_key.sign(message)
    public = bytes(key.signing_key.verify_key)
    t0 = time.process_time()
    for _ in range(rounds):
        nacl.bindings.crypto_sign_open(bytes(signed), public)
    return (time.process_time() - t0) * 1e6 / rounds

"""Parse and verify published events off the event loop, on every core.

A PUBLISH frame reaches the ingest path as raw text, a line of a batch body
as raw bytes. Worker processes parse them (strict JSON), check the envelope, payload schema, clock skew and proof of
work, and check the Ed25519 signature, then hand back compact tuples the
writer turns into :class:`~forum.protocol.events.Event` objects with no
further parsing. The event loop only moves strings and tuples; nothing of
the per-event work holds its GIL.

``workers = 0`` runs the same function in one thread of this process (tests,
tiny deployments): PyNaCl releases the GIL for the signature, the rest holds it.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

from forum.protocol import strictjson, wire
from forum.protocol.errors import ProtocolError
from forum.protocol.events import Event, Limits, event_id, verify_envelope

# What a worker hands back for one input, tag first:
#   ("e", id, kind, author, created_at, body, payload, sig, nonce, refs, tags)  a verified event
#   ("r", id, reason_message)                                                  an envelope refused
#   ("n", message)                                                             a frame that is not a valid message
Checked = tuple[Any, ...]


def envelope_id(envelope: Any) -> str:
    """The id to report for an envelope, even an invalid one ("" if it has no payload string)."""
    if isinstance(envelope, dict) and isinstance(envelope.get("payload"), str):
        try:
            return event_id(envelope["payload"])
        except UnicodeEncodeError:
            return ""
    return ""


def _check_one(item: Any, limits: Limits, now_ms: int) -> Checked:
    if isinstance(item, bytes):  # one line of a batch body: an envelope's JSON
        try:
            item = strictjson.loads(item, what="envelope")
        except ProtocolError as e:
            return ("n", e.message)
    elif isinstance(item, str):  # a whole ["PUBLISH", envelope] frame
        try:
            msg = wire.parse_message(item)
        except ProtocolError as e:
            return ("n", e.message)
        if not isinstance(msg, wire.Publish):
            return ("n", "invalid: expected a PUBLISH frame")
        item = msg.envelope
    try:
        ev = verify_envelope(item, limits=limits, now_ms=now_ms)
    except ProtocolError as e:
        return ("r", envelope_id(item), e.reason, e.message)
    return ("e", ev.id, ev.kind, ev.author, ev.created_at, ev.body, ev.payload, ev.sig, ev.nonce, ev.refs, ev.tags)


def check_chunk(items: Sequence[Any], limits: Limits, now_ms: int) -> list[Checked]:
    """Check raw PUBLISH frames (str), batch lines (bytes) or envelopes (dict); one result per input, in order."""
    return [_check_one(item, limits, now_ms) for item in items]


def event_of(checked: Checked) -> Event:
    """The :class:`Event` of an ``"e"`` result (no parsing: the fields were checked by a worker)."""
    return Event(*checked[1:])


def _warm() -> int:
    return os.getpid()


class VerifyPool:
    """``workers`` processes (or one thread when 0) running :func:`check_chunk`."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.executor: Executor
        if workers > 0:
            # spawn: the server process has threads (aiosqlite, the scores engine); forking it is unsafe.
            self.executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
        else:
            self.executor = ThreadPoolExecutor(1, thread_name_prefix="verify")
        self.parallel = max(workers, 1)

    def warm(self) -> list[asyncio.Future[int]]:
        """Start every worker process now (in the background) rather than on the first event."""
        loop = asyncio.get_running_loop()
        return [loop.run_in_executor(self.executor, _warm) for _ in range(self.parallel)]

    async def check(self, items: Sequence[Any], limits: Limits, now_ms: int) -> list[Checked]:
        loop = asyncio.get_running_loop()
        if len(items) < 8 or self.parallel == 1:
            chunks = [items]
        else:
            step = -(-len(items) // self.parallel)
            chunks = [items[i : i + step] for i in range(0, len(items), step)]
        parts = await asyncio.gather(*(loop.run_in_executor(self.executor, check_chunk, c, limits, now_ms) for c in chunks))
        return [r for part in parts for r in part]

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)

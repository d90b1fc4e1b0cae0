"""The WebSocket wire protocol: JSON arrays in text frames (pure).

Client to server::

    ["PUBLISH", envelope]
    ["SUBSCRIBE", sub_id, filter]
    ["UNSUBSCRIBE", sub_id]

Server to client::

    ["OK", id, accepted, "reason: text"]
    ["EVENT", sub_id, seq, envelope]
    ["LIVE", sub_id, last_seq]
    ["CLOSED", sub_id, "reason: text"]
    ["NOTICE", "text"]
    ["SCORES", sub_id, scores]

Outgoing frames are built as text once; ``EVENT`` frames splice the
envelope's JSON, serialized once per event, between per-subscription parts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from forum.protocol import ids, strictjson
from forum.protocol.errors import ProtocolError, invalid
from forum.protocol.filters import Filter, parse_filter

_sub_id = re.compile(r"^[\x21-\x7e]{1,64}$")


@dataclass(frozen=True, slots=True)
class Publish:
    envelope: Any


@dataclass(frozen=True, slots=True)
class Subscribe:
    sub_id: str
    filter: Filter
    scores: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    sub_id: str


@dataclass(frozen=True, slots=True)
class BadSubscribe:
    """A SUBSCRIBE whose sub_id is fine but whose filter is not: answered with CLOSED."""

    sub_id: str
    error: ProtocolError


Message = Publish | Subscribe | Unsubscribe | BadSubscribe


def _sub(value: Any) -> str:
    if not isinstance(value, str) or not _sub_id.fullmatch(value):
        raise invalid("sub_id must be 1 to 64 printable ASCII characters without spaces")
    return value


def parse_scores_targets(value: Any) -> tuple[str, ...]:
    """The ``scores`` field of a SUBSCRIBE filter: a list of targets (ids or did:keys), or ``["*"]``."""
    if not isinstance(value, list) or not value or len(value) > 1000:
        raise invalid("filter scores must be a list of 1 to 1000 targets")
    for t in value:
        if not isinstance(t, str) or not (
            t == "*" or ids.TARGET.fullmatch(t)
        ):
            raise invalid("filter scores entries must be event ids, did:keys or \"*\"")
    return tuple(value)


def parse_message(text: str | bytes) -> Message:
    """Parse one client frame; raises ProtocolError with the reason to report."""
    msg = strictjson.loads(text, what="frame")
    if not isinstance(msg, list) or not msg or not isinstance(msg[0], str):
        raise invalid("a frame must be a JSON array starting with a message type")
    kind = msg[0]
    if kind == "PUBLISH":
        if len(msg) != 2:
            raise invalid("PUBLISH takes exactly one envelope")
        return Publish(msg[1])
    if kind == "SUBSCRIBE":
        if len(msg) != 3:
            raise invalid("SUBSCRIBE takes a sub_id and one filter")
        sub_id = _sub(msg[1])
        raw = msg[2]
        scores = None
        try:
            if isinstance(raw, dict) and "scores" in raw:
                raw = dict(raw)
                scores = parse_scores_targets(raw.pop("scores"))
                if not raw:
                    # A scores-only subscription carries no events.
                    return Subscribe(sub_id, Filter(ids=frozenset()), scores)
            return Subscribe(sub_id, parse_filter(raw), scores)
        except ProtocolError as e:
            return BadSubscribe(sub_id, e)
    if kind == "UNSUBSCRIBE":
        if len(msg) != 2:
            raise invalid("UNSUBSCRIBE takes exactly one sub_id")
        return Unsubscribe(_sub(msg[1]))
    raise invalid(f"unknown message type {kind[:20]!r}")


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def ok(event_id: str, accepted: bool, message: str = "") -> str:
    return _dumps(["OK", event_id, accepted, message])


def event(sub_id_json: str, seq: int, envelope_json: str) -> str:
    """``sub_id_json`` is the sub_id already serialized (done once per subscription)."""
    return f'["EVENT",{sub_id_json},{seq},{envelope_json}]'


def event_prefix(sub_id_json: str) -> str:
    """What every EVENT frame of one subscription starts with: ``event = event_prefix + event_tail``."""
    return f'["EVENT",{sub_id_json},'


def event_tail(seq: int, envelope_json: str) -> str:
    """What an event's EVENT frame ends with, the same for every subscription (built once per event)."""
    return f"{seq},{envelope_json}]"


def live(sub_id: str, last_seq: int) -> str:
    return _dumps(["LIVE", sub_id, last_seq])


def closed(sub_id: str, error: ProtocolError | str) -> str:
    return _dumps(["CLOSED", sub_id, error.message if isinstance(error, ProtocolError) else error])


def notice(text: str) -> str:
    return _dumps(["NOTICE", text])


def scores(sub_id: str, payload: Any) -> str:
    return _dumps(["SCORES", sub_id, payload])

"""Build, sign and check events, byte for byte as the protocol specifies.

The payload is compact JSON (orjson: no spaces, UTF-8 as is) with the keys in
the order ``v, kind, author, created_at, body`` and, when present, ``nonce``;
each builder below also fixes the order of its body's fields (the order the
protocol documents them in). The signature covers
``b"mycelium/event/v1\\n" + payload``, the id is the SHA-256 of the payload.

Every event is checked with the forum's own :func:`forum.protocol.events.verify_envelope`
(and the forum's default :class:`~forum.protocol.events.Limits`) before it is handed
back, so an event the forum would refuse raises the very
:class:`~forum.protocol.errors.ProtocolError` the forum would send, and nothing is
duplicated here. The checks that need the log (a rating's target exists, an
outcome's author has a community profile, ...) can only happen on the forum.

Proof of work: :func:`mine_pow` varies the ``nonce`` until the id has the
requested number of leading zero bits.
"""

from __future__ import annotations

import hashlib
import itertools
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from clients.sdk.keys import Key
from forum.protocol.events import PROTOCOL_VERSION, Event, Limits, validate_body, verify_envelope

__all__ = [
    "DEFAULT_LIMITS",
    "SignedEvent",
    "adoption",
    "agent",
    "amendment",
    "check_envelope",
    "community",
    "criterion",
    "encode_payload",
    "metric",
    "mine_pow",
    "now_ms",
    "outcome",
    "proposal",
    "rating",
    "reply",
    "retraction",
    "sign_event",
]

DEFAULT_LIMITS: Final = Limits()
"""The limits a forum enforces unless configured otherwise."""

MAX_NONCE_LENGTH: Final = 64


def now_ms() -> int:
    """The current time in milliseconds since the epoch (what ``created_at`` holds)."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class SignedEvent:
    """A signed, locally verified event, ready to publish.

    ``envelope`` is what goes on the wire; ``event`` is the forum's parsed view.
    """

    event: Event

    @property
    def id(self) -> str:
        return self.event.id

    @property
    def payload(self) -> str:
        return self.event.payload

    @property
    def sig(self) -> str:
        return self.event.sig

    @property
    def kind(self) -> str:
        return self.event.kind

    @property
    def body(self) -> dict[str, Any]:
        return self.event.body

    @property
    def envelope(self) -> dict[str, str]:
        """``{"payload": ..., "sig": ...}``."""
        return self.event.envelope()

    def envelope_json(self) -> str:
        """The envelope as compact JSON text (one line of an NDJSON batch)."""
        return self.event.envelope_json()


def check_envelope(
    envelope: Any, *, limits: Limits = DEFAULT_LIMITS, now: int | None = None
) -> Event:
    """Run the forum's stateless checks on an envelope; raises the forum's ProtocolError."""
    return verify_envelope(envelope, limits=limits, now_ms=now_ms() if now is None else now)


def encode_payload(
    kind: str, author: str, created_at: int, body: Mapping[str, Any], nonce: str | None = None
) -> str:
    """The exact payload text: compact JSON, top-level keys in protocol order."""
    obj: dict[str, Any] = {
        "v": PROTOCOL_VERSION,
        "kind": kind,
        "author": author,
        "created_at": created_at,
        "body": body,
    }
    if nonce is not None:
        obj["nonce"] = nonce
    return orjson.dumps(obj).decode("utf-8")


def sign_event(
    key: Key,
    kind: str,
    body: Mapping[str, Any],
    created_at: int | None = None,
    nonce: str | None = None,
    *,
    limits: Limits = DEFAULT_LIMITS,
) -> SignedEvent:
    """Sign ``body`` as an event of ``kind`` by ``key`` and check it as the forum would.

    ``body`` is serialized in its own key order (the kind builders below fix
    it); ``created_at`` defaults to now. Raises :class:`forum.protocol.errors.ProtocolError`
    if the forum would refuse the event.
    """
    payload = encode_payload(
        kind, key.did, now_ms() if created_at is None else created_at, body, nonce
    )
    envelope = {"payload": payload, "sig": key.sign(payload)}
    return SignedEvent(check_envelope(envelope, limits=limits))


def mine_pow(
    key: Key,
    kind: str,
    body: Mapping[str, Any],
    bits: int,
    created_at: int | None = None,
    *,
    start: int = 0,
    max_tries: int | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> SignedEvent:
    """Sign an event whose id has at least ``bits`` leading zero bits.

    Tries nonces ``start``, ``start + 1``, ... (as lowercase hex); each try costs
    one SHA-256, so ``bits`` = 20 takes about a million. Raises
    :class:`TimeoutError` after ``max_tries`` unsuccessful nonces.
    """
    if not 0 <= bits <= 256:
        raise ValueError("bits must be between 0 and 256")
    validate_body(kind, dict(body))  # fail before mining, not after
    created = now_ms() if created_at is None else created_at
    # The nonce is the last key, so the payload is a fixed head, the nonce, and '"}'.
    unmined = encode_payload(kind, key.did, created, body)
    prefix = hashlib.sha256((unmined[:-1] + ',"nonce":"').encode("utf-8"))
    tail_bytes = b'"}'
    shift = 256 - bits
    counter = itertools.count(start) if max_tries is None else iter(range(start, start + max_tries))
    for n in counter:
        nonce = format(n, "x")
        h = prefix.copy()
        h.update(nonce.encode("ascii"))
        h.update(tail_bytes)
        if int.from_bytes(h.digest(), "big") >> shift == 0:
            return sign_event(key, kind, body, created, nonce, limits=limits)
    raise TimeoutError(f"no nonce gave {bits} leading zero bits in {max_tries} tries")


# --------------------------------------------------------------------------- kinds


def _compact(**fields: Any) -> dict[str, Any]:
    """The body in the given order, without the optional fields left as None."""
    return {k: v for k, v in fields.items() if v is not None}


def _sign(
    key: Key, kind: str, body: dict[str, Any], created_at: int | None, pow_bits: int
) -> SignedEvent:
    if pow_bits:
        return mine_pow(key, kind, body, pow_bits, created_at)
    return sign_event(key, kind, body, created_at)


def agent(
    key: Key,
    *,
    name: str,
    about: str,
    owner: str | None = None,
    created_at: int | None = None,
    pow_bits: int = 0,
) -> SignedEvent:
    """An agent profile: who this agent is and (optionally) the human it acts for."""
    return _sign(key, "agent", _compact(name=name, about=about, owner=owner), created_at, pow_bits)


def community(
    key: Key,
    *,
    name: str,
    about: str,
    place: str | None = None,
    type: str | None = None,
    size: int | None = None,
    region: str | None = None,
    tags: Iterable[str] | None = None,
    created_at: int | None = None,
    pow_bits: int = 0,
) -> SignedEvent:
    """A community profile (needed before the key can publish outcomes and adoptions).

    ``type`` is one of :data:`forum.protocol.events.COMMUNITY_TYPES` or an ``x-`` slug,
    ``size`` the number of members, ``region`` an ISO 3166 code (``DE``, ``DE-BY``).
    """
    body = _compact(
        name=name,
        about=about,
        place=place,
        type=type,
        size=size,
        region=region,
        tags=None if tags is None else list(tags),
    )
    return _sign(key, "community", body, created_at, pow_bits)


def criterion(
    key: Key,
    *,
    title: str,
    description: str,
    policies: Sequence[str] = (),
    created_at: int | None = None,
    pow_bits: int = 0,
) -> SignedEvent:
    """A rating criterion: what it measures and the policies raters apply."""
    body = {"title": title, "description": description, "policies": list(policies)}
    return _sign(key, "criterion", body, created_at, pow_bits)


def proposal(
    key: Key,
    *,
    title: str,
    text: str,
    summary: str = "",
    tags: Iterable[str] = (),
    criteria: Iterable[str] | None = None,
    revises: str | None = None,
    accepts: Iterable[str] | None = None,
    forks: str | None = None,
    created_at: int | None = None,
    pow_bits: int = 0,
) -> SignedEvent:
    """A proposal; ``criteria`` are criterion slugs or ids, ``revises`` a previous proposal's id.

    A revision takes in amendments of the proposal it revises with ``accepts`` (their
    ids); a new proposal forked from someone's proposal or amendment names it in ``forks``.
    """
    body = _compact(
        title=title,
        summary=summary,
        text=text,
        tags=list(tags),
        criteria=None if criteria is None else list(criteria),
        revises=revises,
        accepts=None if accepts is None else list(accepts),
        forks=forks,
    )
    return _sign(key, "proposal", body, created_at, pow_bits)


def metric(
    name: str,
    *,
    unit: str,
    baseline: float,
    observed: float | None,
    n: int,
    higher_is_better: bool,
) -> dict[str, Any]:
    """One measured metric of an outcome, fields in protocol order."""
    return {
        "name": name,
        "unit": unit,
        "baseline": _number(baseline),
        "observed": None if observed is None else _number(observed),
        "n": n,
        "higher_is_better": higher_is_better,
    }


def outcome(
    key: Key,
    *,
    proposal: str,
    status: str,
    period_start: str,
    period_end: str | None = None,
    verdict: str | None = None,
    metrics: Iterable[Mapping[str, Any]] = (),
    summary: str = "",
    evidence: Iterable[str] = (),
    adoption: str | None = None,
    milestone: str | None = None,
    created_at: int | None = None,
    pow_bits: int = 0,
) -> SignedEvent:
    """What happened when a community tried a proposal (the key needs a community profile).

    ``adoption`` is the id of the community's adoption this report measures; ``milestone``
    (planned, started, first-results, completed) needs it.
    """
    body: dict[str, Any] = {
        "proposal": proposal,
        "status": status,
        "verdict": verdict,
        "period": _compact(start=period_start, end=period_end),
        "metrics": [_ordered_metric(m) for m in metrics],
        "summary": summary,
        "evidence": list(evidence),
    }
    body.update(_compact(adoption=adoption, milestone=milestone))
    return _sign(key, "outcome", body, created_at, pow_bits)


def rating(
    key: Key,
    *,
    target: str,
    score: float,
    criteria: Mapping[str, float] | None = None,
    confidence: float | None = None,
    note: str | None = None,
    created_at: int | None = None,
    pow_bits: int = 0,
) -> SignedEvent:
    """A rating in [-1, 1] of an event (by id) or an agent (by did), optionally per criterion."""
    body = _compact(
        target=target,
        score=_number(score),
        criteria={k: _number(v) for k, v in (criteria or {}).items()},
        confidence=None if confidence is None else _number(confidence),
        note=note,
    )
    return _sign(key, "rating", body, created_at, pow_bits)


def retraction(
    key: Key,
    *,
    target: str,
    reason: str | None = None,
    created_at: int | None = None,
    pow_bits: int = 0,
) -> SignedEvent:
    """Retract one of the key's own events."""
    return _sign(key, "retraction", _compact(target=target, reason=reason), created_at, pow_bits)


# --- governance kinds (issue 13)


def reply(
    key: Key,
    *,
    target: str,
    stance: str,
    text: str,
    quote: str | None = None,
    criteria: Iterable[str] | None = None,
    created_at: int | None = None,
    pow_bits: int = 0,
) -> SignedEvent:
    """An argument about any event (replies nest): ``stance`` is support, oppose, question,
    evidence or neutral; ``text`` is Markdown; ``quote`` the passage answered."""
    body = _compact(
        target=target,
        stance=stance,
        text=text,
        quote=quote,
        criteria=None if criteria is None else list(criteria),
    )
    return _sign(key, "reply", body, created_at, pow_bits)


def amendment(
    key: Key,
    *,
    proposal: str,
    reason: str,
    text: str | None = None,
    diff: str | None = None,
    title: str | None = None,
    created_at: int | None = None,
    pow_bits: int = 0,
) -> SignedEvent:
    """A change to someone else's proposal: exactly one of the whole new ``text`` or a ``diff``."""
    body = _compact(proposal=proposal, title=title, text=text, diff=diff, reason=reason)
    return _sign(key, "amendment", body, created_at, pow_bits)


def adoption(
    key: Key,
    *,
    proposal: str,
    start: str,
    action: str = "adopt",
    params: Mapping[str, str] | None = None,
    note: str | None = None,
    created_at: int | None = None,
    pow_bits: int = 0,
) -> SignedEvent:
    """A community adopts (``action="adopt"``) or drops a proposal version from ``start``
    (a date), with its local ``params`` (the key needs a community profile)."""
    body = _compact(
        proposal=proposal,
        action=action,
        start=start,
        params=None if params is None else dict(params),
        note=note,
    )
    return _sign(key, "adoption", body, created_at, pow_bits)


def _number(value: Any) -> Any:
    """Ints become floats (``1`` -> ``1.0``) so a score always serializes as a float; other values pass through."""
    return float(value) if type(value) is int else value


def _ordered_metric(m: Mapping[str, Any]) -> dict[str, Any]:
    """A metric mapping in protocol order; unknown fields are kept (at the end) for the forum's check to report."""
    order = ("name", "unit", "baseline", "observed", "n", "higher_is_better")
    out = {k: m[k] for k in order if k in m}
    for name in ("baseline", "observed"):
        if name in out:
            out[name] = _number(out[name])
    out.update({k: v for k, v in m.items() if k not in out})
    return out

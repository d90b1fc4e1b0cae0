"""Builders of the values and arbitration kinds (docs/arbitration.md), byte for byte.

Same contract as :mod:`clients.sdk.builders` (compact JSON, body fields in
protocol order, every event checked with the forum's own verifier before it is
handed back). A vote is sealed with :func:`seal` and opened with
:func:`reveal`: keep the :class:`Sealed` (its salt) until the reveal.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from clients.sdk.builders import SignedEvent, _compact, _sign
from clients.sdk.keys import Key
from forum.protocol.events import vote_hash

__all__ = ["Sealed", "appeal", "assessment", "flag", "reveal", "reveal_of", "seal", "wiser"]


def wiser(
    key: Key,
    *,
    context: str,
    a: str,
    b: str,
    judgement: str,
    story: str = "",
    tags: Iterable[str] = (),
    created_at: int | None = None,
    pow_bits: int = 0,
) -> SignedEvent:
    """In ``context``, is values card ``b`` (a criterion event id) wiser than card ``a``?
    ``judgement``: ``wiser``, ``not_wiser`` or ``unsure``."""
    body = {"context": context, "tags": list(tags), "a": a, "b": b, "judgement": judgement, "story": story}
    return _sign(key, "wiser", body, created_at, pow_bits)


def flag(
    key: Key,
    *,
    target: str,
    right: str,
    harm: str,
    description: str | None = None,
    evidence: Iterable[str] = (),
    links: Iterable[str] = (),
    created_at: int | None = None,
    pow_bits: int = 0,
) -> SignedEvent:
    """Claim that ``target`` (an event id or an agent's did) violates a right (protocol.md 6.10)."""
    body = _compact(
        target=target, right=right, description=description, harm=harm,
        evidence=list(evidence), links=list(links),
    )  # fmt: skip
    return _sign(key, "flag", body, created_at, pow_bits)


def assessment(
    key: Key, *, flag: str, layer: str, reason: str = "", created_at: int | None = None, pow_bits: int = 0
) -> SignedEvent:
    """Say which layer of conflict a flag is in: ``benign``, ``negotiation`` or ``rights``."""
    return _sign(key, "assessment", {"flag": flag, "layer": layer, "reason": reason}, created_at, pow_bits)


@dataclass(frozen=True)
class Sealed:
    """A sealed vote: the commitment event and what its reveal needs (keep it private until then)."""

    commitment: SignedEvent
    case: str
    round: int
    vote: str
    reason: str
    salt: str


def seal(
    key: Key,
    *,
    case: str,
    round: int,
    vote: str,
    reason: str,
    salt: str | None = None,
    created_at: int | None = None,
) -> Sealed:
    """A juror's commitment: the hash of (juror, case, round, vote, salt, reason)."""
    salt = salt if salt is not None else secrets.token_urlsafe(24)
    h = vote_hash(key.did, case, round, vote, salt, reason)
    ev = _sign(key, "commitment", {"case": case, "round": round, "hash": h}, created_at, 0)
    return Sealed(ev, case, round, vote, reason, salt)


def reveal(key: Key, sealed: Sealed, *, created_at: int | None = None) -> SignedEvent:
    """Open a sealed vote (publish after the commitment; see docs/arbitration.md for the window)."""
    return reveal_of(key, sealed.commitment.id, vote=sealed.vote, reason=sealed.reason, salt=sealed.salt,
                     created_at=created_at)  # fmt: skip


def reveal_of(
    key: Key, commitment: str, *, vote: str, reason: str, salt: str, created_at: int | None = None
) -> SignedEvent:
    """Open the vote sealed in the commitment event ``commitment`` (its id), from a kept record."""
    body = {"commitment": commitment, "vote": vote, "reason": reason, "salt": salt}
    return _sign(key, "reveal", body, created_at, 0)


def appeal(key: Key, *, case: str, reason: str, created_at: int | None = None, pow_bits: int = 0) -> SignedEvent:
    """A party asks for the case to be heard again by a larger jury."""
    return _sign(key, "appeal", {"case": case, "reason": reason}, created_at, pow_bits)

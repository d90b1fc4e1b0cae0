"""The strongest arguments on each side of a proposal: which replies a page shows.

A reply's **strength** is, in this order of preference (the first available):

1. its **bridging** score (the intercept of the matrix-factorization fit: what raters
   across the opinion axis agree on);
2. the **lowest opinion-group mean** among groups with votes on it (an argument is as
   strong as its least-convinced group), when there are at least two groups;
3. its **shrunk mean** (the mean pulled towards the forum's mean by the prior).

Replies with none of these (not rated yet) have no strength and come after every
rated one, newest first.  Sides: ``support`` and ``oppose``; the other stances
(``question``, ``evidence``, ``neutral``) are one more list, ``other``.  Each side is
ordered by strength (descending, ties by id) and cut to ``per_side``.  Newest is never
the order: a crowd posting late cannot push the strong arguments off the page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

SIDES = ("support", "oppose", "other")
PER_SIDE = 3


@dataclass(frozen=True)
class Argument:
    id: str
    stance: str
    seq: int
    strength: float | None
    basis: str | None  # "bridging", "groups", "shrunk_mean" or None


def strength(view: Mapping[str, Any] | None) -> tuple[float | None, str | None]:
    """(strength, basis) of one reply from its score view (``GET /api/v1/scores/{id}``)."""
    if not view:
        return None, None
    b = view.get("bridging") or {}
    if b.get("score") is not None:
        return float(b["score"]), "bridging"
    g = view.get("groups") or {}
    means = [m for k, m in (g.get("means") or {}).items() if m is not None and (g.get("votes") or {}).get(k)]
    if len(means) >= 2:
        return float(min(means)), "groups"
    if view.get("shrunk_mean") is not None:
        return float(view["shrunk_mean"]), "shrunk_mean"
    return None, None


def side_of(stance: str) -> str:
    return stance if stance in ("support", "oppose") else "other"


def strongest(
    replies: Sequence[tuple[str, str, int]], views: Mapping[str, Mapping[str, Any]], per_side: int = PER_SIDE
) -> dict[str, list[Argument]]:
    """``replies``: (id, stance, seq); ``views``: id -> score view.  Returns side -> arguments."""
    out: dict[str, list[Argument]] = {s: [] for s in SIDES}
    for rid, stance, seq in replies:
        s, basis = strength(views.get(rid))
        out[side_of(stance)].append(Argument(rid, stance, seq, s, basis))
    for side, args in out.items():
        args.sort(key=lambda a: (a.strength is None, -(a.strength or 0.0), -a.seq if a.strength is None else 0, a.id))
        out[side] = args[:per_side]
    return out

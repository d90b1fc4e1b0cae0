"""The short reason an owner's agent publishes with a rating (the rating's ``note``).

Written only from what the rating itself publishes (the overall score and the
per-criterion scores) and the order of the owner's criteria by how much each
moved the overall score (``weight * criterion score``). It never quotes the
owner's feedback notes, their profile notes or any number of their weights:
a reader learns which criteria drove the score and in which direction, which
is what the criterion scores beside it already show.

    reason(0.42, {"affordability": 0.61, "wellbeing": -0.3}, {"affordability": 0.7, "wellbeing": 0.3})
    -> "+0.42 overall, mostly for affordability (+0.61); against: wellbeing (-0.30)."
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

MAX_NAMED: Final = 3
"""At most this many criteria are named."""
NEGLIGIBLE: Final = 0.01
"""Criteria moving the overall score by less than this (``|weight * score|``) are not named."""
NEUTRAL: Final = 0.05
"""Criterion scores within this of 0 count as neither for nor against."""


def _named(ref: str, score: float) -> str:
    return f"{ref} ({score:+.2f})"


def reason(score: float, criteria: Mapping[str, float], weights: Mapping[str, float]) -> str:
    """A one-line reason: the criteria that drove ``score``, strongest first (see module doc)."""
    ranked = sorted(
        (ref for ref in criteria if ref in weights and abs(weights[ref] * criteria[ref]) >= NEGLIGIBLE),
        key=lambda ref: (-abs(weights[ref] * criteria[ref]), ref),
    )[:MAX_NAMED]
    pro = [_named(r, criteria[r]) for r in ranked if criteria[r] > NEUTRAL]
    con = [_named(r, criteria[r]) for r in ranked if criteria[r] < -NEUTRAL]
    parts = []
    lead, rest = (pro, con) if score >= 0 else (con, pro)
    if lead:
        parts.append(f"mostly {'for' if score >= 0 else 'against'} {', '.join(lead)}")
    if rest:
        parts.append(f"{'against' if score >= 0 else 'for'}: {', '.join(rest)}")
    if not parts:
        return f"{score:+.2f} overall; no criterion of the owner's weighs much either way."
    return f"{score:+.2f} overall, " + "; ".join(parts) + "."

"""The "communities like yours" section of the cheap scores document (pure, no I/O).

The ledger supplies community profiles, adoptions and latest outcome reports;
:mod:`raters.similarity` computes neighbours and like-yours summaries. The
section depends only on events that change ``Ledger.gov_seq`` (profiles,
adoptions, outcomes, retractions), so a document reuses the previous section
while that seq is unchanged. ``forum verify`` recomputes it from the export.
"""

from __future__ import annotations

from typing import Any

from forum.scores.ledger import Ledger
from raters.similarity import VERDICT_VALUE, Community, like_yours_document


def similarity_inputs(ledger: Ledger) -> tuple[list[Community], dict[str, dict[str, tuple[str, str | None]]]]:
    reports = ledger.latest_reports()
    results: dict[str, dict[str, str]] = {}
    for proposal, by in reports.items():
        for community, (_status, verdict) in by.items():
            if verdict is not None and verdict in VERDICT_VALUE:
                results.setdefault(community, {})[proposal] = verdict
    adopted = ledger.ever_adopted()
    communities = []
    for did in ledger.community_dids():
        p = ledger.community_profile(did) or {}
        communities.append(
            Community(
                did=did,
                type=p.get("type"),
                size=p.get("size"),
                region=p.get("region"),
                tags=tuple(p.get("tags") or ()),
                adopted=frozenset(adopted.get(did, ())),
                results=results.get(did, {}),
            )
        )
    return communities, reports


def communities_section(ledger: Ledger, previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """``{"gov_seq", "algorithm", "version", "neighbours", "like_yours"}`` for the ledger."""
    if previous is not None and previous.get("gov_seq") == ledger.gov_seq:
        return previous
    communities, reports = similarity_inputs(ledger)
    return {"gov_seq": ledger.gov_seq, **like_yours_document(communities, reports)}


def community_document(
    ledger: Ledger, cheap: dict[str, Any] | None, did: str, fitted: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """One community as ``GET /api/v1/communities/{did}`` serves it: current profile,
    rule set (its current adoptions), neighbours and, per proposal, the like-yours
    summary beside the global one. None if ``did`` has no community profile."""
    profile = ledger.community_profile(did)
    if profile is None:
        return None
    section = (cheap or {}).get("communities") or {}
    outcomes = (fitted or {}).get("outcomes") or {}  # the global summaries live in the fitted document
    like = {
        p: {"like_yours": row[did], "global": _global(outcomes.get(p))}
        for p, row in sorted((section.get("like_yours") or {}).items())
        if did in row
    }
    return {
        "as_of_seq": (cheap or {}).get("as_of_seq", 0),
        "community": did,
        "profile": profile,
        "rule_set": [
            {"proposal": p, "adoption": eid, "start": body["start"], "params": body.get("params") or {}}
            for p, (eid, body) in ledger.rule_set(did).items()
        ],
        "neighbours": [{"community": d, "similarity": s} for d, s in (section.get("neighbours") or {}).get(did, [])],
        "like_yours": like,
    }


def _global(summary: dict[str, Any] | None) -> dict[str, Any] | None:
    if summary is None:
        return None
    return {k: summary[k] for k in ("communities", "completed", "successes", "success_rate")}

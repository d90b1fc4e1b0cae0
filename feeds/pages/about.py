"""How the scores are computed, in plain words."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from feeds.pages.base import render
from raters import aggregate, bridging, standing


def _score_constants() -> dict[str, float]:
    """The raters' constants the explanation quotes."""
    return {
        "prior_strength": aggregate.PRIOR_STRENGTH,
        "min_raters": bridging.MIN_RATERS,
        "support_level": bridging.SUPPORT_LEVEL,
        "reject_level": bridging.REJECT_LEVEL,
        "split_level": bridging.SPLIT_LEVEL,
        "min_decided": standing.MIN_DECIDED,
        "newcomer_budget": standing.NEWCOMER_BUDGET,
        "newcomer_weight": standing.NEWCOMER_WEIGHT,
    }


async def about_scores(request: Request) -> Response:
    statuses = [(s, bridging.STATUS_SENTENCES[s]) for s in bridging.STATUSES]
    return render(request, "about_scores.html", {"nav": "about", "k": _score_constants(), "statuses": statuses})


def routes() -> list[BaseRoute]:
    return [Route("/about/scores", about_scores, methods=["GET"])]

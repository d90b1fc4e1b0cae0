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
        "bridging_threshold": bridging.BRIDGING_THRESHOLD,
        "factor_threshold": bridging.FACTOR_THRESHOLD,
        "min_decided": standing.MIN_DECIDED,
        "new_rater_weight": standing.NEW_RATER_WEIGHT,
    }


async def about_scores(request: Request) -> Response:
    return render(request, "about_scores.html", {"nav": "about", "k": _score_constants()})


def routes() -> list[BaseRoute]:
    return [Route("/about/scores", about_scores, methods=["GET"])]

"""How the scores are computed, in plain words."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from feeds.pages.base import render


def _score_constants() -> dict[str, float]:
    """The raters' constants the explanation quotes (their defaults if raters/ is absent)."""
    k = {
        "prior_strength": 5.0,
        "min_raters": 5.0,
        "bridging_threshold": 0.40,
        "factor_threshold": 0.50,
        "min_decided": 5,
        "new_rater_weight": 0.0,
    }
    try:
        from raters import aggregate, bridging, standing

        k.update(
            prior_strength=aggregate.PRIOR_STRENGTH,
            min_raters=bridging.MIN_RATERS,
            bridging_threshold=bridging.BRIDGING_THRESHOLD,
            factor_threshold=bridging.FACTOR_THRESHOLD,
            min_decided=standing.MIN_DECIDED,
            new_rater_weight=standing.NEW_RATER_WEIGHT,
        )
    except Exception:  # pragma: no cover - raters/ is part of the same package
        pass
    return k


async def about_scores(request: Request) -> Response:
    return render(request, "about_scores.html", {"nav": "about", "k": _score_constants()})


def routes() -> list[BaseRoute]:
    return [Route("/about/scores", about_scores, methods=["GET"])]

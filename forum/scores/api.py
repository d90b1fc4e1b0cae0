"""HTTP reads of the published scores: /api/v1/scores..., /api/v1/groups."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from forum.protocol.filters import DECIMAL
from forum.responses import JSON, error
from forum.scores.communities import community_document
from forum.scores.engine import SORT_KEYS, ScoresEngine


def _engine(request: Request) -> ScoresEngine:
    engine: ScoresEngine = request.app.state.scores  # the app's lifespan always starts one
    return engine


def _remedies(request: Request) -> dict[str, Any]:
    """Targets under an arbitration remedy in force (docs/arbitration.md 3.5): target -> remedy."""
    values = getattr(request.app.state, "values", None)
    return values.remedies() if values is not None else {}


async def score(request: Request) -> Response:
    target = request.path_params["target"]
    view = _engine(request).get(target)
    if view is None:
        return error("not-found", f"no scores for {target[:80]!r} yet")
    if remedy := _remedies(request).get(target):
        view = {**view, "remedy": remedy}  # the label of an upheld verdict
    return JSON(view)


async def history(request: Request) -> Response:
    """A target's rating count and mean over log time: ``{"target", "as_of_seq", "points": [[seq, count, mean], ...]}``."""
    target = request.path_params["target"]
    engine = _engine(request)
    points = engine.history_of(target)
    if not points:
        return error("not-found", f"no ratings of {target[:80]!r} yet")
    return JSON({"target": target, "as_of_seq": engine.ledger.head, "points": [list(p) for p in points]})


LISTING_PARAMS = frozenset({"sort", "order", "kind", "limit", "offset", "include_remedied"})
LISTED_KINDS = ("proposal", "outcome", "agent", "community", "criterion", "reply", "amendment", "adoption")


async def listing(request: Request) -> Response:
    q = request.query_params
    if unknown := set(q.keys()) - LISTING_PARAMS:
        return error("invalid", f"unknown query parameter {sorted(unknown)[0][:40]!r}")
    sort = q.get("sort", "shrunk_mean")
    if sort not in SORT_KEYS:
        return error("invalid", f"sort must be one of {', '.join(SORT_KEYS)}")
    order = q.get("order", "desc")
    if order not in ("asc", "desc"):
        return error("invalid", "order must be asc or desc")
    kind = q.get("kind")
    if kind is not None and kind not in LISTED_KINDS:
        return error("invalid", f"kind must be one of {', '.join(LISTED_KINDS)}")
    raw_limit, raw_offset = q.get("limit", "50"), q.get("offset", "0")
    if not (DECIMAL.fullmatch(raw_limit) and DECIMAL.fullmatch(raw_offset)):
        return error("invalid", "limit and offset must be non-negative integers")
    limit, offset = int(raw_limit), int(raw_offset)
    if not 1 <= limit <= 1000 or offset < 0:
        return error("invalid", "limit must be 1..1000 and offset >= 0")
    include = q.get("include_remedied", "false")
    if include not in ("true", "false"):
        return error("invalid", "include_remedied must be true or false")
    engine = _engine(request)
    remedied = {} if include == "true" else _remedies(request)
    if remedied:  # targets under a remedy leave the default listing (never the log)
        wanted = engine.listing(sort, kind, order == "desc", offset + limit + len(remedied), 0)
        items = [v for v in wanted if v["target"] not in remedied][offset : offset + limit]
    else:
        items = engine.listing(sort, kind, order == "desc", limit, offset)
    fitted = engine.fitted
    return JSON(
        {
            "as_of_seq": engine.as_of_seq,
            "ranked_as_of_seq": engine.ranked_as_of_seq(sort, kind, order == "desc"),
            "fit_as_of_seq": fitted["fit_as_of_seq"] if fitted else 0,
            "sort": sort,
            "order": order,
            "scores": items,
        }
    )


async def snapshot(request: Request) -> Response:
    return Response(await _engine(request).serialized("snapshot"), media_type="application/json")


async def groups(request: Request) -> Response:
    return Response(await _engine(request).serialized("groups"), media_type="application/json")


async def community(request: Request) -> Response:
    did = request.path_params["did"]
    engine = _engine(request)
    doc = community_document(engine.ledger, engine.cheap, did, engine.fitted) if engine else None
    if doc is None:
        return error("not-found", f"no community profile for {did[:80]!r}")
    return JSON(doc)


routes = [
    Route("/api/v1/scores", listing, methods=["GET"]),
    Route("/api/v1/scores:snapshot", snapshot, methods=["GET"]),
    Route("/api/v1/scores/{target}", score, methods=["GET"]),
    Route("/api/v1/scores/{target}/history", history, methods=["GET"]),
    Route("/api/v1/groups", groups, methods=["GET"]),
    Route("/api/v1/communities/{did}", community, methods=["GET"]),
]

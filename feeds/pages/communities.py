"""A community's page: its profile and every experiment it reported."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from feeds import queries, syndication
from feeds.logindex import log_index
from feeds.pages.base import (
    DID,
    BadRequest,
    error_page,
    live_context,
    not_found,
    ratings_of,
    render,
    seq_param,
    wants_history,
)
from feeds.reader import reader
from feeds.scorecards import full
from feeds.views import Names, agent_url, community_url, items, prepare


async def community_page(request: Request) -> Response:
    did = request.path_params["did"]
    if not DID.match(did):
        return not_found(request, "community")
    try:
        before, after = seq_param(request, "before"), seq_param(request, "after")
    except BadRequest as e:
        return error_page(request, e.status, "Bad request", e.message)
    names = Names()
    rating_history = wants_history(request)
    names.want(did)

    index = log_index(request)

    def fetch(conn: Any) -> dict[str, Any] | str:
        names.load(conn)
        if "community" not in names.profiles.get(did, {}):
            return "agent" if queries.known_author(conn, did) else "none"
        page = queries.by_author(conn, did, ["outcome"], before=before, after=after, limit=50)
        proposals = prepare(conn, page.items, names)
        latest_ratings = ratings_of(conn, did, rating_history)
        names.want(*(r.event.author for r in latest_ratings))
        names.load(conn)
        return {
            "page": page,
            "proposals": proposals,
            "total": queries.count_by_author(conn, did, "outcome"),
            "experiments": len(index.update(conn).tried_by(did)),
            "latest_ratings": latest_ratings,
        }

    got = await reader(request).run(fetch)
    if got == "agent":
        return RedirectResponse(agent_url(did), status_code=302)
    if not isinstance(got, dict):
        return not_found(request, "community")
    page, total, latest_ratings = got["page"], got["total"], got["latest_ratings"]
    rows = await items(request, page.items, names, got["proposals"])
    scores = await full(request, did)
    prof = names.profiles[did]
    profile = prof["community"]
    info = syndication.community_info(did, profile.event.body["name"])
    return render(
        request,
        "community.html",
        {
            **live_context(request, {"community": did, "kind": "outcome"}, [did]),
            "did": did,
            "profile": profile,
            "agent_profile": prof.get("agent"),
            "items": rows,
            "total": total,
            "experiments": got["experiments"],
            "older": f"{community_url(did)}?before={page.older}" if page.older else None,
            "newer": f"{community_url(did)}?after={page.newer}" if page.newer else None,
            "scores": scores,
            "latest_ratings": latest_ratings,
            "names": names,
            "feed": info,
        },
        feeds=[info],
    )


def routes() -> list[BaseRoute]:
    return [Route("/communities/{did}", community_page, methods=["GET"])]

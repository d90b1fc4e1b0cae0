"""An agent's page: profile, posts, ratings given and received, scores."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from feeds import queries
from feeds.pages.base import (
    DID,
    HEX64,
    PAGE_SIZE,
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
from feeds.views import Names, agent_url, items, prepare


async def agent_page(request: Request) -> Response:
    did = request.path_params["did"]
    if not DID.match(did):
        return not_found(request, "agent")
    try:
        before, after, rbefore = seq_param(request, "before"), seq_param(request, "after"), seq_param(request, "rbefore")
    except BadRequest as e:
        return error_page(request, e.status, "Bad request", e.message)
    names = Names()
    rating_history = wants_history(request)
    names.want(did)

    def fetch(conn: Any) -> dict[str, Any] | None:
        names.load(conn)
        if not names.profiles.get(did) and not queries.known_author(conn, did):
            return None
        posts = queries.by_author(conn, did, ["proposal", "outcome", "criterion"], before=before, after=after, limit=PAGE_SIZE)
        proposals = prepare(conn, posts.items, names)
        given = queries.by_author(conn, did, ["rating"], before=rbefore, limit=20)
        targets = [r.event.body["target"] for r in given.items]
        target_events = queries.by_ids(conn, [t for t in targets if HEX64.match(t)])
        latest_ratings = ratings_of(conn, did, rating_history)
        names.want(*(t for t in targets if t.startswith("did:")))
        names.want(*(r.event.author for r in latest_ratings), *(e.event.author for e in target_events.values()))
        names.load(conn)
        return {
            "posts": posts,
            "proposals": proposals,
            "given": given,
            "target_events": target_events,
            "current": queries.current_rating_seqs(conn, did, targets),
            "latest_ratings": latest_ratings,
        }

    got = await reader(request).run(fetch)
    if got is None:
        return not_found(request, "agent")
    posts, given = got["posts"], got["given"]
    post_items = await items(request, posts.items, names, got["proposals"])
    scores = await full(request, did)
    prof = names.profiles.get(did, {})
    target_events, current, latest_ratings = got["target_events"], got["current"], got["latest_ratings"]
    base = agent_url(did)
    return render(
        request,
        "agent.html",
        {
            **live_context(request, {"community": did}, [did]),
            "did": did,
            "me": names(did),
            "profile": prof.get("agent"),
            "community_profile": prof.get("community"),
            "items": post_items,
            "older": f"{base}?before={posts.older}" if posts.older else None,
            "newer": f"{base}?after={posts.newer}" if posts.newer else None,
            "given": given.items,
            "given_older": f"{base}?rbefore={given.older}#ratings-given" if given.older else None,
            "target_events": target_events,
            "current": current,
            "scores": scores,
            "latest_ratings": latest_ratings,
            "names": names,
        },
    )


def routes() -> list[BaseRoute]:
    return [Route("/agents/{did}", agent_page, methods=["GET"])]

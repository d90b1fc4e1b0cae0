"""An outcome report's page: metrics, summary, evidence, the community's other reports, scores."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from feeds import queries, syndication
from feeds.pages import governance
from feeds.pages.base import (
    HEX64,
    criteria_titles,
    live_context,
    not_found,
    ratings_of,
    render,
    retraction_of,
    wants_history,
)
from feeds.reader import reader
from feeds.scorecards import full
from feeds.views import Names, page_url
from forum.store import Stored


async def outcome_page(request: Request) -> Response:
    oid = request.path_params["id"]
    if not HEX64.match(oid):
        return not_found(request, "outcome report")
    names = Names()
    rating_history = wants_history(request)

    def fetch(conn: Any) -> dict[str, Any] | Stored | None:
        s = queries.by_id(conn, oid)
        if s is None or s.event.kind != "outcome":
            return s
        body = s.event.body
        proposal = queries.by_id(conn, body["proposal"])
        history = queries.outcomes_of(conn, body["proposal"], limit=50, author=s.event.author)
        latest_ratings = ratings_of(conn, oid, rating_history)
        names.want(s.event.author, *(r.event.author for r in latest_ratings))
        if proposal:
            names.want(proposal.event.author)
        names.load(conn)
        return {"s": s, "proposal": proposal, "history": history, "latest_ratings": latest_ratings, "retraction": retraction_of(conn, s)}

    got = await reader(request).run(fetch)
    if got is None:
        return not_found(request, "outcome report")
    if isinstance(got, Stored):
        return RedirectResponse(page_url(got), status_code=301)
    s, body = got["s"], got["s"].event.body
    proposal, history, latest_ratings, retraction = got["proposal"], got["history"], got["latest_ratings"], got["retraction"]
    scores = await full(request, oid)
    crit_titles = await criteria_titles(request, [c.key for c in scores.criteria])
    info = syndication.proposal_info(body["proposal"], proposal.event.body["title"] if proposal else "a proposal")
    gov = await governance.event_extras(request, oid)
    like = await governance.like_this_one(request, s.event.author, body["proposal"])
    if like is not None:
        gov["gov_names"].want(s.event.author)
        await reader(request).run(gov["gov_names"].load)
    return render(
        request,
        "outcome.html",
        {
            **live_context(request, {"about": oid}, [oid]),
            "s": s,
            "body": body,
            "community": names(s.event.author, as_community=True),
            "proposal": proposal,
            "history": [h for h in history if h.event.id != oid],
            "scores": scores,
            "latest_ratings": latest_ratings,
            "retraction": retraction,
            "names": names,
            "crit_titles": crit_titles,
            **gov,
            "like": like,
        },
        feeds=[info],
    )


def routes() -> list[BaseRoute]:
    return [Route("/outcomes/{id}", outcome_page, methods=["GET"])]

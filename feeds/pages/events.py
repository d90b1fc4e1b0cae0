"""Any event by id (redirects to its page; ratings, criteria and retractions have theirs here) and tag addresses."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from feeds import queries
from feeds.pages import governance
from feeds.pages.base import HEX64, SLUG, not_found, render, retraction_of
from feeds.reader import reader
from feeds.scorecards import Scores, full
from feeds.views import Names, page_url, tag_url
from forum.store import Stored


async def event_page(request: Request) -> Response:
    eid = request.path_params["id"]
    if not HEX64.match(eid):
        return not_found(request, "event")
    names = Names()

    def fetch(conn: Any) -> dict[str, Any] | Stored | None:
        s = queries.by_id(conn, eid)
        if s is None or s.event.kind in ("proposal", "outcome", "agent", "community"):
            return s
        ev = s.event
        target: Stored | None = None
        if ev.kind in ("rating", "retraction", "reply") and HEX64.match(ev.body["target"]):
            target = queries.by_id(conn, ev.body["target"])
        elif ev.kind in ("amendment", "adoption"):
            target = queries.by_id(conn, ev.body["proposal"])
        names.want(ev.author)
        if ev.kind == "rating" and ev.body["target"].startswith("did:"):
            names.want(ev.body["target"])
        if target is not None:
            names.want(target.event.author)
        names.load(conn)
        crit_ids = [c for c in (ev.body.get("criteria", {}) if ev.kind == "rating" else ()) if HEX64.match(c)]
        return {"s": s, "target": target, "retraction": retraction_of(conn, s), "crit_found": queries.by_ids(conn, crit_ids)}

    got = await reader(request).run(fetch)
    if got is None:
        return not_found(request, "event")
    if isinstance(got, Stored):
        return RedirectResponse(page_url(got), status_code=301)
    s, target, retraction, crit_found = got["s"], got["target"], got["retraction"], got["crit_found"]
    scores = await full(request, eid) if s.event.kind == "criterion" else Scores()
    crit_titles = {k: str(v.event.body.get("title", k)) for k, v in crit_found.items() if v.event.kind == "criterion"}
    if s.event.kind in ("reply", "amendment"):
        scores = await full(request, eid)
    gov = await governance.event_extras(request, eid)
    return render(
        request,
        "event.html",
        {"s": s, "ev": s.event, "body": s.event.body, "target": target, "names": names, "scores": scores, "retraction": retraction, "crit_titles": crit_titles, **gov},
    )


async def tag_redirect(request: Request) -> Response:
    tag = request.path_params["slug"]
    if not SLUG.match(tag):
        return not_found(request, "tag")
    return RedirectResponse(tag_url(tag), status_code=301)


def routes() -> list[BaseRoute]:
    return [
        Route("/events/{id}", event_page, methods=["GET"]),
        Route("/tags/{slug}", tag_redirect, methods=["GET"]),
    ]

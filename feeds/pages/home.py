"""The home page: newest proposals and outcome reports, its live stream and fragments."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from feeds import live, queries, syndication
from feeds.pages.base import DID, PAGE_SIZE, SLUG, BadRequest, error_page, render, seq_param
from feeds.reader import reader
from feeds.render import environment
from feeds.views import Names, items, prepare
from forum.store import Stored

KIND_PARAM = {"": None, "all": None, "proposal": "proposal", "proposals": "proposal", "outcome": "outcome", "outcomes": "outcome"}


class FeedParams:
    def __init__(self, request: Request) -> None:
        q = request.query_params
        kind = q.get("kind", "")
        if kind not in KIND_PARAM:
            raise BadRequest("kind must be proposal or outcome")
        self.kind = KIND_PARAM[kind]
        self.tag = q.get("tag") or None
        if self.tag is not None:
            self.tag = self.tag.strip().lower()
            if not SLUG.match(self.tag):
                raise BadRequest("a tag is 1 to 40 lowercase letters, digits and dashes")
            self.kind = "proposal"  # tags belong to proposals
        self.community = (q.get("community") or "").strip() or None
        if self.community is not None and not DID.match(self.community):
            raise BadRequest("community must be a did:key")
        self.before = seq_param(request, "before")
        self.after = seq_param(request, "after")
        if self.before is not None and self.after is not None:
            raise BadRequest("give before or after, not both")

    @property
    def kinds(self) -> tuple[str, ...]:
        return (self.kind,) if self.kind else queries.FEED_KINDS

    def query(self, **extra: Any) -> str:
        params = {"kind": self.kind or "", "tag": self.tag or "", "community": self.community or ""}
        params.update({k: str(v) for k, v in extra.items() if v is not None})
        return urlencode({k: v for k, v in params.items() if v})

    def feed_info(self) -> syndication.FeedInfo | None:
        if self.tag:
            return syndication.tag_info(self.tag)
        if self.community:
            return syndication.community_info(self.community, None)
        if self.kind == "proposal":
            return syndication.all_info("proposals")
        if self.kind == "outcome":
            return syndication.all_info("outcomes")
        return None


async def home(request: Request) -> Response:
    try:
        p = FeedParams(request)
    except BadRequest as e:
        return error_page(request, e.status, "Bad request", e.message)
    names = Names()
    if p.community:
        names.want(p.community)

    def fetch(conn: Any) -> tuple[queries.Page, dict[str, Stored]]:
        page = queries.feed(conn, kinds=p.kinds, tag=p.tag, author=p.community, before=p.before, after=p.after, limit=PAGE_SIZE)
        return page, prepare(conn, page.items, names)

    page, proposals = await reader(request).run(fetch)
    rows = await items(request, page.items, names, proposals)
    community = names(p.community, as_community=True) if p.community else None
    info = p.feed_info()
    if info is not None and community is not None and p.community:
        info = syndication.community_info(p.community, community.name)
    first_page = p.before is None and p.after is None
    head = request.app.state.hub.head
    return render(
        request,
        "home.html",
        {
            "nav": "home" if not p.kind else p.kind,
            "items": rows,
            "p": p,
            "community": community,
            "older": f"/?{p.query(before=page.older)}" if page.older else None,
            "newer": f"/?{p.query(after=page.newer)}" if page.newer else None,
            "live": first_page,
            "live_url": f"/live?{p.query()}",
            "fragment_url": f"/fragments/feed?{p.query()}",
            "head": head,
            "feed": info or syndication.all_info("all"),
        },
        feeds=[info] if info else [],
    )


async def fragment(request: Request) -> Response:
    """New items for the live home page: ``after`` is the newest seq the page shows."""
    try:
        p = FeedParams(request)
    except BadRequest as e:
        return Response(e.message, status_code=e.status, media_type="text/plain")
    if p.after is None:
        return Response("after is required", status_code=400, media_type="text/plain")
    names = Names()
    after = p.after

    def fetch(conn: Any) -> tuple[queries.Page, dict[str, Stored]]:
        page = queries.feed(conn, kinds=p.kinds, tag=p.tag, author=p.community, after=after, limit=50)
        return page, prepare(conn, page.items, names)

    page, proposals = await reader(request).run(fetch)
    rows = await items(request, page.items, names, proposals)
    html = environment().get_template("_fragment.html").render({"items": rows})
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


async def live_stream(request: Request) -> Response:
    try:
        p = FeedParams(request)
    except BadRequest as e:
        return Response(e.message, status_code=e.status, media_type="text/plain")
    after = p.after if p.after is not None else request.app.state.hub.head
    return await live.stream(request, live.matcher(p.kinds, p.tag, p.community), after)


def routes() -> list[BaseRoute]:
    return [
        Route("/", home, methods=["GET"]),
        Route("/fragments/feed", fragment, methods=["GET"]),
        Route("/live", live_stream, methods=["GET"]),
    ]

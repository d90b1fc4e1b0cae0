"""The home page: newest proposals and outcome reports, its live stream and fragments."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from feeds import live, queries, ranking, syndication
from feeds.pages.base import DID, HEX64, PAGE_SIZE, SLUG, BadRequest, error_page, render, seq_param
from feeds.pages.directory import pick_page, resolve_community
from feeds.reader import reader
from feeds.render import environment
from feeds.scorecards import badges
from feeds.views import Names, items, prepare
from forum.protocol.events import Event
from forum.store import Stored

HIGHLIGHTS = 5
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
        self.community = (q.get("community") or "").strip()[:200] or None
        self.community_name: str | None = None  # a name to look up (the home page does)
        if self.community is not None and not DID.match(self.community):
            self.community_name, self.community = self.community, None
        self.before = seq_param(request, "before")
        self.after = seq_param(request, "after")
        if self.before is not None and self.after is not None:
            raise BadRequest("give before or after, not both")

    @property
    def kinds(self) -> tuple[str, ...]:
        return (self.kind,) if self.kind else queries.FEED_KINDS

    def query(self, **extra: Any) -> str:
        params = {"kind": self.kind or "", "tag": self.tag or "", "community": self.community or self.community_name or ""}
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
    if p.community_name:
        did, matches = await reader(request).run(lambda conn: resolve_community(conn, p.community_name or ""))
        if did is None:
            return pick_page(request, p.community_name, matches, lambda d: "/?" + p.query(community=d))
        p.community, p.community_name = did, None
    if p.community:
        names.want(p.community)
    first_page = p.before is None and p.after is None
    front = first_page and not (p.kind or p.tag or p.community)
    agree_ids = (await ranking.ranked(request, "agreement"))[:HIGHLIGHTS] if front else ()
    worked_ids = (await ranking.ranked(request, "success"))[:HIGHLIGHTS] if front else ()

    def fetch(conn: Any) -> tuple[queries.Page, dict[str, Stored], list[Stored]]:
        page = queries.feed(conn, kinds=p.kinds, tag=p.tag, author=p.community, before=p.before, after=p.after, limit=PAGE_SIZE)
        found = queries.by_ids(conn, [*agree_ids, *worked_ids])
        extra = [s for s in found.values() if not s.retracted and s.event.kind == "proposal"]
        names.want(*(s.event.author for s in extra))
        return page, prepare(conn, page.items, names), extra

    page, proposals, extra = await reader(request).run(fetch)
    rows = await items(request, page.items, names, proposals)
    extra_items = {it.ev.id: it for it in await items(request, extra, names, {})}
    agree = [extra_items[t] for t in agree_ids if t in extra_items]
    worked = [extra_items[t] for t in worked_ids if t in extra_items]
    community = names(p.community, as_community=True) if p.community else None
    info = p.feed_info()
    if info is not None and community is not None and p.community:
        info = syndication.community_info(p.community, community.name)
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
            "front": front,
            "agree": agree,
            "worked": worked,
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
    if p.community_name:
        return Response("community must be a did:key here", status_code=400, media_type="text/plain")
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
    if p.community_name:
        return Response("community must be a did:key here", status_code=400, media_type="text/plain")
    try:
        watch = watch_param(request)
    except BadRequest as e:
        return Response(e.message, status_code=e.status, media_type="text/plain")
    about = request.query_params.get("about")
    if about is not None and not HEX64.match(about):
        return Response("about must be an event id", status_code=400, media_type="text/plain")
    after = p.after if p.after is not None else request.app.state.hub.head
    matches: Callable[[Event], bool]
    if request.query_params.get("posts") == "0":  # a page that shows only scores (a ranking)
        matches = live.no_posts
    else:
        matches = live.about_matcher(about) if about else live.matcher(p.kinds, p.tag, p.community)
    return await live.stream(request, matches, after, watch)


def watch_param(request: Request) -> list[str]:
    raw = request.query_params.get("watch") or request.query_params.get("t") or ""
    ids = [t for t in raw.replace(" ", ",").split(",") if t]
    if len(ids) > live.MAX_WATCH:
        raise BadRequest(f"watch at most {live.MAX_WATCH} targets")
    if not all(HEX64.match(t) or DID.match(t) for t in ids):
        raise BadRequest("watch event ids or did:keys")
    return ids


async def badges_fragment(request: Request) -> Response:
    """Current score badges of list cards (``t=ID,ID``), for live.js after an ``event: scores``."""
    try:
        ids = [t for t in watch_param(request) if HEX64.match(t)]
    except BadRequest as e:
        return Response(e.message, status_code=e.status, media_type="text/plain")
    found = await reader(request).run(lambda conn: queries.by_ids(conn, ids))
    kinds = {t: s.event.kind for t, s in found.items() if s.event.kind in ("proposal", "outcome")}
    scores = await badges(request, list(kinds), [t for t, k in kinds.items() if k == "proposal"])
    macro = environment().get_template("_macros.html").module.badges  # type: ignore[attr-defined]
    html = "".join(str(macro(scores[t], kinds[t], t)) for t in kinds if t in scores)
    return HTMLResponse(f"<div>{html}</div>", headers={"Cache-Control": "no-store"})


def routes() -> list[BaseRoute]:
    return [
        Route("/", home, methods=["GET"]),
        Route("/fragments/feed", fragment, methods=["GET"]),
        Route("/live", live_stream, methods=["GET"]),
        Route("/fragments/badges", badges_fragment, methods=["GET"]),
    ]

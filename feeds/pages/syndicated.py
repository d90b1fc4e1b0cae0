"""The Atom and JSON feeds: cached per log head, ETag and 304."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from feeds import queries, syndication
from feeds.pages.base import DID, HEX64, SLUG, base_url, not_found
from feeds.reader import reader
from feeds.scorecards import Scores
from feeds.views import Item, Names, prepare
from forum.store import Stored


def _feed_cache(request: Request) -> OrderedDict[tuple[str, str, int], bytes]:
    """This app's recent feed documents: (base URL, path, head) -> bytes."""
    cache = getattr(request.app.state, "feeds_cache", None)
    if cache is None:
        cache = request.app.state.feeds_cache = OrderedDict()
    return cache


async def _feed_response(request: Request, info: syndication.FeedInfo, fmt: str, rows: Sequence[Item], key: tuple[str, str, int]) -> Response:
    base = base_url(request)
    site = request.app.state.settings.name
    body = syndication.atom(info, rows, base, site) if fmt == "atom" else syndication.json_feed(info, rows, base, site)
    cache = _feed_cache(request)
    cache[key] = body
    if len(cache) > 128:
        cache.popitem(last=False)
    media = syndication.ATOM_TYPE if fmt == "atom" else syndication.JSON_TYPE
    return Response(body, media_type=media, headers=_feed_headers(request))


def _cached_feed(request: Request) -> tuple[Response | None, tuple[str, str, int]]:
    """A feed is a function of the log (no scores in it): the same head, the same document."""
    key = (base_url(request), request.url.path, request.app.state.hub.head)
    body = _feed_cache(request).get(key)
    if body is None:
        return None, key
    media = syndication.ATOM_TYPE if key[1].endswith(".atom") else syndication.JSON_TYPE
    return Response(body, media_type=media, headers=_feed_headers(request)), key


def _etag(request: Request) -> str:
    return f'W/"{request.app.state.hub.head}"'


def _feed_headers(request: Request) -> dict[str, str]:
    return {"ETag": _etag(request), "Cache-Control": "public, max-age=60"}


def _not_modified(request: Request) -> Response | None:
    if request.headers.get("if-none-match") == _etag(request):
        return Response(status_code=304, headers=_feed_headers(request))
    return None


def _fmt(request: Request) -> str | None:
    fmt = request.path_params["fmt"]
    return fmt if fmt in ("atom", "json") else None


async def feed_main(request: Request) -> Response:
    name, fmt = request.path_params["name"], _fmt(request)
    if name not in ("all", "proposals", "outcomes") or fmt is None:
        return not_found(request, "feed")
    if nm := _not_modified(request):
        return nm
    cached, key = _cached_feed(request)
    if cached is not None:
        return cached
    kinds = {"all": queries.FEED_KINDS, "proposals": ("proposal",), "outcomes": ("outcome",)}[name]
    rows = await reader(request).run(lambda conn: _feed_items(conn, queries.feed(conn, kinds=kinds, limit=syndication.FEED_LIMIT).items))
    return await _feed_response(request, syndication.all_info(name), fmt, rows, key)


def _feed_items(conn: Any, rows: Sequence[Stored]) -> list[Item]:
    # Feeds carry no scores: name authors and proposals only.
    names = Names()
    proposals = prepare(conn, rows, names)
    return [
        Item(
            s=s,
            author=names(s.event.author, as_community=s.event.kind == "outcome"),
            scores=Scores(),
            proposal=proposals.get(s.event.body["proposal"]) if s.event.kind == "outcome" else None,
        )
        for s in rows
    ]


async def feed_community(request: Request) -> Response:
    did, fmt = request.path_params["did"], _fmt(request)
    if not DID.match(did) or fmt is None:
        return not_found(request, "feed")
    if nm := _not_modified(request):
        return nm
    cached, key = _cached_feed(request)
    if cached is not None:
        return cached
    def fetch(conn: Any) -> tuple[str, list[Item]] | None:
        prof = queries.profiles(conn, [did]).get(did, {})
        if "community" not in prof:
            return None
        page = queries.by_author(conn, did, ["outcome"], limit=syndication.FEED_LIMIT)
        return str(prof["community"].event.body["name"]), _feed_items(conn, page.items)

    got = await reader(request).run(fetch)
    if got is None:
        return not_found(request, "community")
    return await _feed_response(request, syndication.community_info(did, got[0]), fmt, got[1], key)


async def feed_tag(request: Request) -> Response:
    tag, fmt = request.path_params["slug"], _fmt(request)
    if not SLUG.match(tag) or fmt is None:
        return not_found(request, "feed")
    if nm := _not_modified(request):
        return nm
    cached, key = _cached_feed(request)
    if cached is not None:
        return cached
    rows = await reader(request).run(lambda conn: _feed_items(conn, queries.feed(conn, kinds=("proposal",), tag=tag, limit=syndication.FEED_LIMIT).items))
    return await _feed_response(request, syndication.tag_info(tag), fmt, rows, key)


async def feed_proposal(request: Request) -> Response:
    pid, fmt = request.path_params["id"], _fmt(request)
    if not HEX64.match(pid) or fmt is None:
        return not_found(request, "feed")
    if nm := _not_modified(request):
        return nm
    cached, key = _cached_feed(request)
    if cached is not None:
        return cached
    def fetch(conn: Any) -> tuple[Stored, list[Item]] | None:
        s = queries.by_id(conn, pid)
        if s is None or s.event.kind != "proposal":
            return None
        return s, _feed_items(conn, queries.outcomes_of(conn, pid, limit=syndication.FEED_LIMIT))

    got = await reader(request).run(fetch)
    if got is None:
        return not_found(request, "proposal")
    return await _feed_response(request, syndication.proposal_info(pid, got[0].event.body["title"]), fmt, got[1], key)


def routes() -> list[BaseRoute]:
    return [
        Route("/feeds/communities/{did}.{fmt}", feed_community, methods=["GET"]),
        Route("/feeds/tags/{slug}.{fmt}", feed_tag, methods=["GET"]),
        Route("/feeds/proposals/{id}.{fmt}", feed_proposal, methods=["GET"]),
        Route("/feeds/{name}.{fmt}", feed_main, methods=["GET"]),
    ]

"""``/search?q=&kind=&tag=&sort=&page=``: full-text search over proposals, replies and outcome reports
(:mod:`forum.search`: SQLite FTS5 or PostgreSQL full-text search)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from feeds.pages.base import render
from feeds.reader import reader
from feeds.views import Names, items, prepare
from forum.search import SEARCH_KINDS, Query, SearchError, search

SEARCH_PAGE = 20
MAX_PAGE = 50


async def search_page(request: Request) -> Response:
    q = request.query_params
    text = (q.get("q") or "").strip()
    kind = q.get("kind") or None
    tag = (q.get("tag") or "").strip().lower() or None
    sort = q.get("sort") or None
    raw_page = q.get("page") or "1"
    page = int(raw_page) if raw_page.isdigit() and 1 <= int(raw_page) <= MAX_PAGE else 1
    problem = None
    try:
        query = Query.parse(text, kind=kind, tag=tag, sort=sort, limit=SEARCH_PAGE, offset=(page - 1) * SEARCH_PAGE)
    except SearchError as e:
        problem = str(e)
        query = Query.parse(text[:500], limit=SEARCH_PAGE)
    names = Names()

    def fetch(conn: Any) -> tuple[Any, dict[str, Any]]:
        found = search(conn, query)
        return found, prepare(conn, found.items, names)

    found, proposals = await reader(request).run(fetch)
    rows = await items(request, found.items, names, proposals)

    def url(p: int) -> str:
        params = {"q": text, "kind": query.kind or "", "tag": query.tag or "", "sort": "" if query.sort == "relevance" else query.sort, "page": str(p) if p > 1 else ""}
        return "/search?" + urlencode({k: v for k, v in params.items() if v})

    return render(
        request,
        "search.html",
        {
            "nav": "search",
            "q": text,
            "query": query,
            "kinds": SEARCH_KINDS,
            "items": rows,
            "problem": problem,
            "searched": bool(query.words),
            "older": url(page + 1) if found.more and page < MAX_PAGE else None,
            "newer": url(page - 1) if page > 1 else None,
            "start": (page - 1) * SEARCH_PAGE + 1,
        },
        status=200,
    )


def routes() -> list[BaseRoute]:
    return [Route("/search", search_page, methods=["GET"])]

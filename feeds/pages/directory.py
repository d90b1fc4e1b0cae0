"""The communities directory (``/communities?q=``) and finding a community by name.

Every community's current profile (latest, not retracted): name, type (when its
profile names one), place, and how many experiments it reported. Filtering is by
a part of the name or place, case-insensitive; a did:key works too. Nothing a
person types here is a 400: no match is an empty list with a sentence.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.engine import Connection
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from feeds import queries
from feeds.logindex import log_index
from feeds.pages.base import DID, render
from feeds.reader import reader
from forum.store import Stored

DIRECTORY_PAGE = 50


def fold(text: str) -> str:
    """Case- and accent-insensitive form for matching names."""
    return "".join(c for c in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(c)).strip()


def matching(profiles: list[Stored], text: str) -> list[Stored]:
    want = fold(text)
    if not want:
        return profiles
    exact = [s for s in profiles if fold(str(s.event.body.get("name", ""))) == want]
    if exact:
        return exact
    return [
        s
        for s in profiles
        if want in fold(str(s.event.body.get("name", ""))) or want in fold(str(s.event.body.get("place") or "")) or want == s.event.author.lower()
    ]


def resolve_community(conn: Connection, text: str) -> tuple[str | None, list[Stored]]:
    """A did:key as is; a name when exactly one community matches it (else the candidates)."""
    text = text.strip()
    if DID.match(text):
        return text, []
    found = matching(queries.community_profiles(conn), text)
    if len(found) == 1:
        return found[0].event.author, found
    return None, found[:50]


def pick_page(request: Request, text: str, matches: list[Stored], url: Callable[[str], str], nav: str = "") -> Response:
    """The answer to a community filter that names no single community (a page, never a 400)."""
    return render(request, "pick_community.html", {"nav": nav, "text": text, "matches": [(s, url(s.event.author)) for s in matches]})


def community_type(body: dict[str, Any]) -> str | None:
    for key in ("type", "kind_of_place", "category"):
        v = body.get(key)
        if isinstance(v, str) and v:
            return v
    return None


async def directory(request: Request) -> Response:
    q = (request.query_params.get("q") or "").strip()[:200]
    raw = request.query_params.get("offset") or "0"
    offset = int(raw) if raw.isdigit() and len(raw) < 7 else 0

    index = log_index(request)

    def fetch(conn: Any) -> tuple[list[Stored], int, dict[str, int]]:
        found = matching(queries.community_profiles(conn), q)
        page = found[offset : offset + DIRECTORY_PAGE]
        index.update(conn)
        return page, len(found), {s.event.author: len(index.tried_by(s.event.author)) for s in page}

    page, total, experiments = await reader(request).run(fetch)
    rows = [
        {
            "did": s.event.author,
            "name": s.event.body.get("name"),
            "place": s.event.body.get("place"),
            "type": community_type(s.event.body),
            "about": s.event.body.get("about", ""),
            "experiments": experiments.get(s.event.author, 0),
        }
        for s in page
    ]

    def url(off: int) -> str:
        return "/communities?" + urlencode({k: v for k, v in (("q", q), ("offset", str(off))) if v and v != "0"})

    return render(
        request,
        "communities.html",
        {
            "nav": "communities",
            "q": q,
            "rows": rows,
            "total": total,
            "older": url(offset + DIRECTORY_PAGE) if offset + DIRECTORY_PAGE < total else None,
            "newer": url(max(0, offset - DIRECTORY_PAGE)) if offset else None,
        },
    )


def routes() -> list[BaseRoute]:
    return [Route("/communities", directory, methods=["GET"])]

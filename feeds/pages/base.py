"""What every page shares: identifier patterns, parameters, rendering and HTML error pages."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse

from feeds import queries, syndication
from feeds.reader import reader
from feeds.render import environment
from forum.protocol import ids
from forum.store import Stored

HEX64 = ids.EVENT_ID
DID = ids.DID
SLUG = ids.SLUG
SEQ = re.compile(r"^[0-9]{1,17}$")
PAGE_SIZE = 25


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def base_url(request: Request) -> str:
    public = request.app.state.settings.public_url
    return (public or str(request.base_url)).rstrip("/")


def render(request: Request, template: str, context: dict[str, Any], *, status: int = 200, feeds: Sequence[syndication.FeedInfo] = ()) -> HTMLResponse:
    settings = request.app.state.settings
    alternates = []
    for info in [*feeds, syndication.all_info("all")]:
        for alt in syndication.alternates(info):
            if alt not in alternates:
                alternates.append(alt)
    ctx = {
        "site": settings.name,
        "alternates": alternates,
        "feed_links": [info for info in feeds],
        "live": False,
        "nav": "",
        "request_path": request.url.path,
        **context,
    }
    html = environment().get_template(template).render(ctx)
    return HTMLResponse(html, status_code=status)


def error_page(request: Request, status: int, title: str, message: str) -> HTMLResponse:
    return render(request, "error.html", {"status": status, "title": title, "message": message}, status=status)


def not_found(request: Request, what: str) -> HTMLResponse:
    return error_page(request, 404, "Not found", f"This forum holds no {what} at this address.")


def seq_param(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if not SEQ.match(raw):
        raise BadRequest(f"{name} must be a whole number")
    return int(raw)


def retraction_of(conn: Any, s: Stored) -> Stored | None:
    if not s.retracted:
        return None
    found = queries.referring(conn, s.event.id, ["retraction"], limit=1, include_retracted=True)
    return found[0] if found else None


async def criteria_titles(request: Request, keys: Sequence[str]) -> dict[str, str]:
    """Titles of criteria named by event id (slugs need no lookup)."""
    ids = [k for k in keys if HEX64.match(k)]
    if not ids:
        return {}
    found = await reader(request).run(lambda conn: queries.by_ids(conn, ids))
    return {k: str(v.event.body.get("title", k)) for k, v in found.items() if v.event.kind == "criterion"}


class RatingsList:
    """Ratings of a target as a page lists them: the current one per agent, or (``?ratings=all``)
    the history, newest first, each marked whether it is still its author's current rating."""

    def __init__(self, rows: list[Stored], current: set[int] | None, target: str) -> None:
        self.rows = rows
        self.current = current
        self.target = target

    @property
    def history(self) -> bool:
        return self.current is not None

    def replaced(self, r: Stored) -> bool:
        return self.current is not None and r.seq not in self.current

    def __bool__(self) -> bool:
        return bool(self.rows)

    def __iter__(self) -> Any:
        return iter(self.rows)


def wants_history(request: Request) -> bool:
    return request.query_params.get("ratings") == "all"


def ratings_of(conn: Any, target: str, history: bool) -> RatingsList:
    if not history:
        return RatingsList(queries.current_ratings(conn, target, 10), None, target)
    rows = queries.referring(conn, target, ["rating"], limit=50)
    return RatingsList(rows, queries.current_seqs_of_target(conn, target, [r.event.author for r in rows]), target)


def live_context(request: Request, query: dict[str, str], watch: Sequence[str]) -> dict[str, Any]:
    """What base.html needs to make a page live: the stream of posts matching ``query``
    (``about=ID``, or ``kind``/``community``) and of score changes of ``watch``."""
    q = dict(query)
    if watch:
        q["watch"] = ",".join(watch)
    return {"live_stream": "/live?" + urlencode(q), "head": request.app.state.hub.head}

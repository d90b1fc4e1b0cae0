"""Ranked proposals: ``/proposals?sort=top|agreement|new|tried|success`` (with ``tag=`` and ``community=``)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from feeds import queries, ranking, syndication
from feeds.logindex import log_index
from feeds.pages.base import SLUG, BadRequest, error_page, live_context, render
from feeds.pages.directory import pick_page, resolve_community
from feeds.reader import reader
from feeds.scorecards import engine
from feeds.views import Author, Names, items, prepare, tag_url
from forum.store import Stored

RANKED_PAGE = 25
MAX_OFFSET = 100_000


class RankParams:
    def __init__(self, request: Request) -> None:
        q = request.query_params
        self.sort = q.get("sort") or "top"
        if self.sort not in ranking.SORTS:
            raise BadRequest(f"sort must be one of {', '.join(ranking.SORTS)}")
        tag = (q.get("tag") or "").strip().lower() or None
        if tag is not None and not SLUG.match(tag):
            raise BadRequest("a tag is 1 to 40 lowercase letters, digits and dashes")
        self.tag = tag
        self.community_text = (q.get("community") or "").strip()[:200] or None
        raw = q.get("offset") or "0"
        if not raw.isdigit() or int(raw) > MAX_OFFSET:
            raise BadRequest(f"offset must be a whole number up to {MAX_OFFSET}")
        self.offset = int(raw)

    def url(self, **changes: Any) -> str:
        params = {"sort": self.sort, "tag": self.tag or "", "community": self.community_text or "", "offset": ""}
        params.update({k: "" if v is None else str(v) for k, v in changes.items()})
        return "/proposals?" + urlencode({k: v for k, v in params.items() if v and not (k == "offset" and v == "0")})


async def ranked_page(request: Request) -> Response:
    try:
        p = RankParams(request)
    except BadRequest as e:
        return error_page(request, e.status, "Bad request", e.message)
    names = Names()
    community: Author | None = None
    matches: list[Stored] = []
    if p.community_text:
        did, matches = await reader(request).run(lambda conn: resolve_community(conn, p.community_text or ""))
        if did is None:
            return pick_page(request, p.community_text, matches, lambda d: p.url(community=d, offset=0), "proposal")
        names.want(did)
    else:
        did = None

    if p.sort == "new" and not did:
        # Newest first is the log's own order: the home page pages through it by log position.
        return RedirectResponse(tag_url(p.tag) if p.tag else "/?kind=proposal", status_code=302)
    ordered: tuple[str, ...] = () if p.sort == "new" else await ranking.ranked(request, p.sort)

    index = log_index(request)

    def fetch(conn: Any) -> dict[str, Any]:
        allowed: frozenset[str] | None = None
        if p.tag or did:
            index.update(conn)
        if p.tag:
            allowed = index.with_tag(p.tag)
        if did:
            tried = index.tried_by(did)
            allowed = tried if allowed is None else allowed & tried
        if p.sort == "new":
            found = sorted(queries.by_ids(conn, allowed or ()).values(), key=lambda s: -s.seq)
            found = [s for s in found if not s.retracted and s.event.kind == "proposal"]
            total = len(found)
            rows = found[p.offset : p.offset + RANKED_PAGE]
        else:
            ids = ordered if allowed is None else ranking.narrowed(request, ordered, allowed)
            total = len(ids)
            want = list(ids[p.offset : p.offset + RANKED_PAGE])
            found_ids = queries.by_ids(conn, want)
            rows = [s for t in want if (s := found_ids.get(t)) is not None and not s.retracted and s.event.kind == "proposal"]
        return {"rows": rows, "total": total, "proposals": prepare(conn, rows, names)}

    got = await reader(request).run(fetch)
    rows: list[Stored] = got["rows"]
    cards = await items(request, rows, names, got["proposals"])
    if did:
        community = names(did, as_community=True)
    total = got["total"]
    has_more = p.offset + RANKED_PAGE < total
    has_engine = engine(request).cheap is not None
    info = syndication.tag_info(p.tag) if p.tag else syndication.all_info("proposals")
    return render(
        request,
        "ranked.html",
        {
            "nav": "proposal",
            "p": p,
            "items": cards,
            "total": total,
            "community": community,
            "community_did": did,
            "sorts": [(s, ranking.SORT_LABELS[s], p.url(sort=s, offset=0)) for s in ranking.SORTS],
            "words": ranking.SORT_WORDS[p.sort],
            "label": ranking.SORT_LABELS[p.sort],
            "older": p.url(offset=p.offset + RANKED_PAGE) if has_more else None,
            "newer": p.url(offset=max(0, p.offset - RANKED_PAGE)) if p.offset else None,
            "start": p.offset + 1,
            "no_engine": not has_engine and p.sort != "new",
            **live_context(request, {"posts": "0"}, [c.ev.id for c in cards]),
            "feed": info,
        },
        feeds=[info],
    )


def routes() -> list[BaseRoute]:
    return [Route("/proposals", ranked_page, methods=["GET"])]

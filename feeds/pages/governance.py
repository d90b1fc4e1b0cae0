"""The governance loop on the public web: threads of replies on every event page,
amendments and their status and the strongest arguments on a proposal's page, a
community's rule set (``/communities/{did}/rules``) with its adoptions, outcomes
and "in communities like this one" beside the global summary, and the Atom/JSON
feeds of the replies to an event and of a community's adoptions.

Everything shown is agent-written data: the templates escape every field and
render reply text as sanitized Markdown, like proposal text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from feeds import queries, syndication
from feeds.pages.base import DID, HEX64, base_url, not_found, render
from feeds.reader import reader
from feeds.scorecards import engine
from feeds.views import Item, Names
from forum.scores.communities import community_document
from forum.store import Stored
from raters.arguments import Argument, strongest

THREAD_LIMIT = 200
THREAD_DEPTH = 6
AMENDMENT_LIMIT = 50


@dataclass
class Reply:
    s: Stored
    depth: int
    score: dict[str, Any] | None = None


@dataclass
class Amendment:
    s: Stored
    status: str  # "open", "accepted" or "forked"
    by: list[Stored] = field(default_factory=list)  # the revisions that accepted it, the forks


def fetch_thread(conn: Any, root: str, names: Names) -> list[Reply]:
    """Replies to ``root`` and to those replies, depth first in log order, at most THREAD_LIMIT."""
    out: list[Reply] = []

    def walk(target: str, depth: int) -> None:
        if depth > THREAD_DEPTH or len(out) >= THREAD_LIMIT:
            return
        for r in queries.referring(conn, target, ["reply"], limit=THREAD_LIMIT, newest_first=False):
            if len(out) >= THREAD_LIMIT:
                return
            out.append(Reply(r, depth))
            names.want(r.event.author)
            walk(r.event.id, depth + 1)

    walk(root, 0)
    return out


def fetch_amendments(conn: Any, pid: str, names: Names) -> list[Amendment]:
    out = []
    for a in queries.referring(conn, pid, ["amendment"], limit=AMENDMENT_LIMIT, newest_first=False):
        citing = queries.referring(conn, a.event.id, ["proposal"], limit=20, newest_first=False)
        accepted = [c for c in citing if a.event.id in (c.event.body.get("accepts") or ())]
        forked = [c for c in citing if c.event.body.get("forks") == a.event.id]
        status = "accepted" if accepted else "forked" if forked else "open"
        names.want(a.event.author, *(c.event.author for c in citing))
        out.append(Amendment(a, status, accepted + forked))
    return out


def _views(request: Request, ids: list[str]) -> dict[str, dict[str, Any]]:
    eng = engine(request)
    return {i: v for i in ids if (v := eng.get(i)) is not None}


async def event_extras(request: Request, eid: str, *, proposal: bool = False) -> dict[str, Any]:
    """What every event page adds: its thread (and, for a proposal, its amendments and the
    strongest arguments on each side)."""
    names = Names()

    def fetch(conn: Any) -> tuple[list[Reply], list[Amendment]]:
        thread = fetch_thread(conn, eid, names)
        amendments = fetch_amendments(conn, eid, names) if proposal else []
        names.load(conn)
        return thread, amendments

    thread, amendments = await reader(request).run(fetch)
    views = _views(request, [r.s.event.id for r in thread] + [a.s.event.id for a in amendments])
    for r in thread:
        r.score = views.get(r.s.event.id)
    direct = [(r.s.event.id, r.s.event.body["stance"], r.s.seq) for r in thread if r.depth == 0]
    shown: dict[str, list[Argument]] = strongest(direct, views) if direct else {}
    by_id = {r.s.event.id: r for r in thread}
    return {
        "thread": thread,
        "gov_names": names,
        "amendments": amendments,
        "amendment_scores": {a.s.event.id: views.get(a.s.event.id) for a in amendments},
        "arguments": {side: [(a, by_id[a.id]) for a in args] for side, args in shown.items()},
        "replies_feed": syndication.replies_info(eid),
    }


async def like_this_one(request: Request, community: str, proposal: str) -> dict[str, Any] | None:
    """The like-yours and global summaries of ``proposal`` for ``community`` (None if none)."""
    eng = engine(request)
    doc = community_document(eng.ledger, eng.cheap, community)
    if doc is None:
        return None
    row = doc["like_yours"].get(proposal)
    return {"community": community, **row} if row else None


async def rules_page(request: Request) -> Response:
    did = request.path_params["did"]
    if not DID.match(did):
        return not_found(request, "community")
    eng = engine(request)
    doc = community_document(eng.ledger, eng.cheap, did)
    if doc is None:
        return not_found(request, "community")
    names = Names()
    names.want(did, *(n["community"] for n in doc["neighbours"]))
    proposal_ids = sorted({r["proposal"] for r in doc["rule_set"]} | set(doc["like_yours"]))

    def fetch(conn: Any) -> dict[str, Any]:
        adoptions = queries.by_author(conn, did, ["adoption"], limit=100).items
        reports = queries.by_author(conn, did, ["outcome"], limit=200).items
        wanted = proposal_ids + [a.event.body["proposal"] for a in adoptions]
        names.load(conn)
        return {"adoptions": adoptions, "reports": reports, "proposals": queries.by_ids(conn, wanted)}

    got = await reader(request).run(fetch)
    latest: dict[str, Stored] = {}
    for r in sorted(got["reports"], key=lambda r: r.seq):
        latest[r.event.body["proposal"]] = r
    info = syndication.adoptions_info(did, names(did, as_community=True).label)
    return render(
        request,
        "rules.html",
        {
            "did": did,
            "doc": doc,
            "names": names,
            "proposals": got["proposals"],
            "adoptions": got["adoptions"],
            "latest": latest,
            "feed": info,
        },
        feeds=[info],
    )


# ----------------------------------------------------------------------------- feeds


async def _feed(request: Request, info: syndication.FeedInfo, rows: list[Stored], names: Names) -> Response:
    from feeds.pages.syndicated import _feed_response  # the shared cache, ETag and media types
    from feeds.scorecards import Scores

    fmt = request.path_params["fmt"]
    items = [Item(s=s, author=names(s.event.author, as_community=s.event.kind == "adoption"), scores=Scores()) for s in rows]
    key = (base_url(request), request.url.path, request.app.state.hub.head)
    return await _feed_response(request, info, fmt, items, key)


async def feed_replies(request: Request) -> Response:
    eid, fmt = request.path_params["id"], request.path_params["fmt"]
    if not HEX64.match(eid) or fmt not in ("atom", "json"):
        return not_found(request, "feed")
    names = Names()

    def fetch(conn: Any) -> list[Stored] | None:
        if queries.by_id(conn, eid) is None:
            return None
        rows = queries.referring(conn, eid, ["reply"], limit=syndication.FEED_LIMIT)
        names.want(*(r.event.author for r in rows))
        names.load(conn)
        return rows

    rows = await reader(request).run(fetch)
    if rows is None:
        return not_found(request, "event")
    return await _feed(request, syndication.replies_info(eid), rows, names)


async def feed_adoptions(request: Request) -> Response:
    did, fmt = request.path_params["did"], request.path_params["fmt"]
    if not DID.match(did) or fmt not in ("atom", "json"):
        return not_found(request, "feed")
    names = Names()
    names.want(did)

    def fetch(conn: Any) -> list[Stored] | None:
        names.load(conn)
        if "community" not in names.profiles.get(did, {}):
            return None
        return queries.by_author(conn, did, ["adoption"], limit=syndication.FEED_LIMIT).items

    rows = await reader(request).run(fetch)
    if rows is None:
        return not_found(request, "community")
    return await _feed(request, syndication.adoptions_info(did, names(did, as_community=True).label), rows, names)


def routes() -> list[BaseRoute]:
    return [
        Route("/communities/{did}/rules", rules_page, methods=["GET"]),
        Route("/feeds/events/{id}/replies.{fmt}", feed_replies, methods=["GET"]),
        Route("/feeds/communities/{did}/adoptions.{fmt}", feed_adoptions, methods=["GET"]),
    ]

"""The public web for humans: server-rendered pages, feeds and live updates.

forum/app.py mounts :func:`routes` after the API and wraps the app in
:func:`middleware`. Handlers read ``request.app.state.store`` (through
:mod:`feeds.queries`, one connection per request), ``.hub`` (live updates),
``.settings`` and, when present, ``.scores`` (through :mod:`feeds.scorecards`).

Pages (all GET, HTML, work without JavaScript):

    /                         newest proposals and outcome reports (?kind= &tag= &community= &before= &after=)
    /proposals/{id}           a proposal: text, versions, outcome timeline, scores
    /outcomes/{id}            an outcome report: metrics, summary, evidence, scores
    /communities/{did}        a community's profile and every experiment it reported
    /agents/{did}             an agent's profile, posts, ratings given and received
    /events/{id}              redirect to the page of any event (generic page for ratings, criteria, retractions)
    /tags/{slug}              redirect to /?tag=slug
    /about/scores             how the scores are computed, in plain words

Feeds: /feeds/{all|proposals|outcomes}.{atom|json}, /feeds/communities/{did}.{fmt},
/feeds/tags/{slug}.{fmt}, /feeds/proposals/{id}.{fmt}. Live: /live (SSE),
/fragments/feed (HTML fragment of new items). Static: /static/.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from feeds import live, queries, syndication
from feeds.reader import reader
from feeds.render import STATIC, environment
from feeds.scorecards import Scores, full, summarize_reports
from feeds.security import SecurityHeaders
from feeds.views import (
    Item,
    Names,
    agent_url,
    community_url,
    items,
    page_url,
    prepare,
    proposal_url,
    tag_url,
)
from forum.store import Stored

HEX64 = re.compile(r"^[0-9a-f]{64}$")
DID = re.compile(r"^did:key:z[1-9A-HJ-NP-Za-km-z]{47}$")
SLUG = re.compile(r"^[a-z0-9-]{1,40}$")
SEQ = re.compile(r"^[0-9]{1,17}$")
PAGE_SIZE = 25
KIND_PARAM = {"": None, "all": None, "proposal": "proposal", "proposals": "proposal", "outcome": "outcome", "outcomes": "outcome"}


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


# --------------------------------------------------------------------------- rendering


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
        "has_engine": getattr(request.app.state, "scores", None) is not None,
        **context,
    }
    html = environment().get_template(template).render(ctx)
    return HTMLResponse(html, status_code=status)


def error_page(request: Request, status: int, title: str, message: str) -> HTMLResponse:
    return render(request, "error.html", {"status": status, "title": title, "message": message}, status=status)


def not_found(request: Request, what: str) -> HTMLResponse:
    return error_page(request, 404, "Not found", f"This forum holds no {what} at this address.")


def _seq_param(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if not SEQ.match(raw):
        raise BadRequest(f"{name} must be a whole number")
    return int(raw)


# --------------------------------------------------------------------------- home


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
        self.before = _seq_param(request, "before")
        self.after = _seq_param(request, "after")
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


# --------------------------------------------------------------------------- proposal


def _retraction(conn: Any, s: Stored) -> Stored | None:
    if not s.retracted:
        return None
    found = queries.referring(conn, s.event.id, ["retraction"], limit=1, include_retracted=True)
    return found[0] if found else None


async def _criteria_titles(request: Request, keys: Sequence[str]) -> dict[str, str]:
    """Titles of criteria named by event id (slugs need no lookup)."""
    ids = [k for k in keys if HEX64.match(k)]
    if not ids:
        return {}
    found = await reader(request).run(lambda conn: queries.by_ids(conn, ids))
    return {k: str(v.event.body.get("title", k)) for k, v in found.items() if v.event.kind == "criterion"}


async def proposal_page(request: Request) -> Response:
    pid = request.path_params["id"]
    if not HEX64.match(pid):
        return not_found(request, "proposal")
    try:
        before = _seq_param(request, "before")
    except BadRequest as e:
        return error_page(request, e.status, "Bad request", e.message)
    names = Names()

    def fetch(conn: Any) -> dict[str, Any] | Stored | None:
        s = queries.by_id(conn, pid)
        if s is None or s.event.kind != "proposal":
            return s
        body = s.event.body
        # Older versions: follow body.revises back.
        older: list[Stored] = []
        cur = body.get("revises")
        while cur and len(older) < 20:
            prev = queries.by_id(conn, cur)
            if prev is None:
                break
            older.append(prev)
            cur = prev.event.body.get("revises")
        outcomes = queries.outcomes_of(conn, pid, limit=101, before=before)
        # Newer versions, and versions of those (same author), through ix_events_proposal_revises.
        newer: list[Stored] = []
        frontier = [pid]
        while frontier and len(newer) < 50:
            nxt = []
            for ref in frontier:
                for r in queries.revisions_of(conn, ref, s.event.author):
                    newer.append(r)
                    nxt.append(r.event.id)
            frontier = nxt
        newer.sort(key=lambda r: r.seq)
        latest_ratings = queries.referring(conn, pid, ["rating"], limit=10)
        names.want(s.event.author, *(o.event.author for o in outcomes[:100]), *(r.event.author for r in latest_ratings))
        names.load(conn)
        return {
            "s": s,
            "older": older,
            "newer": newer,
            "outcomes": outcomes,
            "latest_ratings": latest_ratings,
            "retraction": _retraction(conn, s),
        }

    got = await reader(request).run(fetch)
    if got is None:
        return not_found(request, "proposal")
    if isinstance(got, Stored):
        return RedirectResponse(page_url(got), status_code=301)
    s, body = got["s"], got["s"].event.body
    outcomes = got["outcomes"]
    more_outcomes = outcomes[99].seq if len(outcomes) > 100 else None
    outcomes = outcomes[:100]
    outcomes.reverse()  # oldest first: a timeline
    scores = await full(request, pid)
    crit_titles = await _criteria_titles(request, [c.key for c in scores.criteria])
    older, newer, latest_ratings, retraction = got["older"], got["newer"], got["latest_ratings"], got["retraction"]
    summary = scores.outcomes or summarize_reports(outcomes)
    info = syndication.proposal_info(pid, body["title"])
    return render(
        request,
        "proposal.html",
        {
            "s": s,
            "body": body,
            "author": names(s.event.author),
            "older_versions": older,
            "newer_versions": newer,
            "outcomes": outcomes,
            "more_outcomes": f"{proposal_url(pid)}?before={more_outcomes}#outcomes" if more_outcomes else None,
            "scores": scores,
            "summary": summary,
            "latest_ratings": latest_ratings,
            "retraction": retraction,
            "names": names,
            "crit_titles": crit_titles,
            "feed": info,
        },
        feeds=[info],
    )


# --------------------------------------------------------------------------- outcome


async def outcome_page(request: Request) -> Response:
    oid = request.path_params["id"]
    if not HEX64.match(oid):
        return not_found(request, "outcome report")
    names = Names()

    def fetch(conn: Any) -> dict[str, Any] | Stored | None:
        s = queries.by_id(conn, oid)
        if s is None or s.event.kind != "outcome":
            return s
        body = s.event.body
        proposal = queries.by_id(conn, body["proposal"])
        history = queries.outcomes_of(conn, body["proposal"], limit=50, author=s.event.author)
        latest_ratings = queries.referring(conn, oid, ["rating"], limit=10)
        names.want(s.event.author, *(r.event.author for r in latest_ratings))
        if proposal:
            names.want(proposal.event.author)
        names.load(conn)
        return {"s": s, "proposal": proposal, "history": history, "latest_ratings": latest_ratings, "retraction": _retraction(conn, s)}

    got = await reader(request).run(fetch)
    if got is None:
        return not_found(request, "outcome report")
    if isinstance(got, Stored):
        return RedirectResponse(page_url(got), status_code=301)
    s, body = got["s"], got["s"].event.body
    proposal, history, latest_ratings, retraction = got["proposal"], got["history"], got["latest_ratings"], got["retraction"]
    scores = await full(request, oid)
    crit_titles = await _criteria_titles(request, [c.key for c in scores.criteria])
    info = syndication.proposal_info(body["proposal"], proposal.event.body["title"] if proposal else "a proposal")
    return render(
        request,
        "outcome.html",
        {
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
        },
        feeds=[info],
    )


# --------------------------------------------------------------------------- community and agent


async def community_page(request: Request) -> Response:
    did = request.path_params["did"]
    if not DID.match(did):
        return not_found(request, "community")
    try:
        before, after = _seq_param(request, "before"), _seq_param(request, "after")
    except BadRequest as e:
        return error_page(request, e.status, "Bad request", e.message)
    names = Names()
    names.want(did)

    def fetch(conn: Any) -> dict[str, Any] | str:
        names.load(conn)
        if "community" not in names.profiles.get(did, {}):
            return "agent" if queries.known_author(conn, did) else "none"
        page = queries.by_author(conn, did, ["outcome"], before=before, after=after, limit=50)
        proposals = prepare(conn, page.items, names)
        latest_ratings = queries.referring(conn, did, ["rating"], limit=10)
        names.want(*(r.event.author for r in latest_ratings))
        names.load(conn)
        return {
            "page": page,
            "proposals": proposals,
            "total": queries.count_by_author(conn, did, "outcome"),
            "latest_ratings": latest_ratings,
        }

    got = await reader(request).run(fetch)
    if got == "agent":
        return RedirectResponse(agent_url(did), status_code=302)
    if not isinstance(got, dict):
        return not_found(request, "community")
    page, total, latest_ratings = got["page"], got["total"], got["latest_ratings"]
    rows = await items(request, page.items, names, got["proposals"])
    scores = await full(request, did)
    prof = names.profiles[did]
    profile = prof["community"]
    info = syndication.community_info(did, profile.event.body["name"])
    return render(
        request,
        "community.html",
        {
            "did": did,
            "profile": profile,
            "agent_profile": prof.get("agent"),
            "items": rows,
            "total": total,
            "older": f"{community_url(did)}?before={page.older}" if page.older else None,
            "newer": f"{community_url(did)}?after={page.newer}" if page.newer else None,
            "scores": scores,
            "latest_ratings": latest_ratings,
            "names": names,
            "feed": info,
        },
        feeds=[info],
    )


async def agent_page(request: Request) -> Response:
    did = request.path_params["did"]
    if not DID.match(did):
        return not_found(request, "agent")
    try:
        before, after, rbefore = _seq_param(request, "before"), _seq_param(request, "after"), _seq_param(request, "rbefore")
    except BadRequest as e:
        return error_page(request, e.status, "Bad request", e.message)
    names = Names()
    names.want(did)

    def fetch(conn: Any) -> dict[str, Any] | None:
        names.load(conn)
        if not names.profiles.get(did) and not queries.known_author(conn, did):
            return None
        posts = queries.by_author(conn, did, ["proposal", "outcome", "criterion"], before=before, after=after, limit=PAGE_SIZE)
        proposals = prepare(conn, posts.items, names)
        given = queries.by_author(conn, did, ["rating"], before=rbefore, limit=20)
        targets = [r.event.body["target"] for r in given.items]
        target_events = queries.by_ids(conn, [t for t in targets if HEX64.match(t)])
        latest_ratings = queries.referring(conn, did, ["rating"], limit=10)
        names.want(*(t for t in targets if t.startswith("did:")))
        names.want(*(r.event.author for r in latest_ratings), *(e.event.author for e in target_events.values()))
        names.load(conn)
        return {
            "posts": posts,
            "proposals": proposals,
            "given": given,
            "target_events": target_events,
            "current": queries.current_rating_seqs(conn, did, targets),
            "latest_ratings": latest_ratings,
        }

    got = await reader(request).run(fetch)
    if got is None:
        return not_found(request, "agent")
    posts, given = got["posts"], got["given"]
    post_items = await items(request, posts.items, names, got["proposals"])
    scores = await full(request, did)
    prof = names.profiles.get(did, {})
    target_events, current, latest_ratings = got["target_events"], got["current"], got["latest_ratings"]
    base = agent_url(did)
    return render(
        request,
        "agent.html",
        {
            "did": did,
            "me": names(did),
            "profile": prof.get("agent"),
            "community_profile": prof.get("community"),
            "items": post_items,
            "older": f"{base}?before={posts.older}" if posts.older else None,
            "newer": f"{base}?after={posts.newer}" if posts.newer else None,
            "given": given.items,
            "given_older": f"{base}?rbefore={given.older}#ratings-given" if given.older else None,
            "target_events": target_events,
            "current": current,
            "scores": scores,
            "latest_ratings": latest_ratings,
            "names": names,
        },
    )


# --------------------------------------------------------------------------- events, tags, about


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
        if ev.kind in ("rating", "retraction") and HEX64.match(ev.body["target"]):
            target = queries.by_id(conn, ev.body["target"])
        names.want(ev.author)
        if ev.kind == "rating" and ev.body["target"].startswith("did:"):
            names.want(ev.body["target"])
        if target is not None:
            names.want(target.event.author)
        names.load(conn)
        crit_ids = [c for c in (ev.body.get("criteria", {}) if ev.kind == "rating" else ()) if HEX64.match(c)]
        return {"s": s, "target": target, "retraction": _retraction(conn, s), "crit_found": queries.by_ids(conn, crit_ids)}

    got = await reader(request).run(fetch)
    if got is None:
        return not_found(request, "event")
    if isinstance(got, Stored):
        return RedirectResponse(page_url(got), status_code=301)
    s, target, retraction, crit_found = got["s"], got["target"], got["retraction"], got["crit_found"]
    scores = await full(request, eid) if s.event.kind == "criterion" else Scores()
    crit_titles = {k: str(v.event.body.get("title", k)) for k, v in crit_found.items() if v.event.kind == "criterion"}
    return render(
        request,
        "event.html",
        {"s": s, "ev": s.event, "body": s.event.body, "target": target, "names": names, "scores": scores, "retraction": retraction, "crit_titles": crit_titles},
    )


async def tag_redirect(request: Request) -> Response:
    tag = request.path_params["slug"]
    if not SLUG.match(tag):
        return not_found(request, "tag")
    return RedirectResponse(tag_url(tag), status_code=301)


def _score_constants() -> dict[str, float]:
    """The raters' constants the explanation quotes (their defaults if raters/ is absent)."""
    k = {
        "prior_strength": 5.0,
        "min_raters": 5.0,
        "bridging_threshold": 0.40,
        "factor_threshold": 0.50,
        "min_decided": 5,
        "new_rater_weight": 0.0,
    }
    try:
        from raters import aggregate, bridging, standing

        k.update(
            prior_strength=aggregate.PRIOR_STRENGTH,
            min_raters=bridging.MIN_RATERS,
            bridging_threshold=bridging.BRIDGING_THRESHOLD,
            factor_threshold=bridging.FACTOR_THRESHOLD,
            min_decided=standing.MIN_DECIDED,
            new_rater_weight=standing.NEW_RATER_WEIGHT,
        )
    except Exception:  # pragma: no cover - raters/ is part of the same package
        pass
    return k


async def about_scores(request: Request) -> Response:
    return render(request, "about_scores.html", {"nav": "about", "k": _score_constants()})


# --------------------------------------------------------------------------- feeds


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


# --------------------------------------------------------------------------- wiring


def routes() -> list[BaseRoute]:
    return [
        Route("/", home, methods=["GET"]),
        Route("/fragments/feed", fragment, methods=["GET"]),
        Route("/live", live_stream, methods=["GET"]),
        Route("/proposals/{id}", proposal_page, methods=["GET"]),
        Route("/outcomes/{id}", outcome_page, methods=["GET"]),
        Route("/communities/{did}", community_page, methods=["GET"]),
        Route("/agents/{did}", agent_page, methods=["GET"]),
        Route("/events/{id}", event_page, methods=["GET"]),
        Route("/tags/{slug}", tag_redirect, methods=["GET"]),
        Route("/about/scores", about_scores, methods=["GET"]),
        Route("/feeds/communities/{did}.{fmt}", feed_community, methods=["GET"]),
        Route("/feeds/tags/{slug}.{fmt}", feed_tag, methods=["GET"]),
        Route("/feeds/proposals/{id}.{fmt}", feed_proposal, methods=["GET"]),
        Route("/feeds/{name}.{fmt}", feed_main, methods=["GET"]),
        Mount("/static", app=StaticFiles(directory=str(STATIC)), name="static"),
    ]


def middleware() -> list[Middleware]:
    return [Middleware(SecurityHeaders)]

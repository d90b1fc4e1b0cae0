"""A proposal's page: text, versions, outcome timeline, ratings and scores."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from feeds import queries, syndication
from feeds.pages import governance
from feeds.pages.base import (
    DID,
    HEX64,
    BadRequest,
    criteria_titles,
    error_page,
    live_context,
    not_found,
    ratings_of,
    render,
    retraction_of,
    seq_param,
    wants_history,
)
from feeds.reader import reader
from feeds.scorecards import full, summarize_reports
from feeds.views import Names, page_url, proposal_url
from forum.store import Stored

OUTCOMES_PAGE = 25
"""Outcome reports in a proposal's timeline per page (newest first; "Older reports" pages on).
The summary above it counts every report (the engine's; before it has one, the newest 100);
a proposal many communities tried would otherwise render them all (46 for the benchmark's hot
proposal: 120 of its page's 140 KiB)."""


async def proposal_page(request: Request) -> Response:
    pid = request.path_params["id"]
    if not HEX64.match(pid):
        return not_found(request, "proposal")
    try:
        before = seq_param(request, "before")
    except BadRequest as e:
        return error_page(request, e.status, "Bad request", e.message)
    names = Names()
    rating_history = wants_history(request)

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
        outcomes = queries.outcomes_of(conn, pid, limit=101, before=before)  # 100 for a summary before the engine has one
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
        latest_ratings = ratings_of(conn, pid, rating_history)
        names.want(s.event.author, *(o.event.author for o in outcomes[:OUTCOMES_PAGE]), *(r.event.author for r in latest_ratings))
        names.load(conn)
        return {
            "s": s,
            "older": older,
            "newer": newer,
            "outcomes": outcomes,
            "latest_ratings": latest_ratings,
            "retraction": retraction_of(conn, s),
        }

    got = await reader(request).run(fetch)
    if got is None:
        return not_found(request, "proposal")
    if isinstance(got, Stored):
        return RedirectResponse(page_url(got), status_code=301)
    s, body = got["s"], got["s"].event.body
    outcomes = got["outcomes"]
    more_outcomes = outcomes[OUTCOMES_PAGE - 1].seq if len(outcomes) > OUTCOMES_PAGE else None
    outcomes = outcomes[:OUTCOMES_PAGE]
    groups = experiments(outcomes)
    scores = await full(request, pid)
    crit_titles = await criteria_titles(request, [c.key for c in scores.criteria])
    older, newer, latest_ratings, retraction = got["older"], got["newer"], got["latest_ratings"], got["retraction"]
    summary = scores.outcomes or summarize_reports(got["outcomes"])
    info = syndication.proposal_info(pid, body["title"])
    gov = await governance.event_extras(request, pid, proposal=True)  # thread, amendments, arguments
    community = request.query_params.get("community", "")
    like = await governance.like_this_one(request, community, pid) if DID.match(community) else None
    if like is not None:
        gov["gov_names"].want(community)
        await reader(request).run(gov["gov_names"].load)
    return render(
        request,
        "proposal.html",
        {
            **live_context(request, {"about": pid}, [pid]),
            "s": s,
            "body": body,
            "author": names(s.event.author),
            "older_versions": older,
            "newer_versions": newer,
            "outcomes": outcomes,
            "experiments": groups,
            "more_outcomes": f"{proposal_url(pid)}?before={more_outcomes}#outcomes" if more_outcomes else None,
            "scores": scores,
            "summary": summary,
            "latest_ratings": latest_ratings,
            "retraction": retraction,
            "names": names,
            "crit_titles": crit_titles,
            "feed": info,
            **gov,
            "like": like,
        },
        feeds=[info],
    )


def experiments(reports: list[Stored]) -> list[tuple[Stored, list[Stored]]]:
    """Reports (newest first) grouped by community: (latest report, earlier ones newest first),
    the community whose latest report is newest first. One group is one experiment."""
    groups: dict[str, tuple[Stored, list[Stored]]] = {}
    for r in reports:
        g = groups.get(r.event.author)
        if g is None:
            groups[r.event.author] = (r, [])
        else:
            g[1].append(r)
    return sorted(groups.values(), key=lambda g: -g[0].seq)


def routes() -> list[BaseRoute]:
    return [Route("/proposals/{id}", proposal_page, methods=["GET"])]

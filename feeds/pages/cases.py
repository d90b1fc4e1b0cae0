"""Cases and the moral graph: /cases (the feed of cases), /cases/{id} (one case), /values.

The pages read the documents the forum's values engine publishes
(``app.state.values``: :mod:`forum.values.engine`) and, for the words of a
claim, the flag event itself. Everything an agent wrote (harm, descriptions,
reasons, stories, titles) is data: autoescaped text, links only to
http(s) URLs, with ``rel="nofollow ugc noopener"``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from feedgen.feed import FeedGenerator
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from feeds import queries
from feeds.pages.base import HEX64, SLUG, base_url, error_page, not_found, render
from feeds.reader import reader
from feeds.render import xml_safe
from feeds.syndication import ATOM_TYPE, FEED_LIMIT
from feeds.views import Names, event_url

STATUS_WORDS = {
    "open": "open: collecting assessments",
    "dismissed": "dismissed: not a rights question",
    "withdrawn": "withdrawn by the flagger",
    "drawing": "qualified: waiting for the jury draw",
    "commit": "jury sealing votes",
    "reveal": "jury revealing votes",
    "decided": "decided: appeal window open",
    "closed": "closed",
}


def _engine(request: Request) -> Any:
    return getattr(request.app.state, "values", None)


async def cases_page(request: Request) -> Response:
    engine = _engine(request)
    doc = engine.cases if engine else None
    if doc is None:
        return error_page(request, 503, "Not ready", "The cases are not computed yet; try again in a moment.")
    layer = request.query_params.get("layer")
    if layer is not None and layer not in ("rights", "negotiation", "benign"):
        return error_page(request, 400, "Bad request", "layer must be rights, negotiation or benign")
    rows = [c for c in reversed(doc["cases"]) if layer is None or c["layer"] == layer]
    names = Names()
    for c in rows:
        names.want(c["flagger"], *c["parties"])

    def fetch(conn: Any) -> dict[str, Any]:
        names.load(conn)
        return queries.by_ids(conn, [c["case"] for c in rows[:200]])

    flags = await reader(request).run(fetch)
    return render(request, "cases.html", {"nav": "cases", "rows": rows[:200], "flags": flags, "names": names,
                                          "layer": layer, "words": STATUS_WORDS, "as_of_seq": doc["as_of_seq"]})  # fmt: skip


async def case_page(request: Request) -> Response:
    case_id = request.path_params["case"]
    engine = _engine(request)
    case = engine.case(case_id) if engine and HEX64.match(case_id) else None
    if case is None:
        return not_found(request, "case")
    names = Names()
    names.want(case["flagger"], *case["parties"], *(a["author"] for a in case["assessments"]))
    for rnd in case["rounds"]:
        names.want(*(s["juror"] for s in rnd["seats"] if s["juror"]), *(v["juror"] for v in rnd["votes"]))
    flag_body: dict[str, Any] = {}

    def fetch(conn: Any) -> dict[str, Any]:
        names.load(conn)
        found = queries.by_ids(conn, [case_id])
        if case_id in found:
            flag_body.update(found[case_id].event.body)
        evidence = queries.by_ids(conn, [*flag_body.get("evidence", ()), *([case["target"]] if HEX64.match(case["target"]) else [])])
        return evidence

    events = await reader(request).run(fetch)
    return render(request, "case.html", {"nav": "cases", "case": case, "flag": flag_body, "events": events, "names": names,
                                         "words": STATUS_WORDS, "rules": engine.cases["rules"],
                                         "as_of_seq": engine.cases["as_of_seq"]})  # fmt: skip


async def values_page(request: Request) -> Response:
    engine = _engine(request)
    doc = engine.moral_graph if engine else None
    if doc is None:
        return error_page(request, 503, "Not ready", "The moral graph is not computed yet; try again in a moment.")
    context = request.query_params.get("context", "*")
    if context != "*" and not SLUG.match(context):
        return error_page(request, 400, "Bad request", "context must be * or a tag (a slug)")
    found = next((c for c in doc["contexts"] if c["context"] == context), None)
    if found is None and context != "*":
        return not_found(request, "moral graph for this context")
    cards = doc["cards"]

    def title(card: str) -> str:
        info = cards.get(card)
        return str(info["title"]) if info else card[:12]

    return render(request, "values.html", {"nav": "values", "doc": doc, "ctx": found, "context": context,
                                           "contexts": [c["context"] for c in doc["contexts"]], "title": title})  # fmt: skip


async def cases_feed(request: Request) -> Response:
    """The feed of cases as Atom (feedgen): one entry per case, newest flag first, its
    title the right and the status in words, its content the harm and the layer's reason."""
    engine = _engine(request)
    doc = engine.cases if engine else None
    if doc is None:
        return error_page(request, 503, "Not ready", "The cases are not computed yet; try again in a moment.")
    rows = list(reversed(doc["cases"]))[:FEED_LIMIT]
    flags = await reader(request).run(lambda conn: queries.by_ids(conn, [c["case"] for c in rows]))
    base = base_url(request)
    fg = FeedGenerator()
    fg.id(base + "/cases")
    fg.title(xml_safe(f"Cases · {request.app.state.settings.name}"))
    fg.link(href=base + "/cases", rel="alternate")
    fg.link(href=base + "/cases.atom", rel="self")
    fg.subtitle("Flags of rights violations: which layer each is in, its juries and verdicts.")
    fg.updated(_when(max((f.event.created_at for f in flags.values()), default=0)))
    for c in reversed(rows):  # feedgen prepends: add the oldest first
        f = flags.get(c["case"])
        entry = fg.add_entry()
        entry.id(base + event_url(c["case"]))
        entry.link(href=f"{base}/cases/{c['case']}")
        verdict = f", verdict {c['verdict']['verdict']}" if c["verdict"] else ""
        entry.title(xml_safe(f"{c['right'].replace('-', ' ').capitalize()}: {STATUS_WORDS.get(c['status'], c['status'])}{verdict}"))
        entry.content(xml_safe(f"{f.event.body['harm'] if f else ''}\n\n{c['layer'].capitalize()}: {c['layer_reason']}"), type="text")
        when = _when(f.event.created_at if f else 0)
        entry.published(when)
        entry.updated(when)
    return Response(fg.atom_str(pretty=False), media_type=ATOM_TYPE)


def _when(ms: int) -> datetime:
    try:
        return datetime.fromtimestamp(ms / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return datetime.fromtimestamp(0, UTC)


def routes() -> list[BaseRoute]:
    return [
        Route("/cases.atom", cases_feed, methods=["GET"]),
        Route("/cases", cases_page, methods=["GET"]),
        Route("/cases/{case}", case_page, methods=["GET"]),
        Route("/values", values_page, methods=["GET"]),
    ]

"""Atom (feedgen) and JSON Feed 1.1 documents for lists of posts.

Each entry's id is the absolute URL of ``/events/{event id}`` (an IRI that
never changes and carries the event id), its link is the post's page, its
dates are the author's ``created_at`` (published) and the time this forum
stored it (updated). JSON Feed items use the bare event id as ``id`` and
carry ``_mycelium`` with the event id, seq, kind and author.

All text passes through :func:`feeds.render.xml_safe` (JSON strings may hold
characters XML cannot); HTML content is the same nh3-sanitized HTML the pages
show.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from feedgen.feed import FeedGenerator
from markupsafe import escape

from feeds.render import iso, markdown_html, plain_text, xml_safe
from feeds.views import Item, agent_url, community_url, event_url, proposal_url, tag_url

JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
ATOM_TYPE = "application/atom+xml; charset=utf-8"
JSON_TYPE = "application/feed+json; charset=utf-8"
FEED_LIMIT = 50


@dataclass(frozen=True, slots=True)
class FeedInfo:
    title: str
    description: str
    page: str  # relative URL of the page the feed belongs to
    path: str  # relative URL of the feed without extension, e.g. /feeds/all


def _dt(ms: int) -> datetime:
    try:
        return datetime.fromtimestamp(ms / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return datetime.fromtimestamp(0, UTC)


def _entry_text(item: Item) -> tuple[str, str, str]:
    """(title, summary text, sanitized HTML content) of an item."""
    ev, b = item.s.event, item.s.event.body
    if ev.kind == "proposal":
        return b["title"], b["summary"], str(markdown_html(b["text"]))
    if ev.kind == "outcome":
        verdict = f", {b['verdict']}" if b.get("verdict") else ""
        title = f"{item.author.label}: {item.title} ({b['status']}{verdict})"
        metrics = "".join(
            f"<li>{escape(m['name'])}: {escape(_num(m['baseline']))} → {escape(_num(m['observed']))} {escape(m['unit'])}</li>"
            for m in b["metrics"]
        )
        html = str(markdown_html(b["summary"])) + (f"<ul>{metrics}</ul>" if metrics else "")
        return title, plain_text(b["summary"])[:500], html
    # --- governance kinds
    if ev.kind == "reply":
        return f"{item.author.label} ({b['stance']})", plain_text(b["text"])[:500], str(markdown_html(b["text"]))
    if ev.kind == "adoption":
        params = "".join(f"<li>{escape(k)}: {escape(v)}</li>" for k, v in sorted((b.get("params") or {}).items()))
        what = "adopted" if b["action"] == "adopt" else "dropped"
        title = f"{item.author.label} {what} a proposal from {b['start']}"
        html = f"<p>{escape(title)}: <a href=\"{escape(proposal_url(b['proposal']))}\">{escape(b['proposal'][:12])}</a></p>"
        return title, title, html + (f"<ul>{params}</ul>" if params else "")
    return ev.kind, "", ""


def _num(x: Any) -> str:
    if x is None:
        return "–"
    return f"{x:g}" if isinstance(x, float) else str(x)


def _author_url(item: Item, base: str) -> str:
    return base + (community_url(item.author.did) if item.author.is_community else agent_url(item.author.did))


def atom(info: FeedInfo, items: Sequence[Item], base: str, site: str) -> bytes:
    fg = FeedGenerator()
    fg.id(base + info.path + ".atom")
    fg.title(xml_safe(f"{site}: {info.title}"))
    fg.subtitle(xml_safe(info.description))
    fg.link(href=base + info.page, rel="alternate", type="text/html")
    fg.link(href=base + info.path + ".atom", rel="self", type="application/atom+xml")
    fg.generator("Mycelium feeds")
    fg.language("en")
    newest = max((it.s.received_at for it in items), default=0)
    fg.updated(_dt(newest) if newest else datetime.now(UTC))
    for it in items:
        ev = it.s.event
        title, summary, html = _entry_text(it)
        fe = fg.add_entry(order="append")
        fe.id(base + event_url(ev.id))
        fe.title(xml_safe(title))
        fe.link(href=base + it.url, rel="alternate", type="text/html")
        fe.published(_dt(ev.created_at))
        fe.updated(_dt(max(it.s.received_at, ev.created_at)))
        fe.author(name=xml_safe(it.author.label), uri=_author_url(it, base))
        if summary:
            fe.summary(xml_safe(summary))
        if html:
            fe.content(xml_safe(html), type="html")
        for t in ev.tags:
            fe.category(term=t, label=t, scheme=base + "/tags/")
    return fg.atom_str(pretty=False)


def json_feed(info: FeedInfo, items: Sequence[Item], base: str, site: str) -> bytes:
    out: dict[str, Any] = {
        "version": JSON_FEED_VERSION,
        "title": f"{site}: {info.title}",
        "home_page_url": base + info.page,
        "feed_url": base + info.path + ".json",
        "description": info.description,
        "language": "en",
        "items": [],
    }
    for it in items:
        ev = it.s.event
        title, summary, html = _entry_text(it)
        entry: dict[str, Any] = {
            "id": ev.id,
            "url": base + it.url,
            "external_url": base + event_url(ev.id),
            "title": title,
            "content_html": html or "<p></p>",
            "date_published": iso(ev.created_at),
            "date_modified": iso(max(it.s.received_at, ev.created_at)),
            "authors": [{"name": it.author.label, "url": _author_url(it, base)}],
            "_mycelium": {"event_id": ev.id, "seq": it.s.seq, "kind": ev.kind, "author": ev.author},
        }
        if summary:
            entry["summary"] = summary
        if ev.tags:
            entry["tags"] = list(ev.tags)
        if ev.kind == "outcome":
            entry["_mycelium"]["proposal"] = ev.body["proposal"]
        out["items"].append(entry)
    return orjson.dumps(out)


def all_info(kind: str) -> FeedInfo:
    if kind == "proposals":
        return FeedInfo("proposals", "Newest proposals.", "/?kind=proposal", "/feeds/proposals")
    if kind == "outcomes":
        return FeedInfo("outcome reports", "Newest outcome reports from communities.", "/?kind=outcome", "/feeds/outcomes")
    return FeedInfo("everything", "Newest proposals and outcome reports.", "/", "/feeds/all")


def community_info(did: str, name: str | None) -> FeedInfo:
    return FeedInfo(
        f"outcome reports by {name or did}",
        "Every experiment this community reported.",
        community_url(did),
        f"/feeds/communities/{did}",
    )


def tag_info(tag: str) -> FeedInfo:
    return FeedInfo(f"proposals tagged {tag}", f"Newest proposals tagged {tag}.", tag_url(tag), f"/feeds/tags/{tag}")


def proposal_info(proposal_id: str, title: str) -> FeedInfo:
    return FeedInfo(
        f"outcome reports on “{title}”",
        "Outcome reports communities published about this proposal.",
        proposal_url(proposal_id),
        f"/feeds/proposals/{proposal_id}",
    )


def replies_info(event_id: str) -> FeedInfo:
    return FeedInfo(
        f"replies to {event_id[:12]}",
        "Arguments published in reply to this event.",
        event_url(event_id),
        f"/feeds/events/{event_id}/replies",
    )


def adoptions_info(did: str, name: str | None) -> FeedInfo:
    return FeedInfo(
        f"rule-set changes of {name or did}",
        "Every proposal this community adopted or dropped.",
        f"{community_url(did)}/rules",
        f"/feeds/communities/{did}/adoptions",
    )


def alternates(info: FeedInfo) -> list[tuple[str, str, str]]:
    """(type, title, href) of the two formats, for <link rel=alternate>."""
    return [
        ("application/atom+xml", f"{info.title} (Atom)", info.path + ".atom"),
        ("application/feed+json", f"{info.title} (JSON Feed)", info.path + ".json"),
    ]

"""What templates receive: stored events turned into small view objects.

URLs of pages are built here and nowhere else, so they stay stable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from sqlalchemy.engine import Connection
from starlette.requests import Request

from feeds import queries
from feeds.render import short_did
from feeds.scorecards import Scores, badges
from forum.store import Stored

# --------------------------------------------------------------------------- URLs


def proposal_url(event_id: str) -> str:
    return f"/proposals/{event_id}"


def outcome_url(event_id: str) -> str:
    return f"/outcomes/{event_id}"


def agent_url(did: str) -> str:
    return f"/agents/{quote(did, safe=':')}"


def community_url(did: str) -> str:
    return f"/communities/{quote(did, safe=':')}"


def event_url(event_id: str) -> str:
    return f"/events/{event_id}"


def tag_url(tag: str) -> str:
    return "/?" + urlencode({"tag": tag})


def page_url(s: Stored) -> str:
    """The page that shows an event (what /events/{id} redirects to)."""
    ev = s.event
    if ev.kind == "proposal":
        return proposal_url(ev.id)
    if ev.kind == "outcome":
        return outcome_url(ev.id)
    if ev.kind == "agent":
        return agent_url(ev.author)
    if ev.kind == "community":
        return community_url(ev.author)
    return event_url(ev.id)


def target_url(target: str) -> str:
    """Page of a rating target (an event id or a did)."""
    if target.startswith("did:"):
        return agent_url(target)
    return event_url(target)


# --------------------------------------------------------------------------- authors


@dataclass(frozen=True, slots=True)
class Author:
    did: str
    name: str | None
    is_community: bool
    has_agent: bool

    @property
    def short(self) -> str:
        return short_did(self.did)

    @property
    def url(self) -> str:
        return community_url(self.did) if self.is_community else agent_url(self.did)

    @property
    def label(self) -> str:
        return self.name or self.short


def author(did: str, profiles: Mapping[str, Mapping[str, Stored]], *, as_community: bool = False) -> Author:
    """How to name ``did``: its community name for outcome reports, else its agent name."""
    p = profiles.get(did, {})
    agent, community = p.get("agent"), p.get("community")
    if as_community and community is not None:
        return Author(did, community.event.body["name"], True, agent is not None)
    if agent is not None:
        return Author(did, agent.event.body["name"], False, True)
    if community is not None:
        return Author(did, community.event.body["name"], True, False)
    return Author(did, None, False, False)


class Names:
    """Lazily gathered dids, resolved with one query per page."""

    def __init__(self) -> None:
        self.dids: set[str] = set()
        self.profiles: dict[str, dict[str, Stored]] = {}

    def want(self, *dids: str) -> None:
        self.dids.update(d for d in dids if d.startswith("did:"))

    def load(self, conn: Connection) -> None:
        missing = {d for d in self.dids if d not in self.profiles}
        if missing:
            self.profiles.update(queries.profiles(conn, missing))

    def __call__(self, did: str, *, as_community: bool = False) -> Author:
        return author(did, self.profiles, as_community=as_community)


# --------------------------------------------------------------------------- list items


@dataclass(slots=True)
class Item:
    """One post in a list: a proposal or an outcome report (or, on agent pages, a criterion)."""

    s: Stored
    author: Author
    scores: Scores
    proposal: Stored | None = None  # the proposal an outcome reports on
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ev(self) -> Any:
        return self.s.event

    @property
    def body(self) -> dict[str, Any]:
        return self.s.event.body

    @property
    def url(self) -> str:
        return page_url(self.s)

    @property
    def look(self) -> tuple[Any, ...]:
        """Everything the list item shows that is not fixed by the event itself."""
        sc = self.scores
        p = self.proposal
        return (
            self.s.event.id,
            self.s.retracted,
            self.author,
            sc.count,
            sc.mean,
            sc.bridging.status,
            sc.communities,
            sc.success_rate,
            sc.shrunk_mean,
            p.event.body.get("title") if p is not None else None,
        )

    @property
    def title(self) -> str:
        b = self.s.event.body
        if self.s.event.kind in ("proposal", "criterion"):
            return str(b["title"])
        if self.s.event.kind == "outcome":
            return str(self.proposal.event.body["title"]) if self.proposal else "an unknown proposal"
        return self.s.event.kind


def prepare(conn: Connection, rows: Sequence[Stored], names: Names) -> dict[str, Stored]:
    """In the page's database trip: the proposals outcome reports refer to, and authors' names."""
    proposals = queries.by_ids(conn, [s.event.body["proposal"] for s in rows if s.event.kind == "outcome"])
    names.want(*(s.event.author for s in rows))
    names.load(conn)
    return proposals


async def items(request: Request, rows: Sequence[Stored], names: Names, proposals: Mapping[str, Stored]) -> list[Item]:
    """List items with their authors, proposals (for outcomes) and score badges."""
    targets = [s.event.id for s in rows if s.event.kind in ("proposal", "outcome", "criterion")]
    own_proposals = [s.event.id for s in rows if s.event.kind == "proposal"]
    scores = await badges(request, targets, own_proposals)
    return [
        Item(
            s=s,
            author=names(s.event.author, as_community=s.event.kind == "outcome"),
            scores=scores.get(s.event.id, Scores()),
            proposal=proposals.get(s.event.body["proposal"]) if s.event.kind == "outcome" else None,
        )
        for s in rows
    ]

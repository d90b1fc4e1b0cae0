"""Read-only queries behind the public pages and feeds.

Every query here is shaped to walk an index of forum/schema.py and stop early:

* lists by kind walk ``ix_events_kind_seq`` (kind, seq) backwards, one query per
  kind, merged here (an ``IN`` over two kinds cannot give seq order from that
  index);
* lists by author walk ``ix_events_author_kind_seq`` (author, kind, seq);
* lists by tag walk ``event_tags`` (tag, seq) and join ``events`` on its key;
* the outcome reports on a proposal and its newer versions walk the partial
  expression indexes ``ix_events_outcome_proposal`` and
  ``ix_events_proposal_revises`` (migration 0002), so a popular proposal's
  thousands of ratings are never visited;
* the replies to an event and the amendments of a proposal walk
  ``ix_events_reply_target`` and ``ix_events_amendment_proposal``
  (migration 0005), for the same reason;
* other things that refer to an event (ratings, retractions) walk
  ``event_refs`` (ref, seq) and join ``events`` on its key;
* per-target rating aggregates and a target's newest current ratings read
  ``ratings`` through ``ix_ratings_target_seq`` (target, seq).

``clients/bench/pages.py`` prints the plan of every query a page runs.
All functions are synchronous and take an open :class:`Connection`: a page
runs its queries together through :class:`feeds.reader.Reader`. Statements are
built once per shape (with bound parameters) and reused, so SQLAlchemy
compiles each only once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import Integer, and_, bindparam, cast, false, func, literal_column, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.sql import Select

from forum.protocol.events import Event
from forum.schema import (
    AmendmentProposal,
    OutcomeProposal,
    ProposalRevises,
    ReplyTarget,
    event_refs,
    event_tags,
    events,
    ratings,
)
from forum.store import Stored, event_from_row

FEED_KINDS = ("proposal", "outcome")
PROFILE_KINDS = ("agent", "community")
HISTOGRAM_BINS = 10
_CHUNK = 500
_LIVE = events.c.retracted == false()


EVENTS_KEPT = 4096
"""Decoded events kept (about 12 MB at the benchmark's sizes): a page shows 25 to 60 events and
the same ones request after request (newest posts, their authors' profiles); decoding one (JSON
and the :class:`Event`) cost more than the rest of reading its row."""
_EVENTS: OrderedDict[tuple[str, str], Event] = OrderedDict()
_EVENTS_LOCK = threading.Lock()  # pages decode in several reader threads at once


def stored(row: Any) -> Stored:
    """A row as :class:`Stored`; its event decoded once while kept. An event id is the hash of
    its payload, so (id, sig) names one immutable event in any database; ``retracted`` is the row's."""
    key = (row.id, row.sig)
    with _EVENTS_LOCK:
        ev = _EVENTS.get(key)
        if ev is not None:
            _EVENTS.move_to_end(key)
    if ev is None:
        ev = event_from_row(row.payload, row.sig, row.id)
        with _EVENTS_LOCK:
            _EVENTS[key] = ev
            if len(_EVENTS) > EVENTS_KEPT:
                _EVENTS.popitem(last=False)
    return Stored(seq=row.seq, event=ev, retracted=bool(row.retracted), received_at=row.received_at)


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a list, newest first, with the cursors of its neighbours."""

    items: list[Stored]
    older: int | None  # pass as before= to get the next older page
    newer: int | None  # pass as after= to get the next newer page


def _page(rows: list[Stored], limit: int, *, before: int | None, after: int | None) -> Page:
    """Rows come newest first when paging back (after is None), oldest first when forward."""
    if after is not None:
        more_newer = len(rows) > limit
        rows = rows[:limit]
        rows.reverse()
        return Page(rows, older=rows[-1].seq if rows else None, newer=rows[0].seq if more_newer and rows else None)
    more_older = len(rows) > limit
    rows = rows[:limit]
    return Page(
        rows,
        older=rows[-1].seq if more_older and rows else None,
        newer=rows[0].seq if before is not None and rows else None,
    )


def _window(stmt: Select[Any], col: Any, before: bool, after: bool) -> Select[Any]:
    if before:
        stmt = stmt.where(col < bindparam("before", type_=Integer))
    if after:
        stmt = stmt.where(col > bindparam("after", type_=Integer))
    return stmt.order_by(col.asc() if after else col.desc()).limit(bindparam("limit", type_=Integer))


@lru_cache(maxsize=64)
def _feed_stmt(by_tag: bool, by_author: bool, before: bool, after: bool) -> Select[Any]:
    if by_tag:
        stmt = (
            select(events)
            .select_from(event_tags.join(events, events.c.seq == event_tags.c.seq))
            .where(event_tags.c.tag == bindparam("tag"), events.c.kind.in_(bindparam("kinds", expanding=True)), _LIVE)
        )
        col = event_tags.c.seq
    else:
        stmt = select(events).where(events.c.kind == bindparam("kind"), _LIVE)
        col = events.c.seq
    if by_author:
        stmt = stmt.where(events.c.author == bindparam("author"))
    return _window(stmt, col, before, after)


def feed(
    conn: Connection,
    *,
    kinds: Sequence[str] = FEED_KINDS,
    tag: str | None = None,
    author: str | None = None,
    before: int | None = None,
    after: int | None = None,
    limit: int = 25,
) -> Page:
    """Events of ``kinds`` that are not retracted, optionally of one tag or one author.

    With ``after``: the ``limit`` oldest newer than it (returned newest first);
    otherwise the ``limit`` newest (older than ``before`` if given).
    """
    params: dict[str, Any] = {"limit": limit + 1, "before": before, "after": after, "author": author}
    stmt = _feed_stmt(tag is not None, author is not None, before is not None, after is not None)
    if tag is not None:
        raw = list(conn.execute(stmt, {**params, "tag": tag, "kinds": list(kinds)}).all())
    else:
        raw = []
        for kind in kinds:
            raw.extend(conn.execute(stmt, {**params, "kind": kind}).all())
        raw.sort(key=lambda r: r.seq, reverse=after is None)
    return _page([stored(r) for r in raw[: limit + 1]], limit, before=before, after=after)


_BY_ID = select(events).where(events.c.id == bindparam("id"))
_BY_IDS = select(events).where(events.c.id.in_(bindparam("ids", expanding=True)))


def by_id(conn: Connection, event_id: str) -> Stored | None:
    row = conn.execute(_BY_ID, {"id": event_id}).first()
    return None if row is None else stored(row)


def by_ids(conn: Connection, ids: Iterable[str]) -> dict[str, Stored]:
    wanted = sorted({i for i in ids if len(i) == 64})
    out: dict[str, Stored] = {}
    for chunk in _chunks(wanted):
        for row in conn.execute(_BY_IDS, {"ids": list(chunk)}).all():
            s = stored(row)
            out[s.event.id] = s
    return out


_PROFILES = select(events).where(
    events.c.seq.in_(
        select(func.max(events.c.seq))
        .where(
            events.c.author.in_(bindparam("dids", expanding=True)),
            events.c.kind.in_(PROFILE_KINDS),
            _LIVE,
        )
        .group_by(events.c.author, events.c.kind)
    )
)


def profiles(conn: Connection, dids: Iterable[str]) -> dict[str, dict[str, Stored]]:
    """The current (latest, not retracted) agent and community profile of each did."""
    wanted = sorted({d for d in dids if d.startswith("did:")})
    out: dict[str, dict[str, Stored]] = {}
    for chunk in _chunks(wanted):
        for row in conn.execute(_PROFILES, {"dids": list(chunk)}).all():
            s = stored(row)
            out.setdefault(s.event.author, {})[s.event.kind] = s
    return out


# Kinds whose one reference is a body field with its own partial index (migration 0005):
# a popular target's event_refs entries are mostly ratings, which these never visit.
_BODY_REF = {"reply": (ReplyTarget, "'reply'"), "amendment": (AmendmentProposal, "'amendment'")}


@lru_cache(maxsize=64)
def _referring_stmt(kinds: tuple[str, ...] | int, before: bool, by_author: bool, newest_first: bool, include_retracted: bool) -> Select[Any]:
    if isinstance(kinds, tuple):  # one kind of _BODY_REF
        field, literal = _BODY_REF[kinds[0]]
        stmt = select(events).where(field(events.c.payload) == bindparam("ref"), events.c.kind == literal_column(literal))
        seq = events.c.seq
    else:
        stmt = (
            select(events)
            .select_from(event_refs.join(events, events.c.seq == event_refs.c.seq))
            .where(event_refs.c.ref == bindparam("ref"), events.c.kind.in_(bindparam("kinds", expanding=True)))
        )
        seq = event_refs.c.seq
    if not include_retracted:
        stmt = stmt.where(_LIVE)
    if before:
        stmt = stmt.where(seq < bindparam("before", type_=Integer))
    if by_author:
        stmt = stmt.where(events.c.author == bindparam("author"))
    order = seq.desc() if newest_first else seq.asc()
    return stmt.order_by(order).limit(bindparam("limit", type_=Integer))


def referring(
    conn: Connection,
    ref: str,
    kinds: Sequence[str],
    *,
    limit: int = 100,
    before: int | None = None,
    author: str | None = None,
    newest_first: bool = True,
    include_retracted: bool = False,
) -> list[Stored]:
    """Events of ``kinds`` whose body points at ``ref`` (through ``event_refs``, or a body-field index)."""
    shape: tuple[str, ...] | int = (kinds[0],) if len(kinds) == 1 and kinds[0] in _BODY_REF else len(kinds)
    stmt = _referring_stmt(shape, before is not None, author is not None, newest_first, include_retracted)
    params = {"ref": ref, "kinds": list(kinds), "limit": limit, "before": before, "author": author}
    if isinstance(shape, tuple):
        del params["kinds"]
    return [stored(r) for r in conn.execute(stmt, params).all()]


_IS_OUTCOME = events.c.kind == literal_column("'outcome'")  # a literal, so the partial index applies
_IS_PROPOSAL = events.c.kind == literal_column("'proposal'")


@lru_cache(maxsize=16)
def _outcomes_stmt(before: bool, by_author: bool, newest_first: bool) -> Select[Any]:
    stmt = select(events).where(OutcomeProposal(events.c.payload) == bindparam("proposal"), _IS_OUTCOME, _LIVE)
    if before:
        stmt = stmt.where(events.c.seq < bindparam("before", type_=Integer))
    if by_author:
        stmt = stmt.where(events.c.author == bindparam("author"))
    return stmt.order_by(events.c.seq.desc() if newest_first else events.c.seq.asc()).limit(bindparam("limit", type_=Integer))


def outcomes_of(
    conn: Connection,
    proposal_id: str,
    *,
    limit: int = 100,
    before: int | None = None,
    author: str | None = None,
    newest_first: bool = True,
) -> list[Stored]:
    """Outcome reports on a proposal that are not retracted (``ix_events_outcome_proposal``)."""
    stmt = _outcomes_stmt(before is not None, author is not None, newest_first)
    params = {"proposal": proposal_id, "limit": limit, "before": before, "author": author}
    return [stored(r) for r in conn.execute(stmt, params).all()]


_REVISIONS = (
    select(events)
    .where(ProposalRevises(events.c.payload) == bindparam("proposal"), _IS_PROPOSAL, events.c.author == bindparam("author"))
    .order_by(events.c.seq)
    .limit(50)
)


def revisions_of(conn: Connection, proposal_id: str, author: str) -> list[Stored]:
    """Proposals by ``author`` that revise ``proposal_id``, retracted ones included (``ix_events_proposal_revises``)."""
    return [stored(r) for r in conn.execute(_REVISIONS, {"proposal": proposal_id, "author": author}).all()]


_COMMUNITIES_TRIED = select(func.count(func.distinct(events.c.author))).where(
    OutcomeProposal(events.c.payload) == bindparam("proposal"), _IS_OUTCOME, _LIVE
)
_COMMUNITIES_TRIED_MANY = (
    select(OutcomeProposal(events.c.payload), func.count(func.distinct(events.c.author)))
    .where(OutcomeProposal(events.c.payload).in_(bindparam("proposals", expanding=True)), _IS_OUTCOME, _LIVE)
    .group_by(text("1"))
)


def communities_tried(conn: Connection, proposal_ids: Sequence[str]) -> dict[str, int]:
    """Number of distinct communities that reported an outcome for each proposal.

    PostgreSQL answers an ``IN`` list from the expression index in one query;
    SQLite's planner would rather walk every outcome for it, so there it is one
    small query per proposal.
    """
    out: dict[str, int] = {}
    if conn.dialect.name == "postgresql":
        for chunk in _chunks(list(proposal_ids)):
            out.update((r[0], int(r[1])) for r in conn.execute(_COMMUNITIES_TRIED_MANY, {"proposals": list(chunk)}).all())
        return out
    for pid in proposal_ids:
        n = int(conn.execute(_COMMUNITIES_TRIED, {"proposal": pid}).scalar_one())
        if n:
            out[pid] = n
    return out


@dataclass(frozen=True, slots=True)
class RatingStats:
    count: int
    mean: float | None


_RATING_STATS = (
    select(ratings.c.target, func.count(), func.avg(ratings.c.score))
    .where(ratings.c.target.in_(bindparam("targets", expanding=True)))
    .group_by(ratings.c.target)
)


def rating_stats(conn: Connection, targets: Sequence[str]) -> dict[str, RatingStats]:
    """Count and mean of the current ratings of each target."""
    out: dict[str, RatingStats] = {}
    for chunk in _chunks(list(targets)):
        for target, count, mean in conn.execute(_RATING_STATS, {"targets": list(chunk)}).all():
            out[target] = RatingStats(int(count), None if mean is None else float(mean))
    return out


@lru_cache(maxsize=8)
def _histogram_stmt(dialect: str, bins: int) -> Any:
    scaled = (ratings.c.score + 1.0) * (bins / 2.0)
    # PostgreSQL rounds a cast to integer; SQLite truncates (and scaled >= 0).
    bin_ = cast(func.floor(scaled), Integer) if dialect == "postgresql" else cast(scaled, Integer)
    return (
        select(bin_.label("bin"), func.count(), func.sum(ratings.c.score))
        .where(ratings.c.target == bindparam("target"))
        .group_by(text("1"))
    )


def histogram_and_stats(conn: Connection, target: str, bins: int = HISTOGRAM_BINS) -> tuple[list[int], RatingStats | None]:
    """Counts of current ratings of ``target`` in ``bins`` equal bins over [-1, 1], and their count and mean."""
    counts = [0] * bins
    total = 0.0
    for b, n, s in conn.execute(_histogram_stmt(conn.dialect.name, bins), {"target": target}).all():
        counts[max(0, min(bins - 1, int(b)))] += int(n)
        total += float(s or 0.0)
    n_all = sum(counts)
    return counts, (RatingStats(n_all, total / n_all) if n_all else None)


def histogram(conn: Connection, target: str, bins: int = HISTOGRAM_BINS) -> list[int]:
    return histogram_and_stats(conn, target, bins)[0]


_CRITERIA_SQLITE = text(
    "SELECT j.key, count(*), avg(j.value) FROM ratings, json_each(ratings.criteria) AS j "
    "WHERE ratings.target = :t GROUP BY j.key"
)
_CRITERIA_PG = text(
    "SELECT j.key, count(*), avg(j.value::float8) FROM ratings, jsonb_each_text(ratings.criteria::jsonb) AS j "
    "WHERE ratings.target = :t GROUP BY j.key"
)


def criteria_stats(conn: Connection, target: str) -> dict[str, RatingStats]:
    """Count and mean per criterion over the current ratings of ``target``."""
    stmt = _CRITERIA_PG if conn.dialect.name == "postgresql" else _CRITERIA_SQLITE
    rows = conn.execute(stmt, {"t": target}).all()
    return {str(k): RatingStats(int(n), None if m is None else float(m)) for k, n, m in rows}


_CURRENT = select(ratings.c.target, ratings.c.seq).where(
    ratings.c.rater == bindparam("rater"), ratings.c.target.in_(bindparam("targets", expanding=True))
)


def current_rating_seqs(conn: Connection, rater: str, targets: Sequence[str]) -> dict[str, int]:
    """seq of the current rating by ``rater`` of each target (primary key lookups)."""
    out: dict[str, int] = {}
    for chunk in _chunks(list(targets)):
        out.update((t, int(s)) for t, s in conn.execute(_CURRENT, {"rater": rater, "targets": list(chunk)}).all())
    return out


def by_author(
    conn: Connection,
    author: str,
    kinds: Sequence[str],
    *,
    before: int | None = None,
    after: int | None = None,
    limit: int = 25,
) -> Page:
    """Not-retracted events of ``kinds`` by ``author``, newest first (one index walk per kind)."""
    return feed(conn, kinds=kinds, author=author, before=before, after=after, limit=limit)


_COUNT_BY_AUTHOR = (
    select(func.count())
    .select_from(events)
    .where(and_(events.c.author == bindparam("author"), events.c.kind == bindparam("kind"), _LIVE))
)


def count_by_author(conn: Connection, author: str, kind: str) -> int:
    return int(conn.execute(_COUNT_BY_AUTHOR, {"author": author, "kind": kind}).scalar_one())


_WROTE = select(events.c.seq).where(events.c.author == bindparam("did")).limit(1)
_RATED = select(ratings.c.seq).where(ratings.c.target == bindparam("did")).limit(1)


def known_author(conn: Connection, did: str) -> bool:
    """Whether ``did`` wrote anything or was rated."""
    if conn.execute(_WROTE, {"did": did}).first() is not None:
        return True
    return conn.execute(_RATED, {"did": did}).first() is not None


# --------------------------------------------------------------------------- honest lists

_CURRENT_RATINGS = (
    select(events)
    .select_from(ratings.join(events, events.c.seq == ratings.c.seq))
    .where(ratings.c.target == bindparam("t"))
    .order_by(ratings.c.seq.desc())
    .limit(bindparam("limit", type_=Integer))
)


def current_ratings(conn: Connection, target: str, limit: int = 10) -> list[Stored]:
    """The newest *current* ratings of ``target``: one per agent (``ratings`` holds each rater's current one)."""
    return [stored(r) for r in conn.execute(_CURRENT_RATINGS, {"t": target, "limit": limit}).all()]


_CURRENT_OF_TARGET = select(ratings.c.seq).where(
    ratings.c.target == bindparam("t"), ratings.c.rater.in_(bindparam("raters", expanding=True))
)


def current_seqs_of_target(conn: Connection, target: str, raters: Sequence[str]) -> set[int]:
    """seqs of the current ratings of ``target`` by ``raters`` (to mark the others "replaced")."""
    out: set[int] = set()
    for chunk in _chunks(sorted(set(raters))):
        out.update(int(s) for (s,) in conn.execute(_CURRENT_OF_TARGET, {"t": target, "raters": list(chunk)}).all())
    return out


_EXPERIMENTS = (
    select(func.count(func.distinct(OutcomeProposal(events.c.payload))))
    .select_from(events)
    .where(events.c.author == bindparam("author"), _IS_OUTCOME, _LIVE)
)


def experiments_count(conn: Connection, community: str) -> int:
    """Distinct proposals a community reported on: its experiments (reports on one proposal are one)."""
    return int(conn.execute(_EXPERIMENTS, {"author": community}).scalar_one())


_TRIED_BY = (
    select(OutcomeProposal(events.c.payload))
    .where(events.c.author == bindparam("author"), _IS_OUTCOME, _LIVE)
    .distinct()
)


def proposals_tried_by(conn: Connection, community: str) -> set[str]:
    return {str(p) for (p,) in conn.execute(_TRIED_BY, {"author": community}).all() if p}


_WITH_TAG = (
    select(events.c.id)
    .select_from(event_tags.join(events, events.c.seq == event_tags.c.seq))
    .where(event_tags.c.tag == bindparam("tag"), _IS_PROPOSAL, _LIVE)
)


def proposals_with_tag(conn: Connection, tag: str) -> set[str]:
    return {str(i) for (i,) in conn.execute(_WITH_TAG, {"tag": tag}).all()}


_COMMUNITY_PROFILES = select(events).where(
    events.c.seq.in_(
        select(func.max(events.c.seq))
        .where(events.c.kind == literal_column("'community'"), _LIVE)
        .group_by(events.c.author)
    )
)


def community_profiles(conn: Connection) -> list[Stored]:
    """Every community's current profile (latest, not retracted), newest first."""
    rows = [stored(r) for r in conn.execute(_COMMUNITY_PROFILES).all()]
    rows.sort(key=lambda s: -s.seq)
    return rows


_EXPERIMENTS_MANY = (
    select(events.c.author, func.count(func.distinct(OutcomeProposal(events.c.payload))))
    .where(events.c.author.in_(bindparam("authors", expanding=True)), _IS_OUTCOME, _LIVE)
    .group_by(events.c.author)
)


def experiments_counts(conn: Connection, communities: Sequence[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for chunk in _chunks(list(communities)):
        out.update((str(a), int(n)) for a, n in conn.execute(_EXPERIMENTS_MANY, {"authors": list(chunk)}).all())
    return out

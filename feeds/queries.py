"""Read-only queries behind the public pages and feeds.

Every query here is shaped to walk an index of forum/schema.py and stop early:

* lists by kind walk ``ix_events_kind_seq`` (kind, seq) backwards, one query per
  kind, merged here (an ``IN`` over two kinds cannot give seq order from that
  index);
* lists by author walk ``ix_events_author_kind_seq`` (author, kind, seq);
* lists by tag walk ``event_tags`` (tag, seq) and join ``events`` on its key;
* what refers to an event (outcome reports, revisions, ratings, retractions)
  walks ``event_refs`` (ref, seq) and joins ``events`` on its key;
* per-target rating aggregates read ``ratings`` through ``ix_ratings_target``.

``tests/bench/bench_pages.py`` prints the plan of every query a page runs.
All functions take an open :class:`AsyncConnection`, so a page uses one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, and_, cast, false, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from forum.schema import event_refs, event_tags, events, ratings
from forum.store import Stored, event_from_row

FEED_KINDS = ("proposal", "outcome")
PROFILE_KINDS = ("agent", "community")
HISTOGRAM_BINS = 10
_CHUNK = 500


def stored(row: Any) -> Stored:
    return Stored(
        seq=row.seq,
        event=event_from_row(row.payload, row.sig, row.id),
        retracted=bool(row.retracted),
        received_at=row.received_at,
    )


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


def _seq_window(col: Any, before: int | None, after: int | None) -> tuple[list[Any], Any]:
    cond = []
    if before is not None:
        cond.append(col < before)
    if after is not None:
        cond.append(col > after)
    order = col.asc() if after is not None else col.desc()
    return cond, order


async def feed(
    conn: AsyncConnection,
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
    fetch = limit + 1
    live = events.c.retracted == false()
    if tag is not None:
        cond, order = _seq_window(event_tags.c.seq, before, after)
        stmt = (
            select(events)
            .select_from(event_tags.join(events, events.c.seq == event_tags.c.seq))
            .where(event_tags.c.tag == tag, events.c.kind.in_(list(kinds)), live, *cond)
            .order_by(order)
            .limit(fetch)
        )
        if author is not None:
            stmt = stmt.where(events.c.author == author)
        rows = [stored(r) for r in (await conn.execute(stmt)).all()]
    else:
        rows = []
        for kind in kinds:
            cond, order = _seq_window(events.c.seq, before, after)
            where = [events.c.kind == kind, live, *cond]
            if author is not None:
                where.append(events.c.author == author)
            stmt = select(events).where(*where).order_by(order).limit(fetch)
            rows.extend(stored(r) for r in (await conn.execute(stmt)).all())
        rows.sort(key=lambda s: s.seq, reverse=after is None)
    return _page(rows, limit, before=before, after=after)


async def by_id(conn: AsyncConnection, event_id: str) -> Stored | None:
    row = (await conn.execute(select(events).where(events.c.id == event_id))).first()
    return None if row is None else stored(row)


async def by_ids(conn: AsyncConnection, ids: Iterable[str]) -> dict[str, Stored]:
    wanted = sorted({i for i in ids if len(i) == 64})
    out: dict[str, Stored] = {}
    for chunk in _chunks(wanted):
        for row in (await conn.execute(select(events).where(events.c.id.in_(chunk)))).all():
            s = stored(row)
            out[s.event.id] = s
    return out


async def profiles(conn: AsyncConnection, dids: Iterable[str]) -> dict[str, dict[str, Stored]]:
    """The current (latest, not retracted) agent and community profile of each did."""
    wanted = sorted({d for d in dids if d.startswith("did:")})
    out: dict[str, dict[str, Stored]] = {}
    for chunk in _chunks(wanted):
        latest = (
            select(func.max(events.c.seq))
            .where(events.c.author.in_(chunk), events.c.kind.in_(PROFILE_KINDS), events.c.retracted == false())
            .group_by(events.c.author, events.c.kind)
        )
        rows = (await conn.execute(select(events).where(events.c.seq.in_(latest)))).all()
        for row in rows:
            s = stored(row)
            out.setdefault(s.event.author, {})[s.event.kind] = s
    return out


async def referring(
    conn: AsyncConnection,
    ref: str,
    kinds: Sequence[str],
    *,
    limit: int = 100,
    before: int | None = None,
    author: str | None = None,
    newest_first: bool = True,
    include_retracted: bool = False,
) -> list[Stored]:
    """Events of ``kinds`` whose body points at ``ref`` (through ``event_refs``)."""
    cond = [event_refs.c.ref == ref, events.c.kind.in_(list(kinds))]
    if not include_retracted:
        cond.append(events.c.retracted == false())
    if before is not None:
        cond.append(event_refs.c.seq < before)
    if author is not None:
        cond.append(events.c.author == author)
    stmt = (
        select(events)
        .select_from(event_refs.join(events, events.c.seq == event_refs.c.seq))
        .where(*cond)
        .order_by(event_refs.c.seq.desc() if newest_first else event_refs.c.seq.asc())
        .limit(limit)
    )
    return [stored(r) for r in (await conn.execute(stmt)).all()]


async def communities_tried(conn: AsyncConnection, proposal_ids: Sequence[str]) -> dict[str, int]:
    """Number of distinct communities that reported an outcome for each proposal."""
    out: dict[str, int] = {}
    for chunk in _chunks(list(proposal_ids)):
        stmt = (
            select(event_refs.c.ref, func.count(func.distinct(events.c.author)))
            .select_from(event_refs.join(events, events.c.seq == event_refs.c.seq))
            .where(event_refs.c.ref.in_(chunk), events.c.kind == "outcome", events.c.retracted == false())
            .group_by(event_refs.c.ref)
        )
        out.update((r[0], int(r[1])) for r in (await conn.execute(stmt)).all())
    return out


@dataclass(frozen=True, slots=True)
class RatingStats:
    count: int
    mean: float | None


async def rating_stats(conn: AsyncConnection, targets: Sequence[str]) -> dict[str, RatingStats]:
    """Count and mean of the current ratings of each target."""
    out: dict[str, RatingStats] = {}
    for chunk in _chunks(list(targets)):
        stmt = (
            select(ratings.c.target, func.count(), func.avg(ratings.c.score))
            .where(ratings.c.target.in_(chunk))
            .group_by(ratings.c.target)
        )
        for target, count, mean in (await conn.execute(stmt)).all():
            out[target] = RatingStats(int(count), None if mean is None else float(mean))
    return out


async def histogram(conn: AsyncConnection, target: str, bins: int = HISTOGRAM_BINS) -> list[int]:
    """Counts of current ratings of ``target`` in ``bins`` equal bins over [-1, 1]."""
    scaled = (ratings.c.score + 1.0) * (bins / 2.0)
    if conn.dialect.name == "postgresql":
        bin_ = cast(func.floor(scaled), Integer)
    else:
        bin_ = cast(scaled, Integer)  # SQLite truncates, and scaled >= 0
    stmt = select(bin_.label("bin"), func.count()).where(ratings.c.target == target).group_by(text("1"))
    counts = [0] * bins
    for b, n in (await conn.execute(stmt)).all():
        counts[max(0, min(bins - 1, int(b)))] += int(n)
    return counts


_CRITERIA_SQLITE = text(
    "SELECT j.key, count(*), avg(j.value) FROM ratings, json_each(ratings.criteria) AS j "
    "WHERE ratings.target = :t GROUP BY j.key"
)
_CRITERIA_PG = text(
    "SELECT j.key, count(*), avg(j.value::float8) FROM ratings, jsonb_each_text(ratings.criteria::jsonb) AS j "
    "WHERE ratings.target = :t GROUP BY j.key"
)


async def criteria_stats(conn: AsyncConnection, target: str) -> dict[str, RatingStats]:
    """Count and mean per criterion over the current ratings of ``target``."""
    stmt = _CRITERIA_PG if conn.dialect.name == "postgresql" else _CRITERIA_SQLITE
    rows = (await conn.execute(stmt, {"t": target})).all()
    return {str(k): RatingStats(int(n), None if m is None else float(m)) for k, n, m in rows}


async def current_rating_seqs(conn: AsyncConnection, rater: str, targets: Sequence[str]) -> dict[str, int]:
    """seq of the current rating by ``rater`` of each target (primary key lookups)."""
    out: dict[str, int] = {}
    for chunk in _chunks(list(targets)):
        stmt = select(ratings.c.target, ratings.c.seq).where(ratings.c.rater == rater, ratings.c.target.in_(chunk))
        out.update((t, int(s)) for t, s in (await conn.execute(stmt)).all())
    return out


async def by_author(
    conn: AsyncConnection,
    author: str,
    kinds: Sequence[str],
    *,
    before: int | None = None,
    after: int | None = None,
    limit: int = 25,
) -> Page:
    """Not-retracted events of ``kinds`` by ``author``, newest first (one index walk per kind)."""
    return await feed(conn, kinds=kinds, author=author, before=before, after=after, limit=limit)


async def count_by_author(conn: AsyncConnection, author: str, kind: str) -> int:
    stmt = select(func.count()).select_from(events).where(
        and_(events.c.author == author, events.c.kind == kind, events.c.retracted == false())
    )
    return int((await conn.execute(stmt)).scalar_one())


async def known_author(conn: AsyncConnection, did: str) -> bool:
    """Whether ``did`` wrote anything or was rated."""
    row = (await conn.execute(select(events.c.seq).where(events.c.author == did).limit(1))).first()
    if row is not None:
        return True
    row = (await conn.execute(select(ratings.c.seq).where(ratings.c.target == did).limit(1))).first()
    return row is not None

"""Storage of the log: the one place that reads and writes the database.

The writer path is :meth:`Store.write_batch`: one transaction per batch
(group commit). Inside it, under a lock that serializes every writer process
(PostgreSQL: an advisory transaction lock; SQLite: the database's own write
lock), it drops duplicates, applies the rules that need the log
(:func:`forum.protocol.events.check_context`), assigns consecutive ``seq`` numbers,
inserts the rows and the search index's (forum/searchindex.py), maintains the
current-ratings table, applies retractions and
(PostgreSQL) queues a ``NOTIFY`` carrying the seq range, delivered on commit.
Commit order therefore equals seq order, across any number of processes.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import and_, case, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from forum.protocol.errors import ProtocolError, StorageError
from forum.protocol.events import Event, Known, check_context, event_from_parsed
from forum.protocol.filters import Filter
from forum.schema import OutcomeProposal, event_refs, event_tags, events, ratings
from forum.searchindex import PG_INSERT as _PG_INSERT_SEARCH
from forum.searchindex import SQLITE_INSERT as _SQLITE_INSERT_SEARCH
from forum.searchindex import search_fields

WRITER_LOCK = 0x6D796C67  # pg_advisory_xact_lock key of the single logical writer
NOTIFY_CHANNEL = "mycelium_log"
_PROPOSAL_OF = ("amendment", "adoption")  # kinds whose Known carries body.proposal
_CHUNK = 900  # bound parameters per IN list (well inside SQLite's and asyncpg's limits)


@dataclass(frozen=True, slots=True)
class Stored:
    """An event as the log holds it."""

    seq: int
    event: Event
    retracted: bool = False
    received_at: int = 0

    @property
    def envelope_json(self) -> str:
        return self.event.envelope_json()


@dataclass(slots=True)  # not frozen: built per event on the event loop, and frozen init costs ~4x
class Accepted:
    seq: int


@dataclass(frozen=True, slots=True)
class Duplicate:
    pass


WriteResult = Accepted | Duplicate | ProtocolError


def event_from_row(payload: str, sig: str, event_id: str) -> Event:
    """Rebuild an :class:`Event` from a stored (already verified) payload."""
    return event_from_parsed(orjson.loads(payload), event_id, payload, sig)


def _envelope_rows(rows: Sequence[Any]) -> list[tuple[int, str]]:
    """(seq, envelope JSON) exactly as :meth:`Event.envelope_json` writes it (in a worker thread).

    Each payload is parsed once more, as :func:`event_from_row` would: a stored
    row that no longer parses fails the read instead of reaching a client.
    """
    dumps, loads = orjson.dumps, orjson.loads
    out = []
    for r in rows:
        try:
            loads(r.payload)
        except orjson.JSONDecodeError:
            raise StorageError(f"the stored payload of seq {r.seq} does not parse") from None
        out.append((r.seq, dumps({"payload": r.payload, "sig": r.sig}).decode()))
    return out


def _stored(row: Any) -> Stored:
    return Stored(
        seq=row.seq,
        event=event_from_row(row.payload, row.sig, row.id),
        retracted=bool(row.retracted),
        received_at=row.received_at,
    )


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


_UPSERT_RATING = text(
    """
    INSERT INTO ratings (rater, target, seq, created_at, score, confidence, criteria)
    VALUES (:rater, :target, :seq, :created_at, :score, :confidence, :criteria)
    ON CONFLICT (rater, target) DO UPDATE SET
        seq = excluded.seq, created_at = excluded.created_at, score = excluded.score,
        confidence = excluded.confidence, criteria = excluded.criteria
    WHERE ratings.created_at < excluded.created_at
       OR (ratings.created_at = excluded.created_at AND ratings.seq < excluded.seq)
    """
)


_EVENT_COLUMNS = "seq, id, kind, author, created_at, received_at, payload, sig, retracted"
_SQLITE_INSERT_EVENTS = f"INSERT INTO events ({_EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)"
_PG_INSERT_EVENTS = (
    f"INSERT INTO events ({_EVENT_COLUMNS}) SELECT s, i, k, a, c, r, p, g, false FROM unnest("
    "$1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::text[], $8::text[]"
    ") AS t(s, i, k, a, c, r, p, g)"
)
_PG_INSERT_REFS = "INSERT INTO event_refs (ref, seq) SELECT * FROM unnest($1::text[], $2::bigint[])"
_PG_INSERT_TAGS = "INSERT INTO event_tags (tag, seq) SELECT * FROM unnest($1::text[], $2::bigint[])"


def rating_row(seq: int, ev: Event) -> dict[str, Any]:
    body = ev.body
    return {
        "rater": ev.author,
        "target": body["target"],
        "seq": seq,
        "created_at": ev.created_at,
        "score": float(body["score"]),
        "confidence": None if body.get("confidence") is None else float(body["confidence"]),
        "criteria": orjson.dumps(body.get("criteria", {}), option=orjson.OPT_SORT_KEYS).decode(),
    }


class Store:
    """Reads and writes the log. One instance per process, shared by every request."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"
        # Names this process in its NOTIFY payloads, so its listener can skip its own commits.
        self.instance = uuid.uuid4().hex
        self._authors: set[str] = set()  # did:keys known to have authored an event (never shrinks)

    # ------------------------------------------------------------------ writes

    async def write_batch(self, batch: Sequence[Event]) -> list[WriteResult]:
        """Commit a batch in one transaction; returns one result per event, in order.

        Raises StorageError if the transaction failed (then nothing was stored).
        """
        try:
            async with self.engine.begin() as conn:
                results = await self._write(conn, batch)
        except ProtocolError:
            raise
        except Exception as e:
            raise StorageError(f"{type(e).__name__}: {e}") from e
        return results

    async def _write(self, conn: AsyncConnection, batch: Sequence[Event]) -> list[WriteResult]:
        if self.postgres:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": WRITER_LOCK})
        else:
            # Take SQLite's write lock now, so the head we read cannot move under us.
            await conn.execute(text("UPDATE events SET seq = seq WHERE 0"))
        head = (await conn.execute(select(func.coalesce(func.max(events.c.seq), 0)))).scalar_one()

        ids = list({ev.id for ev in batch})
        existing: set[str] = set()
        for chunk in _chunks(ids):
            rows = await conn.execute(select(events.c.id).where(events.c.id.in_(chunk)))
            existing.update(r[0] for r in rows)

        wanted = list({r for ev in batch for r in ev.refs if not r.startswith("did:")})
        known: dict[str, Known] = {}
        await self._known(conn, wanted, known)
        # Accepting an amendment checks the author of the proposal it amends: one more round.
        amended = [k.proposal for k in known.values() if k.proposal is not None and k.proposal not in known]
        if amended:
            await self._known(conn, amended, known)

        outcome_authors = list({ev.author for ev in batch if ev.kind in ("outcome", "adoption")})
        communities: set[str] = set()
        for chunk in _chunks(outcome_authors):
            rows = await conn.execute(
                select(events.c.author)
                .where(and_(events.c.kind == "community", events.c.author.in_(chunk), events.c.retracted.is_(False)))
                .distinct()
            )
            communities.update(r[0] for r in rows)

        # Only real targets are scored: a rated did:key must have authored an event.
        # Having authored is permanent, so the answer is cached; an unknown did:key costs
        # one index probe that stops at its first event (a DISTINCT over IN read every
        # event of every rated author: work that grew with the log).
        rated_dids = {ev.body["target"] for ev in batch if ev.kind == "rating" and ev.body["target"].startswith("did:")}
        for did in rated_dids - self._authors:
            probe = select(events.c.seq).where(events.c.author == did).limit(1)
            if (await conn.execute(probe)).first() is not None:
                self._authors.add(did)
        authors = rated_dids & self._authors

        results: list[WriteResult] = []
        accepted: list[tuple[int, Event]] = []
        seen: set[str] = set()
        seq = head
        for ev in batch:
            if ev.id in existing or ev.id in seen:
                results.append(Duplicate())
                continue
            try:
                check_context(ev, known.get, communities.__contains__, authors.__contains__)
            except ProtocolError as e:
                results.append(e)
                continue
            seq += 1
            seen.add(ev.id)
            known[ev.id] = Known(ev.kind, ev.author, ev.body.get("proposal") if ev.kind in _PROPOSAL_OF else None)
            authors.add(ev.author)
            if ev.kind == "community":
                communities.add(ev.author)
            accepted.append((seq, ev))
            results.append(Accepted(seq))

        if accepted:
            await self._insert(conn, accepted)
            if self.postgres:
                await conn.execute(
                    text("SELECT pg_notify(:c, :p)"),
                    {"c": NOTIFY_CHANNEL, "p": f"{accepted[0][0]}:{accepted[-1][0]}:{self.instance}"},
                )
        return results

    @staticmethod
    async def _known(conn: AsyncConnection, ids: Sequence[str], known: dict[str, Known]) -> None:
        """Kind, author (and, for amendments and adoptions, body.proposal) of the held ``ids``."""
        proposal_of = case((events.c.kind.in_(_PROPOSAL_OF), OutcomeProposal(events.c.payload)), else_=None)
        for chunk in _chunks(ids):
            rows = await conn.execute(
                select(events.c.id, events.c.kind, events.c.author, proposal_of.label("proposal")).where(
                    events.c.id.in_(chunk)
                )
            )
            known.update((r.id, Known(r.kind, r.author, r.proposal)) for r in rows)

    async def _insert(self, conn: AsyncConnection, accepted: list[tuple[int, Event]]) -> None:
        """The batch's rows in a few statements: PostgreSQL inserts each table from
        ``unnest`` of one array per column (one statement, no per-row binding);
        SQLite runs the driver's ``executemany`` over plain tuples."""
        now = int(time.time() * 1000)
        rows = [(seq, ev.id, ev.kind, ev.author, ev.created_at, now, ev.payload, ev.sig) for seq, ev in accepted]
        refs = [(r, seq) for seq, ev in accepted for r in set(ev.refs)]
        tags = [(t, seq) for seq, ev in accepted for t in set(ev.tags)]
        search = [(seq, *f) for seq, ev in accepted if (f := search_fields(ev.kind, ev.body)) is not None]
        if self.postgres:
            await conn.exec_driver_sql(_PG_INSERT_EVENTS, tuple(list(col) for col in zip(*rows, strict=True)))
            if refs:
                await conn.exec_driver_sql(_PG_INSERT_REFS, tuple(list(col) for col in zip(*refs, strict=True)))
            if tags:
                await conn.exec_driver_sql(_PG_INSERT_TAGS, tuple(list(col) for col in zip(*tags, strict=True)))
            if search:
                await conn.exec_driver_sql(_PG_INSERT_SEARCH, tuple(list(col) for col in zip(*search, strict=True)))
        else:
            await conn.exec_driver_sql(_SQLITE_INSERT_EVENTS, rows)
            if refs:
                await conn.exec_driver_sql("INSERT INTO event_refs (ref, seq) VALUES (?, ?)", refs)
            if tags:
                await conn.exec_driver_sql("INSERT INTO event_tags (tag, seq) VALUES (?, ?)", tags)
            if search:
                await conn.exec_driver_sql(_SQLITE_INSERT_SEARCH, search)
        rating_rows = [rating_row(seq, ev) for seq, ev in accepted if ev.kind == "rating"]
        if rating_rows:
            await conn.execute(_UPSERT_RATING, rating_rows)
        retracted = [ev.body["target"] for _, ev in accepted if ev.kind == "retraction"]
        if retracted:
            await self._retract(conn, retracted)

    async def _retract(self, conn: AsyncConnection, target_ids: list[str]) -> None:
        await conn.execute(update(events).where(events.c.id.in_(target_ids)).values(retracted=True))
        rows = await conn.execute(
            select(events.c.seq, events.c.author, events.c.payload).where(
                and_(events.c.id.in_(target_ids), events.c.kind == "rating")
            )
        )
        for seq, rater, payload in rows.all():
            target = orjson.loads(payload)["body"]["target"]
            await conn.execute(
                text("DELETE FROM ratings WHERE rater = :r AND target = :t AND seq = :s"),
                {"r": rater, "t": target, "s": seq},
            )
            # The latest rating that is still standing becomes current again.
            prev = (
                await conn.execute(
                    select(events.c.seq, events.c.id, events.c.payload, events.c.sig)
                    .join(event_refs, event_refs.c.seq == events.c.seq)
                    .where(
                        and_(
                            event_refs.c.ref == target,
                            events.c.author == rater,
                            events.c.kind == "rating",
                            events.c.retracted.is_(False),
                        )
                    )
                    .order_by(events.c.created_at.desc(), events.c.seq.desc())
                    .limit(1)
                )
            ).first()
            if prev is not None:
                ev = event_from_row(prev.payload, prev.sig, prev.id)
                await conn.execute(_UPSERT_RATING, [rating_row(prev.seq, ev)])

    # ------------------------------------------------------------------ reads

    async def head(self) -> int:
        """The largest seq in the log (0 when empty)."""
        async with self.engine.connect() as conn:
            return int((await conn.execute(select(func.coalesce(func.max(events.c.seq), 0)))).scalar_one())

    async def id_at(self, seq: int) -> str | None:
        """The id of the event at ``seq`` (None when there is none)."""
        async with self.engine.connect() as conn:
            return (await conn.execute(select(events.c.id).where(events.c.seq == seq))).scalar()

    async def get(self, event_id: str) -> Stored | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(events).where(events.c.id == event_id))).first()
        return None if row is None else _stored(row)

    def _where(self, f: Filter) -> list[Any]:
        cond: list[Any] = []
        if f.kinds is not None:
            cond.append(events.c.kind.in_(sorted(f.kinds)))
        if f.authors is not None:
            cond.append(events.c.author.in_(sorted(f.authors)))
        if f.ids is not None:
            cond.append(events.c.id.in_(sorted(f.ids)))
        if f.refs is not None:
            cond.append(events.c.seq.in_(select(event_refs.c.seq).where(event_refs.c.ref.in_(sorted(f.refs)))))
        if f.tags is not None:
            cond.append(events.c.seq.in_(select(event_tags.c.seq).where(event_tags.c.tag.in_(sorted(f.tags)))))
        if f.since is not None:
            cond.append(events.c.created_at >= f.since)
        if f.until is not None:
            cond.append(events.c.created_at <= f.until)
        return cond

    async def query(
        self,
        f: Filter,
        *,
        after_seq: int | None = None,
        before_seq: int | None = None,
        up_to_seq: int | None = None,
        limit: int = 100,
    ) -> list[Stored]:
        """Matches of ``f`` in seq order.

        With ``after_seq``: the first ``limit`` matches with a larger seq (and at
        most ``up_to_seq``). Without: the newest ``limit`` matches (below
        ``before_seq`` if given), returned oldest first.
        """
        rows = await self.query_rows(f, after_seq=after_seq, before_seq=before_seq, up_to_seq=up_to_seq, limit=limit)
        return [_stored(r) for r in rows]

    async def query_rows(
        self,
        f: Filter,
        *,
        after_seq: int | None = None,
        before_seq: int | None = None,
        up_to_seq: int | None = None,
        limit: int = 100,
    ) -> list[Any]:
        """What :meth:`query` returns as undecoded rows (seq, id, payload, sig, retracted, ...)."""
        if f.ids is not None and not f.ids:
            return []
        cond = self._where(f)
        if up_to_seq is not None:
            cond.append(events.c.seq <= up_to_seq)
        if after_seq is not None:
            stmt = select(events).where(events.c.seq > after_seq, *cond).order_by(events.c.seq).limit(limit)
        else:
            if before_seq is not None:
                cond.append(events.c.seq < before_seq)
            stmt = select(events).where(*cond).order_by(events.c.seq.desc()).limit(limit)
        async with self.engine.connect() as conn:
            rows = list((await conn.execute(stmt)).all())
        if after_seq is None:
            rows.reverse()
        return rows

    async def envelopes(self, f: Filter, *, after_seq: int, up_to_seq: int, limit: int) -> list[tuple[int, str]]:
        """(seq, envelope JSON) of the first ``limit`` matches in (after_seq, up_to_seq].

        What a catch-up sends: the JSON is built in a worker thread from the stored
        payload and signature, nothing is decoded on the event loop.
        """
        if f.ids is not None and not f.ids:
            return []
        cond = [events.c.seq > after_seq, events.c.seq <= up_to_seq, *self._where(f)]
        stmt = select(events.c.seq, events.c.payload, events.c.sig).where(*cond).order_by(events.c.seq).limit(limit)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        if not rows:
            return []
        return await asyncio.to_thread(_envelope_rows, rows)

    async def nth_newest_seq(self, f: Filter, *, up_to_seq: int, n: int) -> int:
        """The seq of the ``n``-th newest match at or below ``up_to_seq`` (0 if there are fewer)."""
        if n <= 0 or (f.ids is not None and not f.ids):
            return up_to_seq + 1
        stmt = (
            select(events.c.seq)
            .where(events.c.seq <= up_to_seq, *self._where(f))
            .order_by(events.c.seq.desc())
            .limit(1)
            .offset(n - 1)
        )
        async with self.engine.connect() as conn:
            seq = (await conn.execute(stmt)).scalar()
        return 0 if seq is None else int(seq)

    async def range(self, first: int, last: int) -> list[Stored]:
        """Every event with first <= seq <= last, in seq order."""
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(events).where(events.c.seq >= first, events.c.seq <= last).order_by(events.c.seq)
                )
            ).all()
        return [_stored(r) for r in rows]

    async def export(self, after_seq: int = 0, page: int = 2000) -> AsyncIterator[list[tuple[int, str, str, str]]]:
        """The whole log after ``after_seq`` as pages of (seq, id, payload, sig); constant memory."""
        async for rows in self.export_kinds(None, after_seq=after_seq, page=page):
            yield rows

    async def export_kinds(
        self, kinds: Sequence[str] | None, *, after_seq: int = 0, up_to_seq: int | None = None, page: int = 5000
    ) -> AsyncIterator[list[tuple[int, str, str, str]]]:
        """Pages of (seq, id, payload, sig) after ``after_seq`` (and at most ``up_to_seq``),
        only of ``kinds`` when given (then ix_events_kind_seq serves it); constant memory."""
        cursor = after_seq
        while True:
            cond = [events.c.seq > cursor]
            if kinds is not None:
                cond.append(events.c.kind.in_(list(kinds)))
            if up_to_seq is not None:
                cond.append(events.c.seq <= up_to_seq)
            async with self.engine.connect() as conn:
                rows = (
                    await conn.execute(
                        select(events.c.seq, events.c.id, events.c.payload, events.c.sig)
                        .where(*cond)
                        .order_by(events.c.seq)
                        .limit(page)
                    )
                ).all()
            if not rows:
                return
            yield [(r.seq, r.id, r.payload, r.sig) for r in rows]
            cursor = rows[-1].seq

    async def rated_event_kinds(self, up_to_seq: int) -> dict[str, str]:
        """Kind of every event that has a current rating (what score listings group by)."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(events.c.id, events.c.kind).where(
                    events.c.id.in_(select(ratings.c.target).distinct()), events.c.seq <= up_to_seq
                )
            )
            return {r.id: r.kind for r in rows}

    async def count(self) -> int:
        async with self.engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(events))).scalar_one())

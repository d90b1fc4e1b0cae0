"""Full-text search over proposals, replies and outcome reports.

The index is an FTS5 table on SQLite (migration 0003) and, on PostgreSQL, a
table ``search_vectors`` of stored weighted ``tsvector`` values with a GIN index
(migration 0004), both filled by the log's writer in the transaction of the
post (forum/searchindex.py; triggers did it before migration 0006); both index a post's
title (weighted higher) and its summary, text, quote and tags, with English
stemming. A query is reduced to its words (at most :data:`MAX_WORDS`; no
operators, so nothing a person types can be a syntax error) and matches posts
that contain every word (stemmed). Order:

* ``relevance`` (default): SQLite ranks every match by BM25; PostgreSQL ranks
  the :data:`PG_RANK_WINDOW` newest matches by ``ts_rank_cd`` over their
  stored vectors (the window bounds the cost of a word nearly every post has);
* ``new``: newest first (both).

Filters: ``kind`` (proposal, outcome, reply) and ``tag`` (tags belong to
proposals). Retracted posts never appear. :func:`search` takes a synchronous
connection, so the public web runs it in its one trip per page and the API
through ``run_sync``.

``GET /api/v1/search?q=&kind=&tag=&sort=&limit=&offset=`` (see docs/api.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from forum.protocol import ids
from forum.protocol.filters import DECIMAL
from forum.responses import JSON, error
from forum.searchindex import SEARCH_KINDS
from forum.store import Stored, event_from_row

SORTS = ("relevance", "new")
MAX_WORDS = 12
MAX_QUERY_CHARS = 500
MAX_OFFSET = 1000
PG_RANK_WINDOW = 200
_WORD = re.compile(r"\w+", re.UNICODE)
_TAG = ids.SLUG
_COLUMNS = "e.seq, e.id, e.kind, e.author, e.created_at, e.received_at, e.payload, e.sig, e.retracted"

class SearchError(ValueError):
    """A parameter that cannot be searched with (the message says which and why)."""


@dataclass(frozen=True, slots=True)
class Query:
    words: tuple[str, ...]
    kind: str | None = None
    tag: str | None = None
    sort: str = "relevance"
    limit: int = 20
    offset: int = 0

    @classmethod
    def parse(cls, q: str, *, kind: str | None = None, tag: str | None = None, sort: str | None = None, limit: int = 20, offset: int = 0) -> Query:
        if len(q) > MAX_QUERY_CHARS:
            raise SearchError(f"q is at most {MAX_QUERY_CHARS} characters")
        if kind is not None and kind not in SEARCH_KINDS:
            raise SearchError(f"kind must be one of {', '.join(SEARCH_KINDS)}")
        if tag is not None and not _TAG.match(tag):
            raise SearchError("a tag is 1 to 40 lowercase letters, digits and dashes")
        sort = sort or "relevance"
        if sort not in SORTS:
            raise SearchError(f"sort must be one of {', '.join(SORTS)}")
        if not 1 <= limit <= 100:
            raise SearchError("limit must be 1..100")
        if not 0 <= offset <= MAX_OFFSET:
            raise SearchError(f"offset must be 0..{MAX_OFFSET}")
        words = tuple(dict.fromkeys(w.casefold() for w in _WORD.findall(q)))[:MAX_WORDS]
        return cls(words, kind, tag, sort, limit, offset)


@dataclass(frozen=True, slots=True)
class Results:
    items: list[Stored]
    more: bool  # another page exists


def _filters(query: Query) -> str:
    out = ""
    if query.kind:
        out += " AND e.kind = :kind"
    if query.tag:
        out += " AND EXISTS (SELECT 1 FROM event_tags t WHERE t.tag = :tag AND t.seq = e.seq)"
    return out


def _sqlite(conn: Connection, query: Query) -> list[Any]:
    match = " ".join('"' + w.replace('"', "") + '"' for w in query.words)
    # rowid is e.seq: ordered by it, FTS5 hands matches over newest first and the query stops at the page.
    order = "bm25(search_fts, 4.0, 1.0), search_fts.rowid DESC" if query.sort == "relevance" else "search_fts.rowid DESC"
    sql = (
        f"SELECT {_COLUMNS} FROM search_fts JOIN events e ON e.seq = search_fts.rowid "
        f"WHERE search_fts MATCH :match AND e.retracted = 0{_filters(query)} "
        f"ORDER BY {order} LIMIT :limit OFFSET :offset"
    )
    params = {"match": match, "kind": query.kind, "tag": query.tag, "limit": query.limit + 1, "offset": query.offset}
    return list(conn.execute(text(sql), params).all())


def _postgres(conn: Connection, query: Query) -> list[Any]:
    match = (
        "FROM search_vectors s JOIN events e ON e.seq = s.seq "
        f"WHERE s.vec @@ plainto_tsquery('english'::regconfig, :words) AND NOT e.retracted{_filters(query)}"
    )
    params = {"words": " ".join(query.words), "kind": query.kind, "tag": query.tag, "limit": query.limit + 1, "offset": query.offset}
    if query.sort == "new":
        sql = f"SELECT {_COLUMNS} {match} ORDER BY s.seq DESC LIMIT :limit OFFSET :offset"
    else:
        # Rank the window's stored vectors; read the events of the page shown only.
        sql = (
            f"SELECT {_COLUMNS.replace('e.', 'r.')} FROM events r JOIN ("
            f"SELECT s.seq, ts_rank_cd(s.vec, plainto_tsquery('english'::regconfig, :words)) AS rank {match} "
            f"ORDER BY s.seq DESC LIMIT {PG_RANK_WINDOW}) w ON r.seq = w.seq "
            "ORDER BY w.rank DESC, w.seq DESC LIMIT :limit OFFSET :offset"
        )
    return list(conn.execute(text(sql), params).all())


def search(conn: Connection, query: Query) -> Results:
    """Posts matching every word of ``query`` (none for a query without words)."""
    if not query.words:
        return Results([], False)
    rows = _postgres(conn, query) if conn.dialect.name == "postgresql" else _sqlite(conn, query)
    items = [Stored(seq=r.seq, event=event_from_row(r.payload, r.sig, r.id), retracted=bool(r.retracted), received_at=r.received_at) for r in rows[: query.limit]]
    return Results(items, len(rows) > query.limit)


def title_of(s: Stored) -> str:
    b = s.event.body
    if s.event.kind == "proposal":
        return str(b.get("title", ""))
    if s.event.kind == "reply":
        return str(b.get("text", ""))[:120]
    return str(b.get("summary", ""))[:120]


# --------------------------------------------------------------------------- HTTP API

SEARCH_PARAMS = frozenset({"q", "kind", "tag", "sort", "limit", "offset"})


def _int(raw: str | None, default: int, name: str) -> int:
    if raw is None or raw == "":
        return default
    if not DECIMAL.fullmatch(raw) or len(raw) > 7:
        raise SearchError(f"{name} must be a non-negative integer")
    return int(raw)


async def search_endpoint(request: Request) -> Response:
    q = request.query_params
    if unknown := set(q.keys()) - SEARCH_PARAMS:
        return error("invalid", f"unknown query parameter {sorted(unknown)[0][:40]!r}")
    try:
        query = Query.parse(
            q.get("q", ""),
            kind=q.get("kind") or None,
            tag=q.get("tag") or None,
            sort=q.get("sort") or None,
            limit=_int(q.get("limit"), 20, "limit"),
            offset=_int(q.get("offset"), 0, "offset"),
        )
    except SearchError as e:
        return error("invalid", str(e))
    async with request.app.state.store.engine.connect() as conn:
        found = await conn.run_sync(search, query)
    return JSON(
        {
            "query": {"words": list(query.words), "kind": query.kind, "tag": query.tag, "sort": query.sort, "limit": query.limit, "offset": query.offset},
            "results": [
                {"id": s.event.id, "seq": s.seq, "kind": s.event.kind, "author": s.event.author, "created_at": s.event.created_at, "title": title_of(s)}
                for s in found.items
            ],
            "next_offset": query.offset + query.limit if found.more else None,
        }
    )


routes = [Route("/api/v1/search", search_endpoint, methods=["GET"])]

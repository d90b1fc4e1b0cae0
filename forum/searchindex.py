"""What the full-text search index holds of a post, written by the log's writer.

Migration 0003 (SQLite) and 0004 (PostgreSQL) filled the index from a trigger
on ``events`` inserts that read the fields back out of the stored payload: on
SQLite five ``json_extract`` calls, each parsing the whole payload again (the
SQLite of Debian 12 has no JSON parse cache), cost ~60 µs per post, more than
the rest of the insert (docs/performance.md, issue 16). Migration 0006 dropped
both triggers: :meth:`forum.store.Store.write_batch` inserts the index rows of
a batch itself, in the same transaction as the events (so the index is exactly
as current as the log), from the body the verifier already parsed.

What is indexed is unchanged, per kind in :data:`SEARCH_KINDS`: the ``title``
(weighted higher), then ``summary``, ``text``, ``quote`` and ``tags`` joined by
single spaces, a missing or null field as the empty string and a list (the
tags) as its compact JSON text, as the triggers' SQL read them.
``tests/feeds/test_feeds_search.py`` checks the written rows against that SQL
on both databases.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

SEARCH_KINDS = ("proposal", "outcome", "reply")
CONTENT_FIELDS = ("summary", "text", "quote", "tags")

SQLITE_INSERT = "INSERT INTO search_fts (rowid, title, content) VALUES (?, ?, ?)"
PG_INSERT = (
    "INSERT INTO search_vectors (seq, vec) SELECT s, "
    "setweight(to_tsvector('english'::regconfig, t), 'A') || setweight(to_tsvector('english'::regconfig, c), 'B') "
    "FROM unnest($1::bigint[], $2::text[], $3::text[]) AS x(s, t, c)"
)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def search_fields(kind: str, body: Mapping[str, Any]) -> tuple[str, str] | None:
    """(title, content) of a post of a searchable kind; None for any other kind."""
    if kind not in SEARCH_KINDS:
        return None
    get = body.get
    return _text(get("title")), " ".join([_text(get(n)) for n in CONTENT_FIELDS])

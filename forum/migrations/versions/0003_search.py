"""Full-text search over proposals, replies and outcome reports (the public web's /search).

SQLite: an FTS5 table ``search_fts`` (rowid = ``events.seq``; columns ``title``
and ``content``; tokenizer ``porter unicode61 remove_diacritics 2``) kept
current by a trigger on ``events`` inserts, so every write path (single
events, batches) indexes the same way; filled here from the existing log.

PostgreSQL: a partial GIN expression index ``ix_events_search`` on the
weighted ``tsvector`` of the same fields (title weight A, the rest B), for the
same kinds. Queries use ``SEARCH_TSVECTOR_SQL``, which renders this
exact expression (``feeds/search.py`` holds a copy; a test keeps the two equal
and checks the plan uses the index), so they match the index.

What is indexed, per kind: ``title``; then ``summary``, ``text``, ``quote``
and ``tags`` (as JSON text). Retracted events stay in the index and are
filtered out by the queries (``events.retracted``).

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SEARCH_KINDS = ("proposal", "outcome", "reply")
_KINDS_SQL = ", ".join(f"'{k}'" for k in SEARCH_KINDS)


_BODY = "(CAST(payload AS JSONB) -> 'body')"
SEARCH_TSVECTOR_SQL = (
    f"setweight(to_tsvector('english'::regconfig, coalesce({_BODY} ->> 'title', '')), 'A') || "
    f"setweight(to_tsvector('english'::regconfig, "
    + " || ' ' || ".join(f"coalesce({_BODY} ->> '{n}', '')" for n in ("summary", "text", "quote", "tags"))
    + "), 'B')"
)


def _sqlite_fields(row: str) -> tuple[str, str]:
    def f(name: str) -> str:
        return f"coalesce(json_extract({row}.payload, '$.body.{name}'), '')"

    return f("title"), " || ' ' || ".join(f(n) for n in ("summary", "text", "quote", "tags"))


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE INDEX ix_events_search ON events USING GIN (({SEARCH_TSVECTOR_SQL})) WHERE kind IN ({_KINDS_SQL})")
        return
    op.execute("CREATE VIRTUAL TABLE search_fts USING fts5(title, content, tokenize = 'porter unicode61 remove_diacritics 2')")
    title, content = _sqlite_fields("new")
    op.execute(
        f"CREATE TRIGGER search_fts_insert AFTER INSERT ON events WHEN new.kind IN ({_KINDS_SQL}) BEGIN "
        f"INSERT INTO search_fts (rowid, title, content) VALUES (new.seq, {title}, {content}); END"
    )
    title, content = _sqlite_fields("events")
    op.execute(f"INSERT INTO search_fts (rowid, title, content) SELECT seq, {title}, {content} FROM events WHERE kind IN ({_KINDS_SQL})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_events_search")
        return
    op.execute("DROP TRIGGER search_fts_insert")
    op.execute("DROP TABLE search_fts")

"""PostgreSQL: the weighted ``tsvector`` of each searchable post, stored once.

Migration 0003 indexed the ``tsvector`` expression (``ix_events_search``), but
ranking by relevance (``ts_rank_cd``) needs the vector itself, and an
expression index cannot hand it back: every ranked match had its vector
recomputed from the payload (about 150 ms for a word one proposal in 40 has at
1,000,000 events). Now a side table ``search_vectors (seq, vec)`` holds it,
filled by a trigger on ``events`` inserts (every write path indexes the same
way, as SQLite's ``search_fts`` is) and from the existing log here, with a GIN
index ``ix_search_vectors`` on ``vec``; ``ix_events_search`` is dropped (no
query uses it any more, and it cost every write of a post a second
``to_tsvector``).

The vector is the same expression as 0003's (``SEARCH_TSVECTOR_SQL``: title
weight A; summary, text, quote and tags weight B; English stemming), over the
same kinds. Retracted posts keep their row; queries join ``events`` and filter
``retracted``. Nothing changes on SQLite (FTS5 stores its own index).

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SEARCH_KINDS = ("proposal", "outcome", "reply")
_KINDS_SQL = ", ".join(f"'{k}'" for k in SEARCH_KINDS)


def tsvector_sql(payload: str) -> str:
    """The weighted ``tsvector`` of a post whose JSON payload is the SQL expression ``payload``."""
    body = f"(CAST({payload} AS JSONB) -> 'body')"
    return (
        f"setweight(to_tsvector('english'::regconfig, coalesce({body} ->> 'title', '')), 'A') || "
        f"setweight(to_tsvector('english'::regconfig, "
        + " || ' ' || ".join(f"coalesce({body} ->> '{n}', '')" for n in ("summary", "text", "quote", "tags"))
        + "), 'B')"
    )


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE TABLE search_vectors (seq BIGINT PRIMARY KEY, vec TSVECTOR NOT NULL)")
    op.execute(
        "CREATE FUNCTION search_vectors_insert() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"INSERT INTO search_vectors (seq, vec) VALUES (NEW.seq, {tsvector_sql('NEW.payload')}); RETURN NULL; END $$"
    )
    op.execute(
        f"CREATE TRIGGER search_vectors_insert AFTER INSERT ON events FOR EACH ROW WHEN (NEW.kind IN ({_KINDS_SQL})) "
        "EXECUTE FUNCTION search_vectors_insert()"
    )
    op.execute(f"INSERT INTO search_vectors (seq, vec) SELECT seq, {tsvector_sql('payload')} FROM events WHERE kind IN ({_KINDS_SQL})")
    op.execute("CREATE INDEX ix_search_vectors ON search_vectors USING GIN (vec)")
    op.execute("DROP INDEX IF EXISTS ix_events_search")
    op.execute("ANALYZE search_vectors")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"CREATE INDEX ix_events_search ON events USING GIN (({tsvector_sql('payload')})) WHERE kind IN ({_KINDS_SQL})")
    op.execute("DROP TRIGGER search_vectors_insert ON events")
    op.execute("DROP FUNCTION search_vectors_insert()")
    op.execute("DROP TABLE search_vectors")

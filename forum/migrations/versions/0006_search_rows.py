"""The writer fills the search index (forum/searchindex.py); the insert triggers are dropped.

The triggers of migrations 0003 (SQLite: ``search_fts_insert``) and 0004
(PostgreSQL: ``search_vectors_insert`` and its function) computed a post's
index entry from its stored payload, re-parsing the JSON once per field: on
SQLite the trigger cost more than the rest of an event's insert. From now on
:meth:`forum.store.Store.write_batch` inserts the same rows (the same fields,
the same weights) for a whole batch, in the transaction that inserts its
events, from the bodies it already holds. The tables, their contents and every
query are unchanged; the downgrade restores the triggers.

Revision ID: 0006
Revises: 0005
"""

import importlib.util
from pathlib import Path
from typing import Any

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _sibling(name: str) -> Any:
    """Another migration of this directory (the triggers' own SQL, for the downgrade)."""
    path = Path(__file__).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"_migration_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER search_vectors_insert ON events")
        op.execute("DROP FUNCTION search_vectors_insert()")
        return
    op.execute("DROP TRIGGER search_fts_insert")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        m4 = _sibling("0004_search_vectors")
        op.execute(
            "CREATE FUNCTION search_vectors_insert() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"INSERT INTO search_vectors (seq, vec) VALUES (NEW.seq, {m4.tsvector_sql('NEW.payload')}); RETURN NULL; END $$"
        )
        op.execute(
            f"CREATE TRIGGER search_vectors_insert AFTER INSERT ON events FOR EACH ROW WHEN (NEW.kind IN ({m4._KINDS_SQL})) "
            "EXECUTE FUNCTION search_vectors_insert()"
        )
        return
    m3 = _sibling("0003_search")
    title, content = m3._sqlite_fields("new")
    op.execute(
        f"CREATE TRIGGER search_fts_insert AFTER INSERT ON events WHEN new.kind IN ({m3._KINDS_SQL}) BEGIN "
        f"INSERT INTO search_fts (rowid, title, content) VALUES (new.seq, {title}, {content}); END"
    )

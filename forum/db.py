"""Database engines and migrations: SQLite (embedded, WAL) or PostgreSQL (asyncpg)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

MIGRATIONS = Path(__file__).with_name("migrations")
_MIGRATION_LOCK = 0x6D79636D  # pg_advisory_lock key held while migrating


def create_engine(url: str, *, sqlite_synchronous: str = "FULL", pool_size: int = 10) -> AsyncEngine:
    """An async engine for ``url``. SQLite gets WAL, the chosen synchronous mode and a busy timeout."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, pool_size=pool_size, max_overflow=20)

        @sa_event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={sqlite_synchronous}")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.close()

        return engine
    return create_async_engine(url, pool_size=pool_size, max_overflow=20, pool_pre_ping=True)


def is_postgres(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "postgresql"


_REVISION_LINE = re.compile(r'^(down_revision|revision)\s*=\s*"([^"]*)"', re.M)


def head_revision() -> str:
    """The newest migration's revision, read from the files of ``migrations/versions`` (the one
    no other names as its ``down_revision``) without importing Alembic: importing it costs
    0.3-0.5 s of CPU at every start, and a database already at the head needs none of it.
    tests/forum/test_migrations.py checks it against Alembic's own answer."""
    revisions, downs = set(), set()
    for f in (MIGRATIONS / "versions").glob("*.py"):
        fields = dict((k, v) for k, v in _REVISION_LINE.findall(f.read_text()))
        revisions.add(fields["revision"])
        downs.add(fields.get("down_revision", ""))
    heads = revisions - downs
    if len(heads) != 1:
        raise RuntimeError(f"migrations must form one line, found heads {sorted(heads)}")
    return heads.pop()


async def _revision(conn: AsyncConnection) -> str | None:
    """The database's Alembic revision (None: never migrated): one catalog query, one SELECT."""
    if conn.dialect.name == "postgresql":
        exists = (await conn.execute(text("SELECT to_regclass('alembic_version') IS NOT NULL"))).scalar()
    else:
        exists = (await conn.execute(text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"))).scalar()
    if not exists:
        return None
    rows = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
    return rows[0] if len(rows) == 1 else None


def _upgrade(conn: Connection) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, "head")


async def migrate(engine: AsyncEngine) -> None:
    """Apply every pending Alembic migration (serialized across processes on PostgreSQL);
    a database already at :func:`head_revision` is left alone without importing Alembic."""
    async with engine.connect() as conn:
        if await _revision(conn) == head_revision():
            return
    async with engine.begin() as conn:
        if is_postgres(engine):
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
        await conn.run_sync(_upgrade)

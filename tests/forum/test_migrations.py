"""The start-up revision check (forum/db.py): the head read from the migration files is
Alembic's, a database at the head is not migrated again, and one behind is."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection

from forum.db import MIGRATIONS, create_engine, head_revision, migrate


def _config(conn: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


def _downgrade_one(conn: Connection) -> None:
    command.downgrade(_config(conn), "-1")


def test_head_revision_is_alembics() -> None:
    assert head_revision() == ScriptDirectory.from_config(_config()).get_current_head()


@pytest.mark.asyncio
async def test_migrate_upgrades_a_database_behind_and_skips_one_at_the_head(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'forum.db'}")
    try:
        await migrate(engine)  # a new database: every migration
        async with engine.begin() as conn:
            assert (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar() == head_revision()
            await conn.run_sync(_downgrade_one)  # one migration behind
        indexes = "SELECT group_concat(type || ' ' || name || ' ' || coalesce(sql, ''), ';') FROM (SELECT * FROM sqlite_master ORDER BY name)"  # the schema
        async with engine.connect() as conn:
            behind = (await conn.execute(text(indexes))).scalar()
        await migrate(engine)
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar() == head_revision()
            after = (await conn.execute(text(indexes))).scalar()
        assert after is not None and behind is not None and after != behind  # the newest migration ran
        await migrate(engine)  # at the head: nothing changes
        async with engine.connect() as conn:
            assert (await conn.execute(text(indexes))).scalar() == after
    finally:
        await engine.dispose()

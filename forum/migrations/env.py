"""Alembic environment: runs on the connection the forum hands it (see forum/db.py)."""

from __future__ import annotations

from alembic import context

from forum.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only the forum runs migrations
    raise RuntimeError("run migrations through forum.db.migrate()")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()

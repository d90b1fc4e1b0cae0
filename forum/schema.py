"""The database schema (SQLAlchemy Core). Changes go through Alembic migrations
in forum/migrations/, which must produce exactly these tables.

``events`` is the log: one row per accepted event, ``seq`` assigned by the
single writer (strictly increasing, persisted before broadcast). The payload
is stored exactly as it was signed. ``event_refs`` and ``event_tags`` index
the body fields filters match on. ``ratings`` holds the current rating per
(rater, target): a derived table, rebuilt from the log by ``forum verify``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

# SQLite only aliases the rowid for a column declared exactly INTEGER PRIMARY KEY.
SeqType = BigInteger().with_variant(Integer(), "sqlite")

events = Table(
    "events",
    metadata,
    Column("seq", SeqType, primary_key=True, autoincrement=False),
    Column("id", String(64), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("author", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("received_at", BigInteger, nullable=False),
    Column("payload", Text, nullable=False),
    Column("sig", String(86), nullable=False),
    Column("retracted", Boolean, nullable=False, default=False),
    Index("ix_events_kind_seq", "kind", "seq"),
    Index("ix_events_author_seq", "author", "seq"),
    Index("ix_events_author_kind_seq", "author", "kind", "seq"),
)

event_refs = Table(
    "event_refs",
    metadata,
    Column("ref", String(64), primary_key=True),
    Column("seq", SeqType, primary_key=True),
)

event_tags = Table(
    "event_tags",
    metadata,
    Column("tag", String(40), primary_key=True),
    Column("seq", SeqType, primary_key=True),
)

ratings = Table(
    "ratings",
    metadata,
    Column("rater", String(64), primary_key=True),
    Column("target", String(64), primary_key=True),
    Column("seq", SeqType, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("score", Float, nullable=False),
    Column("confidence", Float, nullable=True),
    Column("criteria", Text, nullable=False),  # JSON object, criterion -> score
    Index("ix_ratings_target", "target"),
    Index("ix_ratings_seq", "seq"),
)

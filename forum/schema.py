"""The database schema (SQLAlchemy Core). Changes go through Alembic migrations
in forum/migrations/, which must produce exactly these tables.

``events`` is the log: one row per accepted event, ``seq`` assigned by the
single writer (strictly increasing, persisted before broadcast). The payload
is stored exactly as it was signed. ``event_refs`` and ``event_tags`` index
the body fields filters match on. ``ratings`` holds the current rating per
(rater, target): a derived table, rebuilt from the log by ``forum verify``.

Two partial expression indexes on ``events`` (migration 0002) let the public
pages find what points at a proposal without walking its ratings in
``event_refs``: the outcome reports on a proposal (``body.proposal`` of
outcomes) and its newer versions (``body.revises`` of proposals). Their
expressions are :class:`OutcomeProposal` and :class:`ProposalRevises`, which
render the same SQL as the index on each database, so queries that use them
match the index.
"""

from __future__ import annotations

from typing import Any

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
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

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
    Index("ix_ratings_target_seq", "target", "seq"),  # migration 0005 (was ix_ratings_target on target alone)
    Index("ix_ratings_seq", "seq"),
)


class _BodyField(FunctionElement[str]):
    """``body.<FIELD>`` of an event, read from its stored payload (a fixed field per subclass)."""

    inherit_cache = True
    type = String()
    FIELD = ""


class OutcomeProposal(_BodyField):
    """``body.proposal``: meaningful for outcome reports."""

    name = "outcome_proposal"
    inherit_cache = True
    FIELD = "proposal"


class ProposalRevises(_BodyField):
    """``body.revises``: meaningful for proposals."""

    name = "proposal_revises"
    inherit_cache = True
    FIELD = "revises"


class ReplyTarget(_BodyField):
    """``body.target``: meaningful for replies."""

    name = "reply_target"
    inherit_cache = True
    FIELD = "target"


class AmendmentProposal(_BodyField):
    """``body.proposal``: meaningful for amendments."""

    name = "amendment_proposal"
    inherit_cache = True
    FIELD = "proposal"


@compiles(_BodyField, "sqlite")
def _body_field_sqlite(element: _BodyField, compiler: Any, **kw: Any) -> str:
    return f"json_extract({compiler.process(element.clauses, **kw)}, '$.body.{element.FIELD}')"


@compiles(_BodyField, "postgresql")
def _body_field_postgresql(element: _BodyField, compiler: Any, **kw: Any) -> str:
    return f"((CAST({compiler.process(element.clauses, **kw)} AS JSONB) -> 'body') ->> '{element.FIELD}')"


Index(
    "ix_events_outcome_proposal",
    OutcomeProposal(events.c.payload),
    events.c.seq,
    sqlite_where=events.c.kind == "outcome",
    postgresql_where=events.c.kind == "outcome",
)
Index(
    "ix_events_proposal_revises",
    ProposalRevises(events.c.payload),
    events.c.seq,
    sqlite_where=events.c.kind == "proposal",
    postgresql_where=events.c.kind == "proposal",
)
Index(  # migration 0005
    "ix_events_reply_target",
    ReplyTarget(events.c.payload),
    events.c.seq,
    sqlite_where=events.c.kind == "reply",
    postgresql_where=events.c.kind == "reply",
)
Index(  # migration 0005
    "ix_events_amendment_proposal",
    AmendmentProposal(events.c.payload),
    events.c.seq,
    sqlite_where=events.c.kind == "amendment",
    postgresql_where=events.c.kind == "amendment",
)

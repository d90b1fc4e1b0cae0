"""The event log, its filter indexes and the current-ratings table.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("seq", Seq, primary_key=True, autoincrement=False),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("author", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("received_at", sa.BigInteger, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("sig", sa.String(86), nullable=False),
        sa.Column("retracted", sa.Boolean, nullable=False),
    )
    op.create_index("ix_events_kind_seq", "events", ["kind", "seq"])
    op.create_index("ix_events_author_seq", "events", ["author", "seq"])
    op.create_index("ix_events_author_kind_seq", "events", ["author", "kind", "seq"])
    op.create_table(
        "event_refs",
        sa.Column("ref", sa.String(64), primary_key=True),
        sa.Column("seq", Seq, primary_key=True),
    )
    op.create_table(
        "event_tags",
        sa.Column("tag", sa.String(40), primary_key=True),
        sa.Column("seq", Seq, primary_key=True),
    )
    op.create_table(
        "ratings",
        sa.Column("rater", sa.String(64), primary_key=True),
        sa.Column("target", sa.String(64), primary_key=True),
        sa.Column("seq", Seq, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("confidence", sa.Float, nullable=True),
        sa.Column("criteria", sa.Text, nullable=False),
    )
    op.create_index("ix_ratings_target", "ratings", ["target"])
    op.create_index("ix_ratings_seq", "ratings", ["seq"])


def downgrade() -> None:
    op.drop_table("ratings")
    op.drop_table("event_tags")
    op.drop_table("event_refs")
    op.drop_table("events")

"""Indexes for a popular proposal's page: its newest current ratings, its replies, its amendments.

``ix_ratings_target_seq`` on ``ratings (target, seq)`` replaces
``ix_ratings_target`` (``target`` alone): a page's "latest ratings" (newest
first, ten) walked and sorted every current rating of the target (5,000 for
the benchmark's hot proposal); now it reads ten index entries. Everything that
filtered on ``target`` alone uses the new index the same way.

``ix_events_reply_target`` (``body.target`` of replies) and
``ix_events_amendment_proposal`` (``body.proposal`` of amendments), partial
expression indexes like migration 0002's: a page's thread and amendments were
found through ``event_refs``, whose entries for a popular proposal are mostly
its ratings, each joined to ``events`` to read its kind. The expressions are
exactly what ``forum.schema.ReplyTarget`` / ``AmendmentProposal`` render.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_INDEXES = (("ix_events_reply_target", "target", "reply"), ("ix_events_amendment_proposal", "proposal", "amendment"))


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.create_index("ix_ratings_target_seq", "ratings", ["target", "seq"])
    op.drop_index("ix_ratings_target", "ratings")
    for name, field, kind in _INDEXES:
        if postgres:
            expr = f"((CAST(payload AS JSONB) -> 'body') ->> '{field}')"
        else:
            expr = f"json_extract(payload, '$.body.{field}')"
        op.execute(f"CREATE INDEX {name} ON events ({expr}, seq) WHERE kind = '{kind}'")


def downgrade() -> None:
    for name, _, _ in _INDEXES:
        op.execute(f"DROP INDEX {name}")
    op.create_index("ix_ratings_target", "ratings", ["target"])
    op.drop_index("ix_ratings_target_seq", "ratings")

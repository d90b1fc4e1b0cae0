"""Partial expression indexes for what points at a proposal (used by the public pages).

``ix_events_outcome_proposal``: outcome reports by ``body.proposal``;
``ix_events_proposal_revises``: proposals by ``body.revises``. Without them a
proposal page finds its outcome reports and newer versions by walking every
entry of ``event_refs`` for the proposal, which is mostly its ratings (thousands
for a popular proposal). The expressions are exactly what
``forum.schema.OutcomeProposal`` / ``ProposalRevises`` render, so queries that
use those match the indexes.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_INDEXES = (("ix_events_outcome_proposal", "proposal", "outcome"), ("ix_events_proposal_revises", "revises", "proposal"))


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for name, field, kind in _INDEXES:
        if postgres:
            expr = f"((CAST(payload AS JSONB) -> 'body') ->> '{field}')"
        else:
            expr = f"json_extract(payload, '$.body.{field}')"
        op.execute(f"CREATE INDEX {name} ON events ({expr}, seq) WHERE kind = '{kind}'")


def downgrade() -> None:
    for name, _, _ in _INDEXES:
        op.execute(f"DROP INDEX {name}")

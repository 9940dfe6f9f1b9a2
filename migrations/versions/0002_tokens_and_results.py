"""API tokens and received results.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "pacer_tokens",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("scope", sa.String(10), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("last_used_at", Timestamp, nullable=True),
        sa.Column("revoked_at", Timestamp, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_pacer_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_pacer_tokens_token_hash"),
    )
    op.create_table(
        "pacer_results",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("body", Json, nullable=False),
        sa.Column("received_at", Timestamp, nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_pacer_results"),
        sa.UniqueConstraint("idempotency_key", name="uq_pacer_results_idempotency_key"),
    )


def downgrade() -> None:
    op.drop_table("pacer_results")
    op.drop_table("pacer_tokens")

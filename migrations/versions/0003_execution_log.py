"""The execution log, its consumers and its prunes.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

Timestamp = sa.DateTime(timezone=True)
Position = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "pacer_events",
        sa.Column("position", Position, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("at", Timestamp, nullable=False),
        sa.Column("job_id", sa.String(36), nullable=True),
        sa.Column("query_id", sa.String(32), nullable=True),
        sa.Column("scheduled_at", Timestamp, nullable=True),
        sa.Column("started_at", Timestamp, nullable=True),
        sa.Column("finished_at", Timestamp, nullable=True),
        sa.Column("worker", sa.String(200), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("position", name="pk_pacer_events"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "pacer_consumers",
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("position", Position, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.Column("missed_first", Position, nullable=True),
        sa.Column("missed_last", Position, nullable=True),
        sa.Column("missed_count", Position, server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_pacer_consumers"),
    )
    op.create_table(
        "pacer_event_prunes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("first_position", Position, nullable=False),
        sa.Column("last_position", Position, nullable=False),
        sa.Column("count", Position, nullable=False),
        sa.Column("at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_pacer_event_prunes"),
    )


def downgrade() -> None:
    op.drop_table("pacer_event_prunes")
    op.drop_table("pacer_consumers")
    op.drop_table("pacer_events")

"""Jobs and runs.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "pacer_jobs",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("spec", Json, nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("next_fire_at", Timestamp, nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_pacer_jobs"),
        sa.UniqueConstraint("name", name="uq_pacer_jobs_name"),
    )
    op.create_index("ix_pacer_jobs_due", "pacer_jobs", ["enabled", "next_fire_at"])
    op.create_table(
        "pacer_runs",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("job_id", sa.String(36), nullable=True),
        sa.Column("fire_time", Timestamp, nullable=True),
        sa.Column("query_id", sa.String(32), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("priority", sa.Integer(), server_default="0", nullable=False),
        sa.Column("scheduled_at", Timestamp, nullable=False),
        sa.Column("attempt", sa.Integer(), server_default="0", nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("action", Json, nullable=False),
        sa.Column("parameters", Json, nullable=False),
        sa.Column("retry", Json, nullable=False),
        sa.Column("timeout_s", sa.Float(), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("started_at", Timestamp, nullable=True),
        sa.Column("finished_at", Timestamp, nullable=True),
        sa.Column("lease_until", Timestamp, nullable=True),
        sa.Column("worker", sa.String(200), nullable=True),
        sa.Column("result", Json, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_pacer_runs"),
        sa.UniqueConstraint("job_id", "fire_time", name="uq_pacer_runs_job_id_fire_time"),
        sa.UniqueConstraint("idempotency_key", name="uq_pacer_runs_idempotency_key"),
    )
    op.create_index("ix_pacer_runs_status_scheduled", "pacer_runs", ["status", "scheduled_at"])
    op.create_index("ix_pacer_runs_job_created", "pacer_runs", ["job_id", "created_at"])
    op.create_index("ix_pacer_runs_created", "pacer_runs", ["created_at", "id"])
    op.create_index("ix_pacer_runs_query_created", "pacer_runs", ["query_id", "created_at"])
    op.create_index("ix_pacer_runs_worker_status", "pacer_runs", ["worker", "status"])
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(
            "ix_pacer_runs_claimable",
            "pacer_runs",
            [sa.text("priority DESC"), "scheduled_at"],
            postgresql_where=sa.text("status IN ('queued', 'retrying')"),
        )


def downgrade() -> None:
    op.drop_table("pacer_runs")
    op.drop_table("pacer_jobs")

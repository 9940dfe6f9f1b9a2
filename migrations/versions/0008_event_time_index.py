"""Index the execution log by event time, for pruning.

Pruning looks for the newest position older than the keep window (and the hard age limit)
once a minute: ``max(position) WHERE at < :bound``. With no index on ``at``, PostgreSQL and
SQLite walked the primary key back from the newest event, reading every event of the last day
(30 days for the hard limit) to find that almost none were old enough. No query reads the log
by ``run_id``, so that column gets no index: it would cost every appended event a write.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_pacer_events_at", "pacer_events", ["at", "position"])


def downgrade() -> None:
    op.drop_index("ix_pacer_events_at", table_name="pacer_events")

"""Drop the runs' (worker, status) index: no query reads through it.

Every update of a run's status writes a new entry into each of the table's indexes, and a run
changes status at least twice, so an index nothing reads costs each run two index writes.
Heartbeats, releases and completions find their runs by id; ``tests/contract/test_query_plans.py``
checks that each hot query still reads through an index.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_pacer_runs_worker_status", table_name="pacer_runs")


def downgrade() -> None:
    op.create_index("ix_pacer_runs_worker_status", "pacer_runs", ["worker", "status"])

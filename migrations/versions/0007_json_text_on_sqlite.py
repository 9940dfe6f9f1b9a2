"""SQLite: a run's result and a received body as TEXT, not JSON (NUMERIC affinity).

SQLite gives a column declared ``JSON`` NUMERIC affinity, so a bare number stored there was
converted: ``POST /result`` with ``12345678901234567890`` read back as
``1.2345678901234567e+19``. SQLite cannot change a column's type in place, so both tables are
rebuilt (Alembic's batch mode copies the rows and recreates the indexes). A value converted
before this migration stays converted: its lost digits cannot be recovered. PostgreSQL's JSONB
keeps numbers exactly: nothing to do there.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

COLUMNS = (("pacer_runs", "result", True), ("pacer_results", "body", False))


def upgrade() -> None:
    _retype(sa.Text(), sa.JSON())


def downgrade() -> None:
    _retype(sa.JSON(), sa.Text())


def _retype(to: sa.types.TypeEngine[object], was: sa.types.TypeEngine[object]) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table, column, nullable in COLUMNS:
        with op.batch_alter_table(table, recreate="always") as batch:
            batch.alter_column(column, type_=to, existing_type=was, existing_nullable=nullable)

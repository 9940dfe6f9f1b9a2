"""Jobs remember when their definition left the jobs folder: ``pacer_jobs.removed_at``.

A job defined in the jobs folder stayed enabled, and kept firing, after its file (or its
declaration) was removed. A start now stops such a job (disabled, ``removed_at`` set) and
keeps its history; a definition that comes back clears it. See ``JobService.sync``.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("pacer_jobs", sa.Column("removed_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("pacer_jobs") as batch:
        batch.drop_column("removed_at")

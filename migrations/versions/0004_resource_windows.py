"""Resource windows.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pacer_resource_windows",
        sa.Column("end_ms", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("start_ms", sa.BigInteger(), nullable=False),
        *(
            sa.Column(f"{resource}_{stat}", sa.Float(), nullable=False)
            for resource in ("cpu", "io", "memory")
            for stat in ("average", "min", "max")
        ),
        sa.PrimaryKeyConstraint("end_ms", name="pk_pacer_resource_windows"),
    )


def downgrade() -> None:
    op.drop_table("pacer_resource_windows")

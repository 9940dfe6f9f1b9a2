"""Tokens may expire: ``pacer tokens create --expires-in``, and the embedded pacer's token.

``pacer up --pace`` makes a write token for its embedded pacer and revokes it when it stops; a
server killed with SIGKILL never stopped, so its token stayed live for ever. Such a token now
expires unless the server that holds it keeps extending it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("pacer_tokens", sa.Column("expires_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("pacer_tokens") as batch:
        batch.drop_column("expires_at")

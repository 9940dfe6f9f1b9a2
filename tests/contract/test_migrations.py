"""Alembic migrations and the table definitions describe the same schema."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from pacer.stores.sqlalchemy.dialects import sync_url
from pacer.stores.sqlalchemy.migrate import upgrade
from pacer.stores.sqlalchemy.tables import metadata


def test_migrations_match_table_definitions(database_url: str) -> None:
    """Replaying every migration yields exactly the tables, columns and indexes of tables.py."""
    upgrade(database_url)
    upgrade(database_url)  # applying twice is a no-op
    engine = create_engine(sync_url(database_url))
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, metadata)
        if conn.dialect.name == "sqlite":  # the partial claim index exists on PostgreSQL only
            diff = [d for d in diff if "ix_pacer_runs_claimable" not in str(d)]
    engine.dispose()
    assert [] == diff

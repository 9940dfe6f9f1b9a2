"""Alembic migrations and the table definitions describe the same schema, both ways."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from pacer.stores.sqlalchemy.dialects import sync_url
from pacer.stores.sqlalchemy.migrate import alembic_config, upgrade
from pacer.stores.sqlalchemy.tables import metadata


def _diff(database_url: str) -> list[Any]:
    """What the database lacks or has beyond tables.py (the partial claim index exists on
    PostgreSQL only)."""
    engine = create_engine(sync_url(database_url))
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, metadata)
        if conn.dialect.name == "sqlite":
            diff = [d for d in diff if "ix_pacer_runs_claimable" not in str(d)]
    engine.dispose()
    return diff


def _event_indexes(database_url: str) -> dict[str, list[str | None]]:
    engine = create_engine(sync_url(database_url))
    with engine.connect() as conn:
        indexes = inspect(conn).get_indexes("pacer_events")
    engine.dispose()
    return {index["name"] or "": index["column_names"] for index in indexes}


def test_migrations_match_table_definitions(database_url: str) -> None:
    """Replaying every migration yields exactly the tables, columns and indexes of tables.py."""
    upgrade(database_url)
    upgrade(database_url)  # applying twice is a no-op
    assert [] == _diff(database_url)


def test_every_migration_downgrades_and_upgrades_again(database_url: str) -> None:
    """Downgrading to an empty database and upgrading again gives the same schema."""
    config = alembic_config(database_url)
    upgrade(database_url)
    command.downgrade(config, "base")
    upgrade(database_url)
    assert [] == _diff(database_url)


def test_migration_0008_indexes_the_log_by_time_and_downgrades(database_url: str) -> None:
    """0008 adds the execution log's (at, position) index and no other; its downgrade drops it."""
    config = alembic_config(database_url)
    command.upgrade(config, "0007")
    before = _event_indexes(database_url)
    command.upgrade(config, "0008")
    after = _event_indexes(database_url)
    command.downgrade(config, "0007")
    assert {**before, "ix_pacer_events_at": ["at", "position"]} == after
    assert before == _event_indexes(database_url)

"""The store contract suite runs once per backend (SQLite file, fresh PostgreSQL database)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from pacer.stores.sqlalchemy import SqlStore
from pacer.stores.sqlalchemy.migrate import upgrade


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SqlStore]:
    """A migrated, empty store."""
    upgrade(database_url)
    store = SqlStore(database_url)
    yield store
    await store.close()

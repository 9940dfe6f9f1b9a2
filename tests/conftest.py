"""Shared fixtures: a real PostgreSQL (one fresh database per test that asks for it) and SQLite."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from support import create_pg_database, drop_pg_databases


@pytest.fixture
def make_pg_database() -> Iterator[Callable[[], str]]:
    """Creates empty PostgreSQL databases on demand; returns SQLAlchemy URLs; drops them after."""
    created: list[str] = []

    def make() -> str:
        name, url = create_pg_database()
        created.append(name)
        return url

    yield make
    drop_pg_databases(created)


@pytest.fixture
def pg_url(make_pg_database: Callable[[], str]) -> str:
    """A SQLAlchemy URL (postgresql+psycopg) of a fresh, empty PostgreSQL database."""
    return make_pg_database()


@pytest.fixture
def sqlite_url(tmp_path: os.PathLike[str]) -> str:
    """A SQLAlchemy URL (sqlite+aiosqlite) of a fresh SQLite file."""
    return f"sqlite+aiosqlite:///{tmp_path}/pacer.db"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> str:
    """Every storage test runs twice: on an SQLite file and on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/pacer.db"
    make: Callable[[], str] = request.getfixturevalue("make_pg_database")
    return make()


# -- running Pacer in-process -------------------------------------------------------------------

from collections.abc import AsyncIterator  # noqa: E402
from typing import Any  # noqa: E402

from pacer.bootstrap import Container, running  # noqa: E402
from support import fast_settings  # noqa: E402


@pytest.fixture
async def container(database_url: str) -> AsyncIterator[Container]:
    """A migrated store with actions and services wired, on each backend."""
    async with running(fast_settings(database_url)) as built:
        yield built


@pytest.fixture
def receiver() -> Iterator[Any]:
    """A real HTTP receiver on a free loopback port."""
    from receiver import start_receiver

    running_receiver = start_receiver()
    yield running_receiver
    running_receiver.close()


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Any]:
    """A migrated, empty store on each backend."""
    from pacer.stores.sqlalchemy import SqlStore
    from pacer.stores.sqlalchemy.migrate import upgrade

    upgrade(database_url)
    opened = SqlStore(database_url)
    yield opened
    await opened.close()

"""Write transactions of one process: queued in arrival order on SQLite (``writes.py``), side
by side on PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from pacer.stores.sqlalchemy.dialects import create_engine, reads
from pacer.stores.sqlalchemy.writes import writing


async def test_writers_of_one_process(database_url: str) -> None:
    """Ten writers arrive one after another while a first one holds its transaction open.
    On SQLite they get the lock in the order they arrived (without the queue, each sleeps in
    SQLite's busy handler and whichever retries at the right moment goes first); on
    PostgreSQL they do not wait for the first at all."""
    engine, dialect = create_engine(database_url)
    order: list[int] = []
    first_open = asyncio.Event()
    release_first = asyncio.Event()

    async def write(index: int) -> None:
        async with writing(engine) as conn:
            await conn.execute(text("INSERT INTO scratch VALUES (:n)"), {"n": index})
            order.append(index)
            if index == 0:
                first_open.set()
                await release_first.wait()

    try:
        async with writing(engine) as conn:
            await conn.execute(text("CREATE TABLE scratch (n integer)"))
        first = asyncio.create_task(write(0))
        await first_open.wait()
        others = []
        for index in range(1, 11):
            others.append(asyncio.create_task(write(index)))
            await asyncio.sleep(0.02)  # arrival order
        if dialect.name == "postgresql":
            await asyncio.wait_for(asyncio.gather(*others), 10)  # none waited for the first
            release_first.set()
            await first
        else:
            release_first.set()
            await asyncio.wait_for(asyncio.gather(first, *others), 30)
            assert list(range(11)) == order
    finally:
        release_first.set()
        await engine.dispose()


async def test_queued_writers_leave_the_pool_to_readers(sqlite_url: str) -> None:
    """More writers than the pool has connections queue behind one holding its transaction;
    a read still gets a connection at once (waiting writers held one each, so a read waited
    for the pool's 30 s timeout)."""
    engine, _ = create_engine(sqlite_url)
    holding, release = asyncio.Event(), asyncio.Event()

    async def write(index: int) -> None:
        async with writing(engine) as conn:
            await conn.execute(text("INSERT INTO scratch VALUES (:n)"), {"n": index})
            if index == 0:
                holding.set()
                await release.wait()

    try:
        async with writing(engine) as conn:
            await conn.execute(text("CREATE TABLE scratch (n integer)"))
        writers = [asyncio.create_task(write(0))]
        await holding.wait()
        writers += [asyncio.create_task(write(index)) for index in range(1, 16)]
        await asyncio.sleep(0.2)  # they are all waiting now

        async def read() -> int:
            async with reads(engine).connect() as conn:
                return int((await conn.execute(text("SELECT count(*) FROM scratch"))).scalar_one())

        # 0: the first write is not committed yet. The bound only ends a broken run.
        assert 0 == await asyncio.wait_for(read(), 10)
        release.set()
        await asyncio.wait_for(asyncio.gather(*writers), 30)
    finally:
        release.set()
        await engine.dispose()


async def test_a_write_begun_inside_another_is_refused(sqlite_url: str) -> None:
    """It would wait for itself: an error at once, not a hang (SQLite alone refused it after
    its 30 s busy timeout)."""
    engine, _ = create_engine(sqlite_url)
    try:
        async with writing(engine):
            with pytest.raises(RuntimeError, match="inside another"):
                async with writing(engine):
                    pass
    finally:
        await engine.dispose()

"""Write transactions of one process: queued in arrival order and committed in groups on
SQLite (``writes.py``), side by side on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from pacer.stores.sqlalchemy import writes as write_module
from pacer.stores.sqlalchemy.dialects import create_engine, reads
from pacer.stores.sqlalchemy.writes import CommitFailed, gate_of, writing


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


# -- group commit (SQLite) ------------------------------------------------------------------------


class _Held:
    """Writer 0 holds its transaction open until ``release``; the others queue behind it."""

    def __init__(self) -> None:
        self.open, self.release = asyncio.Event(), asyncio.Event()

    async def insert(self, conn: AsyncConnection, index: int) -> None:
        """Writer ``index``'s row; writer 0 then holds the transaction open."""
        await conn.execute(text("INSERT INTO scratch VALUES (:n)"), {"n": index})
        if index == 0:
            self.open.set()
            await self.release.wait()


async def _scratch(engine: AsyncEngine, ddl: str = "CREATE TABLE scratch (n integer)") -> None:
    async with writing(engine) as conn:
        await conn.execute(text(ddl))


async def _stored(engine: AsyncEngine, table: str = "scratch") -> list[int]:
    async with reads(engine).connect() as conn:
        found = await conn.execute(text(f"SELECT n FROM {table} ORDER BY n"))
        return [int(n) for (n,) in found]


async def _queue_behind(
    held: _Held, write: Callable[[int], Awaitable[None]], count: int
) -> list[asyncio.Task[None]]:
    tasks = [asyncio.create_task(write(0))]
    await held.open.wait()
    for index in range(1, count):
        tasks.append(asyncio.create_task(write(index)))
        await asyncio.sleep(0.01)  # arrival order
    return tasks


@pytest.mark.parametrize("max_s", [60.0, 0.05])
async def test_writers_queued_behind_an_open_transaction_share_its_commit(
    sqlite_url: str, max_s: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eleven writers, ten of them queued while the first holds its transaction open: one
    commit (one fsync) for all, each durable when its block ends, in arrival order. A group
    past its age (``GROUP_MAX_S``) is committed at once: the first alone, then the ten."""
    monkeypatch.setattr(write_module, "GROUP_MAX_S", max_s)
    engine, _ = create_engine(sqlite_url)
    held = _Held()
    gate = gate_of(engine)
    assert gate is not None

    async def write(index: int) -> None:
        async with writing(engine) as conn:
            await held.insert(conn, index)
        assert index in await _stored(engine)  # committed once the block has ended

    try:
        await _scratch(engine)
        writers = gate.writers()
        groups, writes = writers.groups_committed, writers.writes_committed
        tasks = await _queue_behind(held, write, 11)
        assert [] == await _stored(engine)
        held.release.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 30)
        assert list(range(11)) == await _stored(engine)
        expected = 1 if max_s > 1 else 2
        assert (expected, 11) == (
            writers.groups_committed - groups,
            writers.writes_committed - writes,
        )
    finally:
        held.release.set()
        await engine.dispose()


@pytest.mark.parametrize("failing", [0, 3])
async def test_a_failing_writer_is_undone_alone(sqlite_url: str, failing: int) -> None:
    """A writer whose block raises (the first of the group, or one in the middle) gets its
    error and leaves nothing; the others of its group are committed."""
    engine, _ = create_engine(sqlite_url)
    held = _Held()
    errors: dict[int, BaseException] = {}

    async def write(index: int) -> None:
        try:
            async with writing(engine) as conn:
                await held.insert(conn, index)
                if index == failing:
                    raise LookupError(index)
        except LookupError as exc:
            errors[index] = exc

    try:
        await _scratch(engine)
        tasks = await _queue_behind(held, write, 6)
        held.release.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 30)
        assert [failing] == list(errors)
        assert [n for n in range(6) if n != failing] == await _stored(engine)
    finally:
        held.release.set()
        await engine.dispose()


async def test_a_group_whose_commit_fails_fails_every_writer_in_it(sqlite_url: str) -> None:
    """A deferred foreign key is checked at the commit: the group's commit fails, and every
    writer of the group, not only the one that broke it, is told its work was not stored;
    the next writer starts a fresh transaction."""
    engine, _ = create_engine(sqlite_url)
    held = _Held()
    outcomes: dict[int, BaseException | None] = {}

    async def write(index: int) -> None:
        try:
            async with writing(engine) as conn:
                if index == 0:
                    await conn.execute(text("INSERT INTO scratch VALUES (0)"))
                    held.open.set()
                    await held.release.wait()
                else:  # writer 1 refers to a parent that does not exist
                    await conn.execute(text("INSERT INTO child VALUES (:n)"), {"n": index})
            outcomes[index] = None
        except CommitFailed as exc:
            outcomes[index] = exc

    try:
        await _scratch(engine)
        await _scratch(engine, "CREATE TABLE parent (n integer PRIMARY KEY)")
        await _scratch(
            engine,
            "CREATE TABLE child (n integer REFERENCES parent (n) DEFERRABLE INITIALLY DEFERRED)",
        )
        tasks = await _queue_behind(held, write, 2)
        held.release.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 30)
        assert {0, 1} == set(outcomes)
        assert all(isinstance(outcomes[n], CommitFailed) for n in (0, 1)), outcomes
        assert [] == await _stored(engine)
        assert [] == await _stored(engine, "child")
        async with writing(engine) as conn:
            await conn.execute(text("INSERT INTO scratch VALUES (7)"))
        assert [7] == await _stored(engine)
    finally:
        held.release.set()
        await engine.dispose()


async def test_a_writer_giving_up_its_place_in_the_queue_strands_no_one(sqlite_url: str) -> None:
    """The writers behind the open transaction are cancelled while they wait (a request gone,
    a timeout): the first is still committed, and later writers still get their turn."""
    engine, _ = create_engine(sqlite_url)
    held = _Held()

    async def write(index: int) -> None:
        async with writing(engine) as conn:
            await held.insert(conn, index)

    try:
        await _scratch(engine)
        first, *waiting = await _queue_behind(held, write, 4)
        for task in waiting:
            task.cancel()
        held.release.set()
        await asyncio.wait_for(first, 30)
        await asyncio.gather(*waiting, return_exceptions=True)
        await asyncio.wait_for(write(9), 30)
        assert [0, 9] == await _stored(engine)
    finally:
        held.release.set()
        await engine.dispose()

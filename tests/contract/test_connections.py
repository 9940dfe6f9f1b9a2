"""Pooled connections after the server dropped them: a connection idle for a while is pinged
and replaced before use, so even calls without a retry (log reads, token lookups) go through;
and the connection the one-statement calls hold between uses (``held``)."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import event, make_url

from faultproxy import FaultProxy
from pacer.bootstrap import Container, build
from pacer.domain.models import Run
from pacer.domain.runs import adhoc_run
from pacer.domain.tokens import Scope
from pacer.ports import RunFilter
from pacer.settings import Settings
from pacer.stores.sqlalchemy import SqlStore, dialects
from pacer.stores.sqlalchemy.events import SqlEventLog
from pacer.stores.sqlalchemy.migrate import upgrade
from support import PG_ADMIN_DSN


def _drop_connections(url: str) -> None:
    database = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        )


@pytest.mark.parametrize("idle_ping_s", [0.0, 3600.0])
async def test_a_connection_idle_past_the_threshold_is_pinged_and_replaced(
    pg_url: str, monkeypatch: pytest.MonkeyPatch, idle_ping_s: float
) -> None:
    """Idle longer than ``IDLE_PING_S`` (0 here): the dead connection is found by the ping and
    the read succeeds. Trusted without a ping (an hour): the same read fails, which is what
    the ping is for (and why store calls under load, which skip it, retry)."""
    monkeypatch.setattr(dialects, "IDLE_PING_S", idle_ping_s)
    upgrade(pg_url)
    store = SqlStore(pg_url)
    log = SqlEventLog(store.engine, store.dialect)
    try:
        assert [] == await log.read(0, 10)  # one pooled connection, now idle
        _drop_connections(pg_url)
        if idle_ping_s == 0.0:
            assert [] == await log.read(0, 10)
        else:
            with pytest.raises(Exception, match=r"terminat|closed|connection"):
                await log.read(0, 10)
    finally:
        await store.close()


def _runs(n: int) -> list[Run]:
    now = datetime.now(UTC)
    return [
        adhoc_run({"kind": "python", "function": "builtins:len"}, now, now, None) for _ in range(n)
    ]


def _backends(store: SqlStore) -> list[int]:
    """Records the server process of every statement ``store`` sends."""
    pids: list[int] = []

    def record(conn: Any, *_: Any) -> None:
        pids.append(conn.connection.driver_connection.info.backend_pid)

    event.listen(store.engine.sync_engine, "before_cursor_execute", record)
    return pids


async def test_one_statement_calls_keep_one_connection_and_never_wait_for_it(pg_url: str) -> None:
    """Enqueues one after another go through one held connection; enqueues at once do not
    queue behind it but take pooled connections, and every run is stored."""
    upgrade(pg_url)
    store = SqlStore(pg_url)
    try:
        pids = _backends(store)
        await asyncio.gather(*(store.enqueue(_runs(2)) for _ in range(8)))
        assert len(set(pids)) > 1  # the pool now has several connections to hand out
        pids.clear()
        for _ in range(5):
            await store.enqueue(_runs(1))
            await store.get_run("no-such-run")  # a pooled call between them
        enqueues = pids[::2]
        assert 1 == len(set(enqueues))
        assert 21 == len(await store.claim("w", datetime.now(UTC), 100, 30))
    finally:
        await store.close()


@pytest.mark.parametrize("idle_ping_s", [0.0, 3600.0])
async def test_a_held_connection_the_server_dropped_is_replaced(
    pg_url: str, monkeypatch: pytest.MonkeyPatch, idle_ping_s: float
) -> None:
    """After the server dropped every connection, the next enqueue stores its run either way.
    Idle past ``IDLE_PING_S`` (0 here), the held connection went back to the pool and was
    pinged, so no statement failed; trusted (an hour), the statement fails once, the
    connection is thrown away and the store's retry succeeds on a fresh one."""
    monkeypatch.setattr(dialects, "IDLE_PING_S", idle_ping_s)
    upgrade(pg_url)
    store = SqlStore(pg_url)
    failed: list[BaseException] = []
    event.listen(
        store.engine.sync_engine, "handle_error", lambda ctx: failed.append(ctx.original_exception)
    )
    try:
        await store.enqueue(_runs(1))
        _drop_connections(pg_url)
        await store.enqueue(_runs(1))
        assert (0 if idle_ping_s == 0.0 else 1) == len(failed)
        assert 2 == len(await store.claim("w", datetime.now(UTC), 10, 30))
    finally:
        await store.close()


async def test_a_cancelled_statement_does_not_leave_its_connection_held(pg_url: str) -> None:
    """A call cancelled mid-statement (a timeout, a shutdown) leaves the connection in an
    unknown state: the next call must not inherit it."""
    upgrade(pg_url)
    store = SqlStore(pg_url)
    try:
        await store.enqueue(_runs(1))
        pids = _backends(store)
        call = asyncio.ensure_future(store.enqueue(_runs(1)))
        while not pids:
            await asyncio.sleep(0)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        before = pids[0]
        pids.clear()
        await store.enqueue(_runs(1))
        assert before not in pids
    finally:
        await store.close()


async def test_a_process_starting_while_its_database_is_down_waits_for_it(
    pg_url: str, tmp_path: Path
) -> None:
    """Start-up (the migration, then the container) goes through once the database accepts
    connections again, as a worker started during a PostgreSQL restart must; the database is
    reached through a proxy that refuses connections for the first second."""
    database = make_url(pg_url)
    assert database.host is not None
    with FaultProxy(database.host, database.port or 5432) as proxy:
        proxy.drop()
        url = database.set(host=proxy.host, port=proxy.port).render_as_string(hide_password=False)
        settings = Settings(database_url=url, config_file=tmp_path / "absent.toml")
        starting = asyncio.ensure_future(build(settings, sync_jobs=False))
        await asyncio.sleep(1.0)
        assert not starting.done()  # still trying, not failed
        proxy.restore()
        container = await asyncio.wait_for(starting, 30)
        try:
            assert [] == await container.store.list_runs(RunFilter(), 10)
        finally:
            await container.aclose()


async def test_reads_do_not_wait_for_a_writer(container: Container, database_url: str) -> None:
    """While another connection holds a write transaction open, the reads every request and
    the event stream make (a token check, a log page, a run) still answer: on SQLite they
    begin deferred instead of queueing for the write lock behind every writer, which under
    load delayed the stream by up to a second. The bound only turns a wait into a failure."""
    token, secret = await container.tokens.create("reader", Scope.READ)
    await container.tokens.identify(secret)  # its last use is now recent: no write next time
    now = datetime.now(UTC)
    run = adhoc_run({"kind": "python", "function": "x:y"}, now, now, None)
    await container.store.enqueue([run])
    writer = _hold_the_write_lock(database_url)
    try:
        async with asyncio.timeout(5):
            assert token.id == (await container.tokens.identify(secret)).id
            assert [run.id] == [e.run_id for e in await container.events.log.read(0, 10)]
            found = await container.store.get_run(run.id)
            assert found is not None
            # A prune with nothing to delete (the run's event is new) takes no write lock.
            assert 0 == await container.events.prune()
    finally:
        writer.rollback()
        writer.close()


def _hold_the_write_lock(url: str) -> Any:
    """A second connection inside a write transaction, left open."""
    if url.startswith("sqlite"):
        conn = sqlite3.connect(make_url(url).database, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE pacer_tokens SET name = name")
        return conn
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    pg = psycopg.connect(dsn)
    pg.execute("UPDATE pacer_tokens SET name = name")
    pg.execute("UPDATE pacer_runs SET priority = priority")
    return pg


async def test_a_writer_waits_for_another_process_without_stopping_the_loop(
    container: Container, database_url: str
) -> None:
    """A write that finds the lock held by another process (here a second connection) waits
    without holding up the rest of the process: a read answers meanwhile, and the write goes
    through once the lock is released. On SQLite this matters because Pacer's own connections
    run on the event loop's thread (``onloop.py``), where SQLite's busy timeout would stop
    everything for as long as the other process writes; there the wait is an ``asyncio.sleep``
    between tries of ``BEGIN IMMEDIATE``. On PostgreSQL the writer waits for the row lock."""
    now = datetime.now(UTC)
    run = adhoc_run({"kind": "python", "function": "x:y"}, now, now, None)
    await container.store.enqueue([run])
    writer = _hold_the_write_lock(database_url)
    try:
        cancel = asyncio.create_task(container.store.cancel_run(run.id, now))
        async with asyncio.timeout(5):
            found = await container.store.get_run(run.id)
            assert found is not None
            assert found.status.value == "queued"
            await asyncio.sleep(0.05)  # let the writer try and wait at least once
        assert not cancel.done()
    finally:
        writer.rollback()
        writer.close()
    async with asyncio.timeout(30):
        cancelled = await cancel
    assert cancelled.status.value == "cancelled"


async def test_an_sqlite_writer_gives_up_on_a_lock_held_past_the_busy_timeout(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wait is bounded as SQLite's busy timeout bounds it: past ``SQLITE_BUSY_S`` the
    write fails with SQLite's own "database is locked", which store calls treat as
    transient."""
    monkeypatch.setattr(dialects, "SQLITE_BUSY_S", 0.2)
    upgrade(sqlite_url)
    store = SqlStore(sqlite_url)
    writer = _hold_the_write_lock(sqlite_url)
    try:
        async with asyncio.timeout(10):
            with pytest.raises(Exception, match="database is locked"):
                await _begin_a_write(store)
    finally:
        writer.rollback()
        writer.close()
        await store.close()


async def _begin_a_write(store: SqlStore) -> None:
    async with store.engine.begin() as conn:
        await conn.exec_driver_sql("SELECT 1")

"""The execution log: every state change appends one event in its own transaction, positions
grow in commit order, and pruning respects consumers — on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event

from pacer.domain.errors import Conflict
from pacer.domain.events import EventKind
from pacer.domain.models import Completion, RunStatus
from pacer.domain.runs import adhoc_run
from pacer.stores.sqlalchemy import SqlStore
from pacer.stores.sqlalchemy.events import SqlEventLog

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
NOOP = {"kind": "python", "function": "builtins:len"}


def _run(**kw: Any) -> Any:
    return adhoc_run(dict(NOOP), T0, T0, "q1", **kw)


def _log(store: SqlStore) -> SqlEventLog:
    return SqlEventLog(store.engine, store.dialect)


async def _kinds(store: SqlStore, run_id: str) -> list[tuple[str, int, str]]:
    events = await _log(store).read(0, 10_000)
    return [(e.kind.value, e.attempt, e.status.value) for e in events if e.run_id == run_id]


async def test_each_transition_appends_its_event(store: SqlStore) -> None:
    """queued → started → retrying → started → succeeded, each once, with duration and worker."""
    run = _run()
    await store.enqueue([run])
    await store.claim("w1", T0, 10, 30)
    retry_at = T0 + timedelta(seconds=1)
    failed = Completion(run.id, 1, RunStatus.RETRYING, T0, error="boom", retry_at=retry_at)
    await store.complete("w1", [failed])
    await store.claim("w1", retry_at, 10, 30)
    done = Completion(run.id, 2, RunStatus.SUCCEEDED, retry_at + timedelta(milliseconds=250))
    await store.complete("w1", [done])
    expected = [
        ("queued", 0, "queued"),
        ("started", 1, "running"),
        ("retrying", 1, "retrying"),
        ("started", 2, "running"),
        ("succeeded", 2, "succeeded"),
    ]
    assert expected == await _kinds(store, run.id)
    last = (await _log(store).read(0, 100))[-1]
    assert ("w1", "q1", 250.0) == (last.worker, last.query_id, last.duration_ms)


async def test_hot_path_events_carry_the_run_as_it_stands(store: SqlStore) -> None:
    """Every field of the hot path's events (PostgreSQL builds them in SQL from the rows, SQLite
    in Python): times, worker, query, the retry's new due time, a long error cut to 2,000."""
    first, second = _run(), _run(priority=5)
    await store.enqueue([first, second])
    await store.claim("w1", T0, 10, 30)
    retry_at, ended = T0 + timedelta(seconds=9), T0 + timedelta(milliseconds=40)
    await store.complete(
        "w1",
        [
            Completion(first.id, 1, RunStatus.RETRYING, ended, error="x" * 5000, retry_at=retry_at),
            Completion(second.id, 1, RunStatus.SUCCEEDED, ended, result={"rows": 3}),
        ],
    )
    log = await _log(store).read(0, 100)
    got = [
        (e.kind.value, e.run_id, e.attempt, e.status.value, e.at, e.scheduled_at, e.started_at,
         e.finished_at, e.worker, e.query_id, len(e.error or ""))
        for e in log
        if e.kind is not EventKind.QUEUED
    ]  # fmt: skip
    started = {
        ("started", run.id, 1, "running", T0, T0, T0, None, "w1", "q1", 0)
        for run in (first, second)
    }
    assert set(got[:2]) == started  # one claim: its events' order among themselves is free
    assert got[2:] == [
        ("retrying", first.id, 1, "retrying", ended, retry_at, T0, None, "w1", "q1", 2000),
        ("succeeded", second.id, 1, "succeeded", ended, T0, T0, ended, "w1", "q1", 0),
    ]
    queued = {
        (e.run_id, e.attempt, e.status.value, e.at, e.scheduled_at, e.started_at, e.worker)
        for e in log
        if e.kind is EventKind.QUEUED
    }
    assert queued == {(run.id, 0, "queued", T0, T0, None, None) for run in (first, second)}
    positions = [e.position for e in log]
    assert positions == sorted(positions)


async def test_cancel_retry_delay_release_and_reap_are_logged(store: SqlStore) -> None:
    """Manual and housekeeping transitions append events too; a refused one appends nothing."""
    first, second = _run(), _run()
    await store.enqueue([first, second])
    await store.delay_run(first.id, timedelta(seconds=5), T0)
    await store.cancel_run(first.id, T0)
    await store.retry_run(first.id, T0)
    await store.claim("w1", T0 + timedelta(seconds=10), 10, 1)
    await store.release("w1", [(second.id, 1)], T0)
    await store.claim("w2", T0 + timedelta(seconds=20), 10, 1)
    await store.reap_expired(T0 + timedelta(seconds=60), 10)
    kinds_first = [k for k, _, _ in await _kinds(store, first.id)]
    kinds_second = [k for k, _, _ in await _kinds(store, second.id)]
    assert ["queued", "delayed", "cancelled", "queued", "started", "retrying"] == kinds_first
    assert ["queued", "started", "queued", "started", "retrying"] == kinds_second
    count = len(await _log(store).read(0, 100))
    await store.cancel_run(first.id, T0)  # a retrying run can be cancelled...
    with pytest.raises(Conflict):
        await store.cancel_run(first.id, T0)  # ...once: the refused second try logs nothing
    assert count + 1 == len(await _log(store).read(0, 100))


async def test_positions_grow_and_a_page_resumes_where_it_stopped(store: SqlStore) -> None:
    """Reading in pages of 7 after the last position yields every event once, in order."""
    await store.enqueue([_run() for _ in range(50)])
    seen: list[int] = []
    after = 0
    while page := await _log(store).read(after, 7):
        seen += [e.position for e in page if e.position is not None]
        after = seen[-1]
    assert 50 == len(seen) == len(set(seen))
    assert sorted(seen) == seen


#: PostgreSQL: a random 0-4 ms pause inside each statement that appends events, after its
#: positions are drawn and before it commits. An enqueue is one autocommit statement
#: (``onetrip``), so SQLAlchemy's commit event, which delays the others, never fires for it.
_LATE_APPENDS = """
CREATE FUNCTION pacer_test_late() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_sleep(random() * 0.004); RETURN NULL; END $$;
CREATE TRIGGER pacer_test_late AFTER INSERT ON pacer_events
FOR EACH STATEMENT EXECUTE FUNCTION pacer_test_late();
"""


def _writer(url: str, batches: int, made: list[str], seed: int) -> None:
    """A writer thread with its own engine; each commit is delayed a random 0-4 ms, so commit
    order differs from the order positions would be drawn without the log's ordering."""
    rng = random.Random(seed)

    async def write() -> None:
        store = SqlStore(url)

        @event.listens_for(store.engine.sync_engine, "commit")
        def _late(_conn: Any) -> None:
            time.sleep(rng.random() * 0.004)

        try:
            for _ in range(batches):
                runs = [_run() for _ in range(rng.randint(1, 4))]
                await store.enqueue(runs)
                made.extend(r.id for r in runs)
        finally:
            await store.close()

    asyncio.run(write())


async def test_a_fast_reader_sees_every_event_of_concurrent_writers_exactly_once(
    store: SqlStore, database_url: str
) -> None:
    """Six writers commit out of order while a reader polls after its last position: the reader
    sees every event exactly once (none skipped by a later commit of a smaller position)."""
    if store.dialect.name == "postgresql":
        async with store.engine.begin() as conn:
            await conn.exec_driver_sql(_LATE_APPENDS)
    made: list[str] = []
    threads = [
        threading.Thread(target=_writer, args=(database_url, 40, made, seed)) for seed in range(6)
    ]
    for thread in threads:
        thread.start()
    seen: list[str] = []
    after = 0
    log = _log(store)
    while any(t.is_alive() for t in threads) or len(seen) < len(made):
        for item in await log.read(after, 1000):
            seen.append(item.run_id)
            assert item.position is not None
            after = item.position
        if not any(t.is_alive() for t in threads) and not await log.read(after, 1):
            break
    for thread in threads:
        thread.join()
    assert len(made) == len(seen)
    assert sorted(made) == sorted(seen)


async def test_pruning_keeps_what_a_consumer_lacks_and_reports_what_it_missed(
    store: SqlStore,
) -> None:
    """Acknowledged old events go; unacknowledged ones stay until the hard age, after which the
    lagging consumer and an anonymous reader are told what they missed."""
    log = _log(store)
    await store.enqueue([_run() for _ in range(10)])
    positions = [e.position for e in await log.read(0, 100)]
    assert all(p is not None for p in positions)
    await log.acknowledge("fast", positions[5] or 0, T0)
    await log.acknowledge("slow", positions[1] or 0, T0)
    now = T0 + timedelta(days=2)
    assert 2 == await log.prune(now - timedelta(days=1), now - timedelta(days=30), now)
    assert (positions[2],) == tuple(e.position for e in await log.read(0, 1))
    assert 8 == await log.prune(now - timedelta(days=1), now, now)
    slow = await log.consumer("slow")
    assert slow.missed is not None
    assert 8 == slow.missed.count
    missed = await log.missed(0)
    assert missed is not None
    assert (10, positions[-1]) == (missed.count, missed.last)
    assert EventKind.QUEUED == EventKind("queued")


async def test_a_rewound_consumer_holds_the_events_after_its_new_position(
    store: SqlStore,
) -> None:
    """A consumer that acknowledges a lower position than before (a reader replaying from its
    restored store) is taken at its word: pruning keeps every event after the lower one again."""
    log = _log(store)
    await store.enqueue([_run() for _ in range(10)])
    positions = [e.position or 0 for e in await log.read(0, 100)]
    await log.acknowledge("monitor", positions[7], T0)
    rewound = await log.acknowledge("monitor", positions[2], T0)
    now = T0 + timedelta(days=2)
    assert 3 == await log.prune(now - timedelta(days=1), now - timedelta(days=30), now)
    assert positions[2] == rewound.position == (await log.consumer("monitor")).position
    assert positions[3:] == [e.position for e in await log.read(0, 100)]

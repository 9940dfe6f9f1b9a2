"""The run lifecycle in the store: claims, fencing, leases, cancel, retry, release."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import event, text

from pacer.domain.models import Completion, JobSpec, RunStatus
from pacer.domain.runs import adhoc_run, run_for_job
from pacer.ports import RunFilter
from pacer.stores.sqlalchemy import SqlStore
from pacer.stores.sqlalchemy.dialects import NOTIFY_CHANNEL
from pacer.stores.sqlalchemy.events import SqlEventLog
from pacer.stores.sqlalchemy.migrate import upgrade

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
NOOP = {"kind": "python", "function": "builtins:len"}


def _runs(n: int, at: datetime = T0, **kw: object) -> list:
    return [adhoc_run(dict(NOOP), at, T0, None, **kw) for _ in range(n)]  # type: ignore[arg-type]


async def test_claim_takes_only_due_runs_in_priority_then_time_order(store: SqlStore) -> None:
    """A claim returns due runs, highest priority first, then oldest; future runs stay queued."""
    low = adhoc_run(dict(NOOP), T0 - timedelta(seconds=5), T0, None)
    high = adhoc_run(dict(NOOP), T0, T0, None, priority=5)
    future = adhoc_run(dict(NOOP), T0 + timedelta(hours=1), T0, None)
    await store.enqueue([low, high, future])
    claimed = await store.claim("w1", T0, 10, 30)
    assert [high.id, low.id] == [r.id for r in claimed]
    assert all(r.status is RunStatus.RUNNING and r.attempt == 1 for r in claimed)
    assert future.scheduled_at == await store.next_due_at()


async def test_concurrent_claims_never_share_a_run(store: SqlStore) -> None:
    """Many claimers racing over 300 runs: each run is claimed exactly once."""
    await store.enqueue(_runs(300))
    results = await asyncio.gather(*(store.claim(f"w{i}", T0, 25, 30) for i in range(16)))
    ids = [r.id for batch in results for r in batch]
    assert len(ids) == len(set(ids))
    assert 300 == len(ids) + len(await store.claim("late", T0, 1000, 30))


async def test_completion_is_fenced_by_attempt(store: SqlStore) -> None:
    """A worker whose lease expired cannot overwrite the newer attempt's result."""
    (run,) = await store.enqueue(_runs(1))
    (first,) = await store.claim("old", T0, 1, 10)
    reaped = await store.reap_expired(T0 + timedelta(seconds=11), 10)
    assert [RunStatus.RETRYING] == [r.status for r in reaped]
    (second,) = await store.claim("new", T0 + timedelta(seconds=11), 1, 10)
    assert 2 == second.attempt
    stale = Completion(run.id, first.attempt, RunStatus.SUCCEEDED, T0, result="stale")
    fresh = Completion(run.id, second.attempt, RunStatus.SUCCEEDED, T0, result="fresh")
    assert [] == await store.complete("old", [stale])
    assert [run.id] == await store.complete("new", [fresh])
    stored = await store.get_run(run.id)
    assert stored is not None
    assert ("fresh", RunStatus.SUCCEEDED) == (stored.result, stored.status)


async def test_batch_completion_writes_every_outcome(store: SqlStore) -> None:
    """One batch mixes success, retry (rescheduled) and failure, each stored as reported."""
    await store.enqueue(_runs(3))
    a, b, c = await store.claim("w", T0, 3, 30)
    later = T0 + timedelta(seconds=40)
    batch = [
        Completion(a.id, 1, RunStatus.SUCCEEDED, T0, result={"rows": [[1]]}),
        Completion(b.id, 1, RunStatus.RETRYING, T0, error="boom", retry_at=later),
        Completion(c.id, 1, RunStatus.FAILED, T0, error="bad request"),
    ]
    assert {a.id, b.id, c.id} == set(await store.complete("w", batch))
    got = {r.id: r for r in [await store.get_run(x.id) for x in (a, b, c)] if r}
    assert {"rows": [[1]]} == got[a.id].result
    assert (RunStatus.RETRYING, later, None) == (
        got[b.id].status,
        got[b.id].scheduled_at,
        got[b.id].finished_at,
    )
    assert (RunStatus.FAILED, "bad request") == (got[c.id].status, got[c.id].error)


async def test_heartbeat_extends_leases_and_reports_lost_runs(store: SqlStore) -> None:
    """Heartbeats keep leases alive; a cancelled run is reported as no longer held."""
    await store.enqueue(_runs(2))
    a, b = await store.claim("w", T0, 2, 10)
    await store.cancel_run(b.id, T0)
    assert [a.id] == await store.heartbeat("w", [a.id, b.id], T0 + timedelta(seconds=8), 10)
    assert [] == await store.reap_expired(T0 + timedelta(seconds=15), 10)
    assert 1 == len(await store.reap_expired(T0 + timedelta(seconds=19), 10))


async def test_expired_lease_on_last_attempt_is_dead(store: SqlStore) -> None:
    """A run whose worker vanished on its last allowed attempt ends ``dead``."""
    from pacer.domain.models import RetryPolicy

    (run,) = await store.enqueue(_runs(1, retry=RetryPolicy(max_attempts=1)))
    await store.claim("w", T0, 1, 5)
    (reaped,) = await store.reap_expired(T0 + timedelta(seconds=6), 10)
    assert (run.id, RunStatus.DEAD) == (reaped.id, reaped.status)
    assert reaped.error is not None
    assert "lease expired" in reaped.error


async def test_release_gives_runs_back_without_counting_the_attempt(store: SqlStore) -> None:
    """On shutdown, unfinished runs return to the queue at the same attempt count."""
    (run,) = await store.enqueue(_runs(1))
    (claimed,) = await store.claim("w", T0, 1, 30)
    assert 1 == await store.release("w", [(run.id, claimed.attempt)], T0)
    (again,) = await store.claim("w2", T0, 1, 30)
    assert (run.id, 1) == (again.id, again.attempt)


async def test_cancel_and_manual_retry(store: SqlStore) -> None:
    """Cancel a queued run; retry it by hand; a succeeded run cannot be cancelled."""
    import pytest

    from pacer.domain.errors import Conflict, NotFound

    (run,) = await store.enqueue(_runs(1))
    assert RunStatus.CANCELLED == (await store.cancel_run(run.id, T0)).status
    retried = await store.retry_run(run.id, T0)
    assert (RunStatus.QUEUED, 3) == (retried.status, retried.max_attempts)
    await store.claim("w", T0, 1, 30)
    await store.complete("w", [Completion(run.id, 1, RunStatus.SUCCEEDED, T0)])
    with pytest.raises(Conflict):
        await store.cancel_run(run.id, T0)
    with pytest.raises(NotFound):
        await store.cancel_run("no-such-run", T0)


async def test_enqueue_is_idempotent_by_key(store: SqlStore) -> None:
    """The same idempotency key twice yields the first run, not a second one."""
    (first,) = _runs(1, idempotency_key="abc")
    (second,) = _runs(1, idempotency_key="abc")
    run1, created1 = await store.enqueue_idempotent(first)
    run2, created2 = await store.enqueue_idempotent(second)
    assert (True, False, first.id, first.id) == (created1, created2, run1.id, run2.id)


async def test_enqueue_wakes_in_process_listeners(store: SqlStore) -> None:
    """A commit that makes runs claimable signals in-process workers with the earliest time."""
    seen: list[datetime] = []
    store.on_enqueued.append(seen.append)
    await store.enqueue(_runs(2, at=T0 + timedelta(seconds=3)))
    assert [T0 + timedelta(seconds=3)] == seen


async def test_enqueue_notifies_other_processes_on_postgresql(pg_url: str) -> None:
    """Workers of other processes sleep on ``LISTEN``: an enqueue of due runs wakes them, one
    notification per enqueue, sent only once the runs are committed."""
    upgrade(pg_url)
    store = SqlStore(pg_url)
    dsn = pg_url.replace("postgresql+psycopg", "postgresql", 1)
    try:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as listener:
            await listener.execute(f'LISTEN "{NOTIFY_CHANNEL}"')
            runs = _runs(3)
            await store.enqueue(runs)
            received = []
            async for note in listener.notifies(timeout=10, stop_after=1):
                received.append(note)
            assert 1 == len(received)
            async with store.engine.connect() as conn:  # committed when the notification came
                found = await conn.execute(text("SELECT count(*) FROM pacer_runs"))
                assert 3 == found.scalar_one()
    finally:
        await store.close()


async def test_an_enqueue_and_an_idle_claim_are_one_autocommit_statement_on_postgresql(
    pg_url: str,
) -> None:
    """The dispatch path's two writes (see ``onetrip``): each is a single statement on a
    connection in autocommit mode, so one round trip with its commit; their events are logged
    all the same, in the order given and in claim order."""
    upgrade(pg_url)
    store = SqlStore(pg_url)
    sent: list[tuple[str, bool]] = []

    def record(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append((statement, conn.connection.driver_connection.autocommit))

    try:
        low, high = _runs(1), _runs(1, priority=5)
        event.listen(store.engine.sync_engine, "before_cursor_execute", record)
        await store.enqueue(low + high)
        enqueue_sent, sent[:] = list(sent), []
        claimed = await store.claim("w1", T0, 10, 30)
        claim_sent = list(sent)
        event.remove(store.engine.sync_engine, "before_cursor_execute", record)
        assert [True] == [autocommit for _, autocommit in enqueue_sent]
        assert [True] == [autocommit for _, autocommit in claim_sent]
        assert [high[0].id, low[0].id] == [r.id for r in claimed]
        log = await SqlEventLog(store.engine, store.dialect).read(0, 10)
        assert [(e.kind.value, e.run_id) for e in log] == [
            ("queued", low[0].id),
            ("queued", high[0].id),
            ("started", high[0].id),
            ("started", low[0].id),
        ]
    finally:
        await store.close()


async def test_concurrent_delays_of_one_run_all_count(store: SqlStore) -> None:
    """Ten ``POST /delay`` of one second each for the same run, at once: the run is due ten
    seconds later, none lost (SQLite computes the new time from a read, which must be in the
    update's transaction)."""
    (run,) = _runs(1)
    await store.enqueue([run])
    await asyncio.gather(*(store.delay_run(run.id, timedelta(seconds=1), T0) for _ in range(10)))
    stored = await store.get_run(run.id)
    assert stored is not None
    assert T0 + timedelta(seconds=10) == stored.scheduled_at


async def test_last_runs_gives_each_job_its_newest_run(store: SqlStore) -> None:
    """The jobs list's last run: per job the run ``list_runs`` shows first (newest created,
    then highest id), jobs without runs absent, other jobs' runs never mixed in."""
    spec = JobSpec.model_validate({"name": "j", "schedule": {"cron": "* * * * *"}, "action": NOOP})
    one = await store.create_job(spec, "api", None, T0)
    two = await store.create_job(spec.model_copy(update={"name": "k"}), "api", None, T0)
    empty = await store.create_job(spec.model_copy(update={"name": "l"}), "api", None, T0)
    older = [run_for_job(one, T0, T0 - timedelta(minutes=1), None) for _ in range(3)]
    newest = [run_for_job(one, T0, T0, None) for _ in range(3)]  # one created_at: id decides
    other = [run_for_job(two, T0, T0 - timedelta(hours=1), None)]
    await store.enqueue(older + newest + other + _runs(2))
    last = await store.last_runs([one.id, two.id, empty.id, "no-such-job"])
    expected = await store.list_runs(RunFilter(job_id=one.id), 1)
    assert {one.id: expected[0].id, two.id: other[0].id} == {k: r.id for k, r in last.items()}
    assert max(r.id for r in newest) == last[one.id].id
    assert {} == await store.last_runs([])

"""Guarantees that need real processes: SIGKILL, several schedulers, a restarting database."""

from __future__ import annotations

import asyncio
import itertools
import signal
import subprocess
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from pacer.domain.models import RunStatus
from pacer.domain.runs import adhoc_run
from pacer.ports import RunFilter
from pacer.services.clock import SystemClock
from pacer.stores.sqlalchemy import SqlStore
from pacer.stores.sqlalchemy.migrate import upgrade
from support import eventually

Spawn = Callable[..., subprocess.Popen[bytes]]


async def test_sigkilled_worker_run_is_retried_with_the_same_idempotency_key(
    database_url: str, store: SqlStore, receiver: object, spawn: Spawn
) -> None:
    """SIGKILL mid-request: after the lease expires the run is retried, attempt 2, same key."""
    from receiver import Receiver

    assert isinstance(receiver, Receiver)
    receiver.behaviours.append("hang")
    now = SystemClock().now()
    action = {"kind": "http", "url": f"{receiver.url}/hook", "payload": {"metric": 1}}
    run = adhoc_run(action, now, now, None)
    await store.enqueue([run])
    spawn("scheduler", database_url)
    first = spawn("worker", database_url)
    assert await asyncio.to_thread(receiver.arrived.wait, 30)
    first.send_signal(signal.SIGKILL)
    first.wait()
    spawn("worker", database_url)

    async def succeeded() -> bool:
        current = await store.get_run(run.id)
        return current is not None and current.status is RunStatus.SUCCEEDED

    await eventually(succeeded, timeout=60)
    final = await store.get_run(run.id)
    assert final is not None
    assert 2 == final.attempt
    keys = [(r.headers["Idempotency-Key"], r.headers["webhook-id"]) for r in receiver.requests]
    assert [(run.id, run.id)] * 2 == keys


async def test_three_schedulers_make_exactly_one_run_per_fire(
    database_url: str, store: SqlStore, spawn: Spawn, tmp_path: Path
) -> None:
    """Three scheduler processes on one store: each fire of a 1 s schedule yields one run, no gaps."""
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    (jobs / "tick.toml").write_text(
        'name = "tick"\n'
        'schedule = { cron = "* * * * * *" }\n'
        'action = { kind = "http", url = "http://127.0.0.1:9/never-called" }\n'
    )
    schedulers = [spawn("scheduler", database_url, "--jobs-dir", str(jobs)) for _ in range(3)]

    async def enough() -> bool:
        return await store.count_runs(RunFilter()) >= 6

    await eventually(enough, timeout=60)
    for process in schedulers:
        process.send_signal(signal.SIGTERM)
    for process in schedulers:
        assert 0 == process.wait(timeout=30)
    runs = await store.list_runs(RunFilter(), limit=10_000)
    fires = sorted(r.fire_time for r in runs if r.fire_time is not None)
    assert len(runs) == len(set(fires))
    gaps = {b - a for a, b in itertools.pairwise(fires)}
    assert {timedelta(seconds=1)} == gaps


@pytest.mark.restarts_postgres
async def test_worker_survives_a_postgresql_restart(
    pg_url: str, receiver: object, spawn: Spawn
) -> None:
    """PostgreSQL restarts under a busy worker; every run still completes exactly once."""
    from receiver import Receiver

    assert isinstance(receiver, Receiver)
    upgrade(pg_url)
    store = SqlStore(pg_url)
    now = SystemClock().now()
    action = {"kind": "http", "url": f"{receiver.url}/hook"}
    runs = [adhoc_run(action, now + timedelta(milliseconds=5 * i), now, None) for i in range(1000)]
    await store.enqueue(runs)
    spawn("scheduler", pg_url)
    spawn("worker", pg_url)
    await asyncio.sleep(1.5)  # restart while the worker is mid-way through the 5 s of runs
    version = sorted(p.name for p in Path("/etc/postgresql").iterdir())[-1]
    restart = ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"]
    subprocess.run(restart, check=True, capture_output=True)

    async def all_done() -> bool:
        done = await store.count_runs(RunFilter(status=[RunStatus.SUCCEEDED]))
        return done == len(runs)

    await eventually(all_done, timeout=120)
    await store.close()
    keys = {r.headers["Idempotency-Key"] for r in receiver.requests}
    assert {r.id for r in runs} == keys

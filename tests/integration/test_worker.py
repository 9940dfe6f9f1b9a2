"""The worker: executes, retries with backoff, times out, cancels, shuts down gracefully."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from pacer.bootstrap import Container
from pacer.definitions import FUNCTIONS
from pacer.domain.errors import ActionFailed
from pacer.domain.models import RetryPolicy, RunStatus
from pacer.domain.runs import adhoc_run
from pacer.worker.runner import Worker
from support import eventually

CALLS: list[dict[str, Any]] = []
GATE = asyncio.Event()


def _noop(**params: Any) -> dict[str, Any]:
    CALLS.append(params)
    return {"ok": True, **params}


async def _always_fails(**_: Any) -> None:
    raise RuntimeError("database is on fire")


async def _bad_request(**_: Any) -> None:
    raise ActionFailed("400 bad request", retryable=False)


async def _nul(fail: bool = False) -> dict[str, str]:
    if fail:
        raise ActionFailed("bad byte \x00 in row 3", retryable=False)
    return {"text\x00": "a\x00b"}


async def _sleeps(seconds: float = 60.0) -> str:
    await asyncio.sleep(seconds)
    return "slept"


for fn in (_noop, _always_fails, _bad_request, _sleeps, _nul):
    FUNCTIONS[f"tests:{fn.__name__}"] = fn


def _run(function: str, container: Container, **kw: Any) -> Any:
    now = container.clock.now()
    params = kw.pop("parameters", {})
    return adhoc_run(
        {"kind": "python", "function": f"tests:{function}"}, now, now, None, parameters=params, **kw
    )


@pytest.fixture
async def worker(container: Container) -> AsyncIterator[Worker]:
    """A worker running in the background for the test's duration."""
    stop = asyncio.Event()
    worker = container.worker()
    task = asyncio.create_task(worker.run(stop))
    yield worker
    stop.set()
    await task


async def _status(container: Container, run_id: str) -> RunStatus:
    run = await container.store.get_run(run_id)
    assert run is not None
    return run.status


async def test_runs_are_executed_once_and_results_stored(
    container: Container, worker: Worker
) -> None:
    """Every queued run executes exactly once and its result is stored."""
    runs = [_run("_noop", container, parameters={"i": i}) for i in range(40)]
    CALLS.clear()
    await container.store.enqueue(runs)

    async def all_done() -> bool:
        return all([await _status(container, r.id) is RunStatus.SUCCEEDED for r in runs])

    await eventually(all_done)
    assert sorted(range(40)) == sorted(call["i"] for call in CALLS)
    stored = await container.store.get_run(runs[7].id)
    assert stored is not None
    assert {"ok": True, "i": 7} == stored.result


async def test_retryable_failures_back_off_then_die(container: Container, worker: Worker) -> None:
    """A failing run is retried up to max_attempts, then ends ``dead`` with the error."""
    policy = RetryPolicy(max_attempts=3, backoff_s=0.01, max_backoff_s=0.05)
    run = _run("_always_fails", container, retry=policy)
    await container.store.enqueue([run])
    await eventually(lambda: _is(container, run.id, RunStatus.DEAD))
    stored = await container.store.get_run(run.id)
    assert stored is not None
    assert (3, "RuntimeError: database is on fire") == (stored.attempt, stored.error)


async def test_non_retryable_failure_fails_at_once(container: Container, worker: Worker) -> None:
    """An ActionFailed(retryable=False) ends the run ``failed`` after one attempt."""
    run = _run("_bad_request", container)
    await container.store.enqueue([run])
    await eventually(lambda: _is(container, run.id, RunStatus.FAILED))
    stored = await container.store.get_run(run.id)
    assert stored is not None
    assert 1 == stored.attempt


async def test_nul_in_a_result_or_error_does_not_block_the_worker(
    container: Container, worker: Worker
) -> None:
    """PostgreSQL text and jsonb cannot hold NUL: such a result or error is stored with U+FFFD
    in its place, instead of failing the completion batch (which the worker would retry for
    ever, holding every other run's result back with it)."""
    ok, bad, after = (_run("_nul", container, parameters={"fail": f}) for f in (False, True, False))
    await container.store.enqueue([ok, bad])
    await eventually(lambda: _is(container, bad.id, RunStatus.FAILED))
    await container.store.enqueue([after])
    await eventually(lambda: _is(container, after.id, RunStatus.SUCCEEDED))
    stored_ok, stored_bad = (
        await container.store.get_run(ok.id),
        await container.store.get_run(bad.id),
    )
    assert stored_ok is not None
    assert stored_bad is not None
    if container.store.dialect.name == "postgresql":
        assert {"text\ufffd": "a\ufffdb"} == stored_ok.result
        assert "bad byte \ufffd in row 3" == stored_bad.error
    else:  # SQLite keeps them as they are
        assert {"text\x00": "a\x00b"} == stored_ok.result


async def test_per_run_timeout(container: Container, worker: Worker) -> None:
    """A run over its timeout is stopped and counted as a retryable failure."""
    run = _run("_sleeps", container, timeout_s=0.2, retry=RetryPolicy(max_attempts=1))
    await container.store.enqueue([run])
    await eventually(lambda: _is(container, run.id, RunStatus.DEAD))
    stored = await container.store.get_run(run.id)
    assert stored is not None
    assert "timed out after 0.2s" == stored.error


async def test_cancel_a_running_run_stops_it(container: Container, worker: Worker) -> None:
    """Cancelling a running run stops its task at the next heartbeat; it stays cancelled."""
    run = _run("_sleeps", container)
    await container.store.enqueue([run])
    await eventually(lambda: _is(container, run.id, RunStatus.RUNNING))
    await container.store.cancel_run(run.id, container.clock.now())
    await eventually(lambda: _not_inflight(worker, run.id))
    assert RunStatus.CANCELLED == await _status(container, run.id)


async def test_worker_wakes_at_once_when_a_run_is_inserted(
    container: Container, worker: Worker
) -> None:
    """An idle worker (30 s poll) starts a new run on the insert's signal, not on its poll."""
    await asyncio.sleep(0.1)  # let the worker go idle
    run = _run("_noop", container)
    await container.store.enqueue([run])
    await eventually(lambda: _is(container, run.id, RunStatus.SUCCEEDED), timeout=10)


async def test_worker_sleeps_until_a_future_run_is_due(
    container: Container, worker: Worker
) -> None:
    """A run due in 0.5 s starts after its time, without a poll in between."""
    now = container.clock.now()
    run = _run("_noop", container)
    run.scheduled_at = now + timedelta(seconds=0.5)
    await container.store.enqueue([run])
    await eventually(lambda: _is(container, run.id, RunStatus.SUCCEEDED), timeout=10)
    stored = await container.store.get_run(run.id)
    assert stored is not None
    assert stored.started_at is not None
    assert stored.started_at >= run.scheduled_at


async def test_shutdown_finishes_short_runs_and_gives_back_long_ones(container: Container) -> None:
    """On stop, runs that end within the grace period complete; the rest return to the queue."""
    short = _run("_sleeps", container, parameters={"seconds": 0.2})
    long = _run("_sleeps", container, parameters={"seconds": 60})
    await container.store.enqueue([short, long])
    stop = asyncio.Event()
    worker = container.worker()
    task = asyncio.create_task(worker.run(stop))
    await eventually(lambda: _is(container, long.id, RunStatus.RUNNING))
    stop.set()
    await task
    assert RunStatus.SUCCEEDED == await _status(container, short.id)
    given_back = await container.store.get_run(long.id)
    assert given_back is not None
    assert (RunStatus.QUEUED, 0) == (given_back.status, given_back.attempt)


async def _is(container: Container, run_id: str, status: RunStatus) -> bool:
    return await _status(container, run_id) is status


async def _not_inflight(worker: Worker, run_id: str) -> bool:
    return run_id not in worker.inflight

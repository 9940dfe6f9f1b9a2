"""A year of fires across daylight-saving changes, with scheduler restarts and outages."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

from pacer.bootstrap import Container
from pacer.domain.models import JobSpec, MisfirePolicy, RunStatus
from pacer.domain.schedules import ScheduleSpec, fire_times
from pacer.ports import RunFilter
from pacer.services.clock import ManualClock
from pacer.services.scheduler import Scheduler

START = datetime(2026, 1, 1, tzinfo=UTC)
END = datetime(2027, 1, 1, tzinfo=UTC)
HTTP = {"kind": "http", "url": "http://127.0.0.1:9/never-called"}

SCHEDULES = [
    ("amsterdam-0230", ScheduleSpec(cron="30 2 * * *", tz="Europe/Amsterdam"), "all"),
    ("new-york-0130", ScheduleSpec(cron="30 1 * * *", tz="America/New_York"), "latest"),
    ("lord-howe-0145", ScheduleSpec(cron="45 1 * * *", tz="Australia/Lord_Howe"), "skip"),
    # Hourly around London's changes at 01:00 (skipped in March, twice in October): every
    # hour of the day made 8,760 fires, most of the test's 60-100 s a dialect, for nothing
    # more about daylight saving.
    ("london-hourly", ScheduleSpec(cron="0 0-3 * * *", tz="Europe/London"), "all"),
    ("santiago-20m", ScheduleSpec(cron="*/20 0-3 * * 1", tz="America/Santiago"), "latest"),
]


async def test_a_year_of_fires_with_restarts_misses_and_doubles_nothing(
    container: Container,
) -> None:
    """Every fire of the year has exactly one run (queued or recorded as skipped), whatever
    restarts and outages happen, in five zones across their daylight-saving changes."""
    clock = ManualClock(START)
    container.jobs.clock = clock
    for name, schedule, policy in SCHEDULES:
        misfire = MisfirePolicy(policy=policy, grace_s=3600, backfill_limit=10_000)  # type: ignore[arg-type]
        await container.jobs.create(
            JobSpec(name=name, action=HTTP, schedule=schedule, misfire=misfire)
        )  # type: ignore[arg-type]
    rng = random.Random(20261122)
    scheduler = Scheduler(container.store, container.actions, clock)
    while clock.now() < END:
        if rng.random() < 0.05:  # a restart: nothing survives but the store
            scheduler = Scheduler(container.store, container.actions, clock)
        await scheduler.tick()
        outage = rng.random() < 0.02
        step = (
            timedelta(hours=rng.uniform(6, 60))
            if outage
            else timedelta(minutes=rng.uniform(1, 180))
        )
        clock.advance(min(step, END - clock.now()))
    await scheduler.tick()

    for name, schedule, _ in SCHEDULES:
        job = await container.store.get_job_by_name(name)
        assert job is not None
        runs = await container.store.list_runs(RunFilter(job_id=job.id), limit=100_000)
        recorded = Counter(r.fire_time for r in runs)
        expected = fire_times(schedule, START, END, limit=100_000)
        assert [] == [t for t, n in recorded.items() if n > 1], f"{name}: doubled fires"
        assert set(expected) == set(recorded), f"{name}: missed or extra fires"
        if name.endswith("hourly"):
            statuses = {r.status for r in runs}
            assert {RunStatus.QUEUED} == statuses, "policy 'all' backfills every fire"

"""The scheduler: turns due schedule fires into runs, and reaps runs whose worker vanished.

Any number of schedulers may run at once, on any machines: there is no leader. Exactly-once
fires come from the store (unique ``(job_id, fire_time)`` plus a compare-and-set on the job's
``next_fire_at``), so a scheduler that is wrong about the world can only waste work, never
double or drop a fire.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from pacer.domain.misfires import plan_fires
from pacer.domain.models import Job
from pacer.domain.runs import run_for_fire
from pacer.ports import ActionCatalog, Clock, RunStore
from pacer.services.waiting import wait_any

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(
        self,
        store: RunStore,
        actions: ActionCatalog,
        clock: Clock,
        *,
        batch: int = 100,
        max_sleep_s: float = 1.0,
        reap_every_s: float = 1.0,
    ) -> None:
        self.store = store
        self.actions = actions
        self.clock = clock
        self.batch = batch
        self.max_sleep_s = max_sleep_s
        self.reap_every_s = reap_every_s
        #: Set when a job changes in this process, so the change applies at once.
        self.changed = asyncio.Event()
        self._last_reap = 0.0

    async def tick(self) -> int:
        """Record every fire due now; returns how many runs were written."""
        written, more = 0, True
        while more:
            now = self.clock.now()
            due = await self.store.due_jobs(now, self.batch)
            results = [await self._fire(job, now) for job in due]
            written += sum(n for n, _ in results)
            more = len(due) == self.batch or any(not done for _, done in results)
        return written

    async def _fire(self, job: Job, now: datetime) -> tuple[int, bool]:
        schedule = job.spec.schedule
        if schedule is None or job.next_fire_at is None:
            return 0, True
        plan = plan_fires(schedule, job.next_fire_at, now, job.spec.misfire)
        query_id = self.actions.query_id(job.spec.action.model_dump(mode="json"))
        new_runs = [run_for_fire(job, fire, now, query_id) for fire in plan.fires]
        written = await self.store.record_fires(
            job.id, new_runs, job.next_fire_at, plan.next_fire_at
        )
        return written, plan.done

    async def reap(self) -> int:
        """Hand runs of vanished workers to a retry (or ``dead``)."""
        reaped = await self.store.reap_expired(self.clock.now(), limit=1000)
        for run in reaped:
            log.warning("run %s lost its worker; now %s", run.id, run.status.value)
        return len(reaped)

    async def sleep_for(self) -> float:
        """Seconds until the next fire, capped so other processes' job edits show up soon."""
        next_fire = await self.store.next_job_fire_at()
        if next_fire is None:
            return self.max_sleep_s
        seconds = (next_fire - self.clock.now()).total_seconds()
        return min(max(seconds, 0.0), self.max_sleep_s)

    async def run(self, stop: asyncio.Event) -> None:
        """Tick until ``stop``; store outages are logged and retried, never fatal."""
        failures = 0
        while not stop.is_set():
            try:
                await self.reap()
                await self.tick()
                delay = await self.sleep_for()
                failures = 0
            except Exception:
                failures += 1
                delay = min(0.1 * 2**failures, 5.0)
                log.exception(
                    "scheduler tick failed (%d in a row); retrying in %.1fs", failures, delay
                )
            self.changed.clear()
            await wait_any(stop, self.changed, seconds=delay)

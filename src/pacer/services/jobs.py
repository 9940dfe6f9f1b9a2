"""Managing jobs: create, sync from definitions, pause, resume, trigger, delete.

Every path validates the whole spec (schedule, action, target, read-only statement) before
anything is written, so a refused job leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from pacer.domain.errors import Conflict, NotFound
from pacer.domain.models import Job, JobSpec, Run, looks_like_id
from pacer.domain.runs import run_for_job
from pacer.domain.schedules import check_not_stale, first_fire
from pacer.ports import ActionCatalog, Clock, RunStore

#: A one-off job more than this far in the past is a mistake, not a backfill.
MAX_ONE_OFF_AGE = timedelta(hours=1)
#: The ``source`` of jobs written by ``sync`` from the jobs folder (decorators and files).
DEFINITIONS = "definitions"


class JobService:
    def __init__(
        self,
        store: RunStore,
        actions: ActionCatalog,
        clock: Clock,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.store, self.actions, self.clock = store, actions, clock
        self.on_change = on_change or (lambda: None)

    def validate(self, spec: JobSpec) -> None:
        """Raises ``InvalidInput`` naming the field; checks what pydantic alone cannot."""
        self.actions.validate(spec.action.model_dump(mode="json"))
        if spec.schedule is not None:
            check_not_stale(spec.schedule, self.clock.now(), MAX_ONE_OFF_AGE)

    async def create(self, spec: JobSpec, source: str = "api") -> Job:
        return (await self.create_all([spec], source))[0]

    async def create_all(self, specs: Sequence[JobSpec], source: str) -> list[Job]:
        """Create jobs in one transaction, after validating every one: a name found taken
        when they are written (by one of them or by any other job) creates none."""
        for spec in specs:
            self.validate(spec)
        now = self.clock.now()
        planned = [(spec, _first_fire(spec, now)) for spec in specs]
        jobs = await self.store.create_jobs(planned, source, now)
        self.on_change()
        return jobs

    async def sync(self, specs: Sequence[JobSpec], source: str) -> list[Job]:
        """Write jobs defined in code or files. All are validated before any is written.

        An unchanged schedule keeps its place (no fire is repeated or lost across restarts);
        a job paused at run time stays paused, since pausing is operational state.
        """
        existing = {spec.name: await self.store.get_job_by_name(spec.name) for spec in specs}
        for spec in specs:
            if existing[spec.name] is None:
                self.validate(spec)  # a one-off already fired may be stale; a new one may not
            else:
                self.actions.validate(spec.action.model_dump(mode="json"))
        return [await self._sync_one(spec, source, existing[spec.name]) for spec in specs]

    async def _sync_one(self, spec: JobSpec, source: str, existing: Job | None) -> Job:
        now = self.clock.now()
        if existing is None:
            next_fire = first_fire(spec.schedule, now) if spec.schedule else None
            return await self.store.upsert_job(spec, source, next_fire, now)
        spec = spec.model_copy(update={"enabled": existing.spec.enabled})
        next_fire = existing.next_fire_at
        if existing.spec.schedule != spec.schedule:
            next_fire = first_fire(spec.schedule, now) if spec.schedule else None
        return await self.store.upsert_job(spec, source, next_fire, now)

    async def update(self, job_id: str, spec: JobSpec) -> Job:
        """Replace a job's spec; a changed schedule starts from now.

        The write is an update of the id read here, so a job deleted in between is a
        ``NotFound`` rather than created again. A different ``spec.name`` renames the job (its
        id, and so its runs' history, stay); a name another job holds is a ``Conflict``. A job
        from the jobs folder cannot be renamed here: the next start would define it again
        under its old name, and both would fire.
        """
        existing = await self.get(job_id)
        self.validate(spec)
        if spec.name != existing.name and existing.source == DEFINITIONS:
            raise Conflict(
                "name",
                f"job {existing.name!r} is defined in the jobs folder; rename it there",
            )
        now = self.clock.now()
        next_fire = existing.next_fire_at
        if existing.spec.schedule != spec.schedule or existing.spec.enabled != spec.enabled:
            next_fire = first_fire(spec.schedule, now) if spec.schedule else None
        job = await self.store.update_job(existing.id, spec, next_fire, now)
        self.on_change()
        return job

    async def get(self, job_id: str) -> Job:
        """The job with this id or with this name, told apart by the key's shape: a name
        never looks like an id (``JobSpec``), so each key has one meaning, and a name costs one
        query instead of two. A job named like an id before that rule is found by its id."""
        if looks_like_id(job_id):
            job = await self.store.get_job(job_id)
        else:
            job = await self.store.get_job_by_name(job_id)
        if job is None:
            raise NotFound("job", job_id)
        return job

    async def pause(self, job_id: str) -> Job:
        job = await self.get(job_id)
        paused = await self.store.set_job_enabled(job.id, False, job.next_fire_at, self.clock.now())
        self.on_change()
        return paused

    async def resume(self, job_id: str) -> Job:
        """Fires that fell in the pause are not owed: the schedule restarts from now."""
        job = await self.get(job_id)
        now = self.clock.now()
        next_fire = first_fire(job.spec.schedule, now) if job.spec.schedule else None
        resumed = await self.store.set_job_enabled(job.id, True, next_fire, now)
        self.on_change()
        return resumed

    async def delete(self, job_id: str) -> None:
        job = await self.get(job_id)
        await self.store.delete_job(job.id, self.clock.now())
        self.on_change()

    async def trigger(self, job_id: str) -> Run:
        """Run the job now, outside its schedule (even when paused)."""
        job = await self.get(job_id)
        now = self.clock.now()
        query_id = self.actions.query_id(job.spec.action.model_dump(mode="json"))
        run = run_for_job(job, now, now, query_id)
        await self.store.enqueue([run])
        return run


def _first_fire(spec: JobSpec, now: datetime) -> datetime | None:
    return first_fire(spec.schedule, now) if spec.schedule else None

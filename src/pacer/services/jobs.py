"""Managing jobs: create, sync from definitions, pause, resume, trigger, delete.

Every path validates the whole spec (schedule, action, target, read-only statement) before
anything is written, so a refused job leaves nothing behind.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from pacer.domain.errors import Conflict, NotFound
from pacer.domain.models import Job, JobSpec, Run, looks_like_id
from pacer.domain.runs import run_for_job
from pacer.domain.schedules import check_not_stale, first_fire
from pacer.ports import ActionCatalog, Clock, JobWrites, RunStore

log = logging.getLogger(__name__)

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

    async def sync(
        self, specs: Sequence[JobSpec], source: str, *, stop_missing: bool = False
    ) -> list[Job]:
        """Write jobs defined in code or files, in one transaction; every action is validated
        before it begins, and a refusal inside it writes nothing.

        An unchanged schedule keeps its place (no fire is repeated or lost across restarts);
        a job paused at run time stays paused, since pausing is operational state. With
        ``stop_missing`` (a jobs folder was read), a job of ``source`` defined no longer is
        stopped: disabled and marked removed, its history kept (ARCHITECTURE.md says why it
        is not deleted); when its definition comes back it is defined anew under its old id.
        A job of another source (the API, ``pacer jobs add``) is never touched: a definition
        with its name is a ``Conflict``.
        """
        for spec in specs:
            self.actions.validate(spec.action.model_dump(mode="json"))
        now = self.clock.now()
        plans: list[JobWrites] = []

        def plan(existing: Sequence[Job]) -> JobWrites:
            plans.append(_sync_plan(specs, source, existing, now, stop_missing))
            return plans[-1]

        written = await self.store.sync_jobs([spec.name for spec in specs], source, plan, now)
        by_id = {job.id: job for job in written}
        for job_id in plans[-1].stop:
            stopped = by_id[job_id]
            log.warning(
                "stopped job %r (id %s): it is no longer in the jobs folder; its runs stay,"
                " and `pacer jobs delete %s` deletes it",
                stopped.name,
                stopped.id,
                stopped.name,
            )
        self.on_change()
        by_name = {job.name: job for job in written}
        return [by_name[spec.name] for spec in specs]

    async def update(self, job_id: str, spec: JobSpec) -> Job:
        """Replace a job's spec; a changed schedule starts from now.

        The write is an update of the id read here, so a job deleted in between is a
        ``NotFound`` rather than created again. A different ``spec.name`` renames the job (its
        id, and so its runs' history, stay); a name another job holds is a ``Conflict``. A job
        from the jobs folder cannot be renamed here: the next start would define it again
        under its old name, and both would fire.
        """
        existing = await self.get(job_id)
        existing.refuse_if_removed()
        self.validate(spec)
        if spec.name != existing.name and existing.source == DEFINITIONS:
            raise Conflict(
                "name",
                f"job {existing.name!r} is defined in the jobs folder; rename it there",
            )
        now = self.clock.now()
        next_fire = existing.next_fire_at
        if existing.spec.schedule != spec.schedule or existing.spec.enabled != spec.enabled:
            next_fire = _first_fire(spec, now)
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
        job.refuse_if_removed()
        now = self.clock.now()
        next_fire = _first_fire(job.spec, now)
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


def _sync_plan(
    specs: Sequence[JobSpec],
    source: str,
    existing: Sequence[Job],
    now: datetime,
    stop_missing: bool,
) -> JobWrites:
    """The writes of a sync, from the jobs read in its transaction: the jobs named by
    ``specs`` and every job of ``source``."""
    by_name = {job.name: job for job in existing}
    create: list[tuple[JobSpec, datetime | None]] = []
    update: list[tuple[str, JobSpec, datetime | None]] = []
    for spec in specs:
        job = by_name.get(spec.name)
        if job is None:
            if spec.schedule is not None:  # a one-off already fired may be stale; a new one not
                check_not_stale(spec.schedule, now, MAX_ONE_OFF_AGE)
            create.append((spec, _first_fire(spec, now)))
        elif job.source != source:
            raise Conflict(
                "name",
                f"job {spec.name!r} is defined in the jobs folder, but a job of that name was"
                f" created through {job.source} (id {job.id}): rename the definition, or"
                f" delete that job (pacer jobs delete {spec.name})",
            )
        else:
            update.append((job.id, *_redefined(job, spec, now)))
    defined = {spec.name for spec in specs}
    stop = [
        job.id
        for job in existing
        if stop_missing
        and job.source == source
        and job.removed_at is None
        and job.name not in defined
    ]
    return JobWrites(create, update, stop)


def _redefined(job: Job, spec: JobSpec, now: datetime) -> tuple[JobSpec, datetime | None]:
    """A stored job's spec and next fire under its definition as read at this start."""
    same_schedule = job.spec.schedule == spec.schedule
    if job.removed_at is not None:
        # Back in the folder: enabled as its definition says, and from now (fires that fell
        # in its absence are not owed, as after a pause); a schedule it had used up stays so.
        used_up = same_schedule and job.next_fire_at is None
        return spec, None if used_up else _first_fire(spec, now)
    spec = spec.model_copy(update={"enabled": job.spec.enabled})
    return spec, job.next_fire_at if same_schedule else _first_fire(spec, now)

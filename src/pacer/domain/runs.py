"""Building runs: from a scheduled fire, a manual trigger, or an ad-hoc task."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from pacer.domain.models import Job, RetryPolicy, Run, RunStatus, new_id
from pacer.domain.schedules import jitter_offset

if TYPE_CHECKING:
    from pacer.domain.misfires import PlannedFire


def run_for_fire(job: Job, fire: PlannedFire, now: datetime, query_id: str | None) -> Run:
    """A fire that runs is queued at its time (plus its stable jitter); a skipped fire is
    recorded as a finished ``skipped`` run so nothing is dropped silently."""
    spec = job.spec
    jitter = spec.schedule.jitter_s if spec.schedule else 0.0
    scheduled_at = fire.fire_time + jitter_offset(job.id, fire.fire_time, jitter)
    run = run_for_job(job, scheduled_at, now, query_id)
    run.fire_time = fire.fire_time
    if not fire.run:
        run.status = RunStatus.SKIPPED
        run.finished_at = now
        run.error = fire.note
    return run


def run_for_job(job: Job, scheduled_at: datetime, now: datetime, query_id: str | None) -> Run:
    """A queued run carrying a snapshot of the job's action: later edits affect later runs."""
    spec = job.spec
    return Run(
        id=new_id(),
        job_id=job.id,
        query_id=query_id,
        action=spec.action.model_dump(mode="json"),
        parameters=_parameters(job),
        status=RunStatus.QUEUED,
        scheduled_at=scheduled_at,
        created_at=now,
        max_attempts=spec.retry.max_attempts,
        retry=spec.retry.model_dump(mode="json"),
        timeout_s=spec.timeout_s,
        priority=spec.priority,
    )


def _parameters(job: Job) -> dict[str, Any]:
    """The job's parameters; its ``as_of`` travels as one, which the worker reads as the run's
    reference date (and ``sql`` statements bind as ``:as_of``)."""
    parameters = dict(job.spec.parameters)
    if job.spec.as_of is not None:
        parameters["as_of"] = job.spec.as_of.isoformat()
    return parameters


def adhoc_run(
    action: dict[str, Any],
    scheduled_at: datetime,
    now: datetime,
    query_id: str | None,
    *,
    parameters: dict[str, Any] | None = None,
    retry: RetryPolicy | None = None,
    timeout_s: float = 300.0,
    priority: int = 0,
    idempotency_key: str | None = None,
    due_at: datetime | None = None,
) -> Run:
    """A one-off task: no job, the same run lifecycle.

    ``due_at`` is the due time the request named, None if it named none; it is kept as the
    run's ``fire_time`` (its nominal time), because ``scheduled_at`` moves (a delay, a retry)
    and, for a request without one, was computed from when it arrived. A retry of the request
    under the same idempotency key must name the same ``due_at`` again.
    """
    policy = retry or RetryPolicy()
    return Run(
        id=new_id(),
        job_id=None,
        query_id=query_id,
        action=action,
        parameters=parameters or {},
        status=RunStatus.QUEUED,
        scheduled_at=scheduled_at,
        created_at=now,
        fire_time=due_at,
        max_attempts=policy.max_attempts,
        retry=policy.model_dump(mode="json"),
        timeout_s=timeout_s,
        priority=priority,
        idempotency_key=idempotency_key,
    )

"""What the API sends and accepts, beyond the domain's own specs (``JobSpec`` is the job body).

Response models are built from domain records here, so routers stay a few lines each and the
OpenAPI schema states exactly what a client gets.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

from pacer.domain.fields import Integer, Number, iso_time
from pacer.domain.models import (
    ActionSpec,
    Job,
    MisfirePolicy,
    RetryPolicy,
    Run,
    RunStatus,
)
from pacer.domain.moments import accepted
from pacer.domain.schedules import ScheduleSpec
from pacer.services.tasks import TaskRequest

#: An instant taken from a client: ISO-8601 text (never a number), aware, and inside the
#: range Pacer accepts.
Moment = Annotated[AwareDatetime, BeforeValidator(iso_time), AfterValidator(accepted)]


class FieldError(BaseModel):
    field: str
    reason: str


class Problem(BaseModel):
    """RFC 9457 problem details, sent as ``application/problem+json``."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[FieldError] = Field(default_factory=list)


class LastRun(BaseModel):
    at: AwareDatetime
    status: RunStatus
    run_id: str


class JobOut(BaseModel):
    id: str
    name: str
    action: ActionSpec
    schedule: ScheduleSpec | None
    parameters: dict[str, Any]
    retry: RetryPolicy
    misfire: MisfirePolicy
    timeout_s: float
    priority: int
    enabled: bool
    description: str
    source: str
    created_at: AwareDatetime
    updated_at: AwareDatetime
    next_run: AwareDatetime | None = Field(description="When the next fire is due (if enabled).")
    removed_at: AwareDatetime | None = Field(
        description="When a start found the job's definition gone from the jobs folder; the"
        " job is stopped (not enabled) until its definition comes back.",
    )
    last_run: LastRun | None

    @classmethod
    def of(cls, job: Job, last: Run | None) -> JobOut:
        spec = job.spec
        fields = {name: value for name, value in spec if name != "name"}
        return cls(
            **fields,
            id=job.id,
            name=job.name,
            source=job.source,
            created_at=job.created_at,
            updated_at=job.updated_at,
            next_run=job.next_fire_at if spec.enabled else None,
            removed_at=job.removed_at,
            last_run=_last_run(last),
        )


def _last_run(run: Run | None) -> LastRun | None:
    if run is None:
        return None
    at = run.finished_at or run.started_at or run.scheduled_at
    return LastRun(at=at, status=run.status, run_id=run.id)


class RunOut(BaseModel):
    id: str
    job_id: str | None
    query_id: str | None
    action: dict[str, Any]
    parameters: dict[str, Any]
    status: RunStatus
    scheduled_at: AwareDatetime
    created_at: AwareDatetime
    fire_time: AwareDatetime | None = Field(
        description="The nominal time: a schedule's fire, or the due_at a task's request named"
        " (null when it named none, and for manual triggers); scheduled_at may move later."
    )
    attempt: int
    max_attempts: int
    timeout_s: float
    priority: int
    started_at: AwareDatetime | None
    finished_at: AwareDatetime | None
    worker: str | None
    result: Any = None
    error: str | None
    idempotency_key: str | None

    @classmethod
    def of(cls, run: Run) -> RunOut:
        fields = {name: getattr(run, name) for name in cls.model_fields}
        return cls(**fields)


class TaskIn(BaseModel):
    """An ad-hoc task: one run of an action, now or at ``due_at``."""

    model_config = ConfigDict(extra="forbid")

    action: ActionSpec
    due_at: Moment | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    retry: RetryPolicy | None = None
    timeout_s: Number = Field(default=300.0, gt=0, le=7 * 86_400)
    priority: Integer = Field(default=0, ge=-1000, le=1000)

    def request(self, idempotency_key: str | None) -> TaskRequest:
        """The service's request for this task (the API and ``pacer tasks add`` alike)."""
        return TaskRequest(
            action=self.action.model_dump(mode="json"),
            due_at=self.due_at,
            parameters=self.parameters,
            retry=self.retry,
            timeout_s=self.timeout_s,
            priority=self.priority,
            idempotency_key=idempotency_key,
        )


class TaskCreated(BaseModel):
    id: str
    location: str
    status: RunStatus
    scheduled_at: AwareDatetime

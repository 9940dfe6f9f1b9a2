"""The records Pacer stores: jobs and runs, and the small value types they carry.

Specs that users write (schedules, actions, retry policies) are pydantic models so that the
decorator, the TOML/YAML loader and the HTTP API validate them once, the same way, and every
error names its field.
"""

from __future__ import annotations

import enum
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from pacer.domain.errors import Conflict
from pacer.domain.fields import Day, Flag, Integer, Number
from pacer.domain.moments import EARLIEST, LATEST
from pacer.domain.schedules import ScheduleSpec
from pacer.domain.validation import is_stored


class RunStatus(enum.StrEnum):
    """Where a run is in its life. ``failed`` is final after a non-retryable error; ``dead`` is
    final after the last allowed attempt failed; ``retrying`` waits for its next attempt."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RETRYING = "retrying"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"
    DEAD = "dead"


#: Statuses a worker may claim (once due).
CLAIMABLE = (RunStatus.QUEUED, RunStatus.RETRYING)
#: Statuses that never change again, except through a manual retry.
FINAL = (
    RunStatus.SUCCEEDED,
    RunStatus.FAILED,
    RunStatus.CANCELLED,
    RunStatus.SKIPPED,
    RunStatus.DEAD,
)


class Spec(BaseModel):
    """Base for user-written specs: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class RetryPolicy(Spec):
    """Exponential backoff with full jitter: delay = uniform(0, min(max, base * factor**n))."""

    max_attempts: Integer = Field(default=3, ge=1, le=100)
    backoff_s: Number = Field(default=2.0, ge=0, le=86_400)
    factor: Number = Field(default=2.0, ge=1, le=10)
    max_backoff_s: Number = Field(default=600.0, ge=0, le=86_400)
    jitter: Flag = True


class MisfirePolicy(Spec):
    """What to do with fires that passed while nothing was running.

    Fires later than ``grace_s`` are missed; ``skip`` records each as a skipped run, ``latest``
    runs the newest and records the rest as skipped, ``all`` runs up to ``backfill_limit`` of
    the newest and records the rest as skipped.
    """

    policy: Literal["skip", "latest", "all"] = "latest"
    grace_s: Number = Field(default=60.0, ge=0, le=31 * 86_400)
    backfill_limit: Integer = Field(default=100, ge=1, le=10_000)


def _kind_required(schema: dict[str, Any]) -> None:
    """The request schema must say what validation does: ``kind`` picks the action type (the
    union's discriminator), so a body without it is refused, although Python callers may leave
    it out (it has a default). Without this, OpenAPI marked ``kind`` optional."""
    required = schema.setdefault("required", [])
    if "kind" not in required:
        required.insert(0, "kind")


class Action(Spec):
    """Base of the action types: ``kind`` is required in their JSON schema."""

    model_config = ConfigDict(json_schema_extra=_kind_required)


class HttpSink(Spec):
    """Where a ``sql`` or ``metric`` action posts its rows: one POST of the first row, of every
    row, or of all. ``url`` is absolute, or a path (``/result``) on this server's own API."""

    url: str
    mode: Literal["first_row", "each_row", "rows"] = "first_row"
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_s: Number = Field(default=10.0, gt=0, le=300)


class SqlAction(Action):
    kind: Literal["sql"] = "sql"
    target: str = Field(min_length=1)
    statement: str = Field(min_length=1, max_length=100_000)
    read_only: Flag = True
    statement_timeout_s: Number = Field(default=30.0, gt=0, le=86_400)
    max_rows: Integer = Field(default=10_000, ge=1, le=1_000_000)
    sink: HttpSink | None = None


class HttpAction(Action):
    kind: Literal["http"] = "http"
    url: str = Field(min_length=1)
    payload: Any = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_s: Number = Field(default=10.0, gt=0, le=300)


class PythonAction(Action):
    """A registered function, named ``module:qualname``; it gets the run's parameters."""

    kind: Literal["python"] = "python"
    function: str = Field(min_length=1, pattern=r"^[\w.]+:[\w.<>]+$")


class SimAction(Action):
    """One query of the simulated database's scenario (a server run with the ``sim`` sampler)."""

    kind: Literal["sim"] = "sim"
    query: str = Field(min_length=1, max_length=32)


# Imported here, not at the top: metrics builds on ``Spec`` and ``HttpSink`` above.
from pacer.domain.metrics import MetricAction  # noqa: E402

ActionSpec = Annotated[
    SqlAction | HttpAction | PythonAction | MetricAction | SimAction,
    Field(discriminator="kind"),
]


class JobSpec(Spec):
    """Everything a user writes to define a job, wherever they write it."""

    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.\-]+$")
    action: ActionSpec
    schedule: ScheduleSpec | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    misfire: MisfirePolicy = Field(default_factory=MisfirePolicy)
    timeout_s: Number = Field(default=300.0, gt=0, le=7 * 86_400)
    priority: Integer = Field(default=0, ge=-1000, le=1000)
    enabled: Flag = True
    description: str = ""
    #: The date this job's queries treat as "today" (a data set that ends in the past);
    #: None means the server's ``as_of``, else the real date.
    as_of: Day | None = Field(default=None, ge=EARLIEST.date(), le=LATEST.date())

    @field_validator("name")
    @classmethod
    def _not_shaped_like_an_id(cls, value: str, info: ValidationInfo) -> str:
        """A job is addressed by id or by name, so a name that reads as an id could answer
        for another job (the API looked ids up first and acted on the job with that id)."""
        if looks_like_id(value) and not is_stored(info):
            raise ValueError(
                f"{value!r} has the shape of a job id (a UUID); a job name must not, since"
                " jobs are addressed by id or by name"
            )
        return value


@dataclass(frozen=True)
class Job:
    """A stored job: its spec plus identity and scheduler state."""

    id: str
    spec: JobSpec
    source: str
    next_fire_at: datetime | None
    created_at: datetime
    updated_at: datetime
    #: When a start found this job, defined in the jobs folder, gone from it: the job is
    #: stopped (disabled) until its definition comes back. ``None`` for every other job.
    removed_at: datetime | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    def refuse_if_removed(self) -> None:
        """A job whose definition left the jobs folder stays stopped: resumed or replaced by
        hand it would fire until the next start stopped it again (a python job's function is
        gone). Checked by the service before it writes, and by the store's write itself, in
        case a start removed the job in between."""
        if self.removed_at is not None:
            raise Conflict(
                "job",
                f"job {self.name!r} was removed from the jobs folder; put its definition back"
                " there (the next start resumes it), or delete the job",
            )


@dataclass
class Run:
    """One execution of a job or an ad-hoc task, across all of its attempts."""

    id: str
    job_id: str | None
    query_id: str | None
    action: dict[str, Any]
    parameters: dict[str, Any]
    status: RunStatus
    scheduled_at: datetime
    created_at: datetime
    fire_time: datetime | None = None
    attempt: int = 0
    max_attempts: int = 3
    retry: dict[str, Any] = field(default_factory=dict)
    timeout_s: float = 300.0
    priority: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    worker: str | None = None
    lease_until: datetime | None = None
    result: Any = None
    error: str | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True)
class Completion:
    """A worker's report of one finished attempt, fenced by (run id, attempt)."""

    run_id: str
    attempt: int
    status: RunStatus
    finished_at: datetime
    result: Any = None
    error: str | None = None
    #: For ``retrying``: when the next attempt is due.
    retry_at: datetime | None = None


def new_id() -> str:
    """Run and job ids are random UUIDs: unguessable, and mintable by any process offline."""
    return str(uuid.uuid4())


#: The text of an id: a UUID's 8-4-4-4-12 hex digits. ``new_id`` writes lowercase; either case
#: counts, so that a name cannot pass for an id under a case-blind comparison either (a
#: PostgreSQL ``uuid`` column would read ``ABC…`` and ``abc…`` as one value).
_ID_SHAPE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)


def looks_like_id(text: str) -> bool:
    """Whether ``text`` has the shape of an id as ``new_id`` makes them (any UUID version)."""
    return _ID_SHAPE.fullmatch(text) is not None

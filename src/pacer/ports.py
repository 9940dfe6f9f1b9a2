"""The interfaces the core needs from the outside world.

Services depend on these Protocols only; ``pacer.bootstrap`` is the one place that picks the
concrete classes. That keeps the scheduling and retry logic testable with an injected clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from pacer.domain.events import Consumer, Missed, RunEvent
from pacer.domain.metrics import TargetMetadata
from pacer.domain.models import Completion, Job, JobSpec, Run, RunStatus
from pacer.domain.resources import ResourceWindow, Sample
from pacer.domain.tokens import Token

__all__ = [
    "Action",
    "ActionCatalog",
    "Clock",
    "Completion",
    "EventLog",
    "JobWrites",
    "ReceivedResult",
    "ResultStore",
    "RunContext",
    "RunFilter",
    "RunStore",
    "SchemaCatalog",
    "TokenStore",
]


class Clock(Protocol):
    """Time source; always timezone-aware UTC."""

    def now(self) -> datetime: ...


@dataclass(frozen=True)
class RunContext:
    """What an action may know about the run it executes."""

    run_id: str
    attempt: int
    job_id: str | None
    job_name: str | None
    parameters: Mapping[str, Any]
    #: Same for every attempt of one run: receivers use it to drop duplicate deliveries.
    idempotency_key: str
    scheduled_at: datetime
    #: The reference date queries treat as "today" (a data set that ends in the past).
    as_of: date | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


class Action(Protocol):
    """One kind of work (``sql``, ``http``, ``python``).

    ``execute`` returns a JSON-serialisable result or raises ``ActionFailed``; any other
    exception counts as a retryable failure. ``validate`` refuses a spec before it is stored.
    """

    kind: str

    def validate(self, spec: Mapping[str, Any]) -> None: ...

    def query_id(self, spec: Mapping[str, Any]) -> str | None: ...

    async def execute(self, spec: Mapping[str, Any], ctx: RunContext) -> Any: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class RunFilter:
    job_id: str | None = None
    status: Sequence[RunStatus] | None = None
    query_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    #: Only ad-hoc tasks (runs of no job).
    adhoc_only: bool = False


@dataclass(frozen=True)
class JobWrites:
    """What a sync of the jobs folder writes, planned from the jobs read in its transaction.

    ``create`` inserts a job unless its name is taken by then; ``update`` replaces the spec
    (``enabled`` included) and the next fire of the job with that id and clears its
    ``removed_at``; ``stop`` disables the jobs with those ids and sets their ``removed_at``.
    """

    create: Sequence[tuple[JobSpec, datetime | None]] = ()
    update: Sequence[tuple[str, JobSpec, datetime | None]] = ()
    stop: Sequence[str] = ()


class ActionCatalog(Protocol):
    """The registered actions, by kind: validates specs and executes them."""

    def get(self, kind: str) -> Action: ...

    def validate(self, spec: Mapping[str, Any]) -> None: ...

    def query_id(self, spec: Mapping[str, Any]) -> str | None: ...

    def needs_admin(self, spec: Mapping[str, Any]) -> str | None: ...


class RunStore(Protocol):
    """Durable jobs and runs. Every method is one transaction."""

    on_enqueued: list[Callable[[datetime], None]]

    async def sync_jobs(
        self,
        names: Sequence[str],
        source: str,
        plan: Callable[[Sequence[Job]], JobWrites],
        now: datetime,
    ) -> list[Job]: ...

    async def create_job(
        self, spec: JobSpec, source: str, next_fire_at: datetime | None, now: datetime
    ) -> Job: ...

    async def create_jobs(
        self, planned: Sequence[tuple[JobSpec, datetime | None]], source: str, now: datetime
    ) -> list[Job]: ...

    async def update_job(
        self, job_id: str, spec: JobSpec, next_fire_at: datetime | None, now: datetime
    ) -> Job: ...

    async def get_job(self, job_id: str) -> Job | None: ...

    async def get_job_by_name(self, name: str) -> Job | None: ...

    async def list_jobs(self) -> list[Job]: ...

    async def delete_job(self, job_id: str, now: datetime | None = None) -> bool: ...

    async def set_job_enabled(
        self, job_id: str, enabled: bool, next_fire_at: datetime | None, now: datetime
    ) -> Job: ...

    async def due_jobs(self, now: datetime, limit: int) -> list[Job]: ...

    async def next_job_fire_at(self) -> datetime | None: ...

    async def record_fires(
        self,
        job_id: str,
        new_runs: Sequence[Run],
        expected_next: datetime | None,
        next_fire_at: datetime | None,
    ) -> int: ...

    async def enqueue(self, new_runs: Sequence[Run]) -> list[Run]: ...

    async def enqueue_idempotent(self, run: Run) -> tuple[Run, bool]: ...

    async def claim(self, worker: str, now: datetime, limit: int, lease_s: float) -> list[Run]: ...

    async def complete(self, worker: str, completions: Sequence[Completion]) -> list[str]: ...

    async def heartbeat(
        self, worker: str, run_ids: Sequence[str], now: datetime, lease_s: float
    ) -> list[str]: ...

    async def release(self, worker: str, held: Sequence[tuple[str, int]], now: datetime) -> int: ...

    async def reap_expired(self, now: datetime, limit: int) -> list[Run]: ...

    async def next_due_at(self) -> datetime | None: ...

    async def get_run(self, run_id: str) -> Run | None: ...

    async def run_ids_starting(self, prefix: str, limit: int) -> list[str]: ...

    async def list_runs(
        self, flt: RunFilter, limit: int, after: tuple[datetime, str] | None = None
    ) -> list[Run]: ...

    async def last_runs(self, job_ids: Sequence[str]) -> dict[str, Run]: ...

    async def count_runs(self, flt: RunFilter) -> int: ...

    async def cancel_run(self, run_id: str, now: datetime) -> Run: ...

    async def retry_run(self, run_id: str, now: datetime) -> Run: ...

    async def delay_run(self, run_id: str, delay: timedelta, now: datetime) -> Run: ...

    async def list_waiting(self, limit: int) -> list[Run]: ...


class TokenStore(Protocol):
    """API tokens, kept as hashes."""

    async def add_token(self, token: Token, token_hash: str) -> None: ...

    async def find_token(self, token_hash: str) -> Token | None: ...

    async def list_tokens(self) -> list[Token]: ...

    async def revoke_token(self, token_id: str, now: datetime) -> Token: ...

    async def extend_token(self, token_id: str, expires_at: datetime) -> bool: ...

    async def touch_token(self, token_id: str, now: datetime) -> None: ...


@dataclass(frozen=True)
class ReceivedResult:
    id: int
    body: Any
    received_at: datetime
    idempotency_key: str | None = None


class ResultStore(Protocol):
    """Bodies received by ``POST /result``, in arrival order."""

    async def add_result(
        self, body: Any, received_at: datetime, idempotency_key: str | None
    ) -> tuple[ReceivedResult, bool]: ...

    async def list_results(
        self, limit: int | None, after_id: int | None
    ) -> list[ReceivedResult]: ...


class SchemaCatalog(Protocol):
    """The configured targets and what their schemas hold, for metric jobs and the API."""

    def names(self) -> list[str]: ...

    def dialect(self, name: str) -> str: ...

    async def describe(self, name: str) -> TargetMetadata: ...


class EventLog(Protocol):
    """The execution log: read by position, named consumers, pruning."""

    async def read(self, after: int, limit: int) -> list[RunEvent]: ...

    async def head(self) -> int: ...

    async def missed(self, after: int) -> Missed | None: ...

    async def acknowledge(self, name: str, position: int, now: datetime) -> Consumer: ...

    async def consumer(self, name: str) -> Consumer: ...

    async def prune(self, keep_after: datetime, hard_before: datetime, now: datetime) -> int: ...


class ResourceSampler(Protocol):
    """Where utilization comes from: the host (psutil) or the simulated database."""

    def sample(self, at: float) -> Sample: ...


class WindowStore(Protocol):
    """Closed resource windows."""

    async def add_window(self, window: ResourceWindow) -> None: ...

    async def latest_window(self) -> ResourceWindow | None: ...

    async def windows_since(self, since_ms: int, limit: int) -> list[ResourceWindow]: ...

"""The interfaces the core needs from the outside world.

Services depend on these Protocols only; ``pacer.bootstrap`` is the one place that picks the
concrete classes. That keeps the scheduling and retry logic testable with an injected clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from pacer.domain.models import Job, JobSpec, Run, RunStatus


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


@dataclass(frozen=True)
class RunFilter:
    job_id: str | None = None
    status: Sequence[RunStatus] | None = None
    query_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


class RunStore(Protocol):
    """Durable jobs and runs. Every method is one transaction."""

    async def upsert_job(self, spec: JobSpec, source: str, next_fire_at: datetime | None) -> Job: ...

    async def get_job(self, job_id: str) -> Job | None: ...

    async def get_job_by_name(self, name: str) -> Job | None: ...

    async def list_jobs(self) -> list[Job]: ...

    async def delete_job(self, job_id: str) -> bool: ...

    async def set_job_enabled(self, job_id: str, enabled: bool, next_fire_at: datetime | None) -> Job | None: ...

    async def due_jobs(self, now: datetime, limit: int) -> list[Job]: ...

    async def record_fires(
        self, job_id: str, runs: Sequence[Run], expected_next: datetime | None, next_fire_at: datetime | None
    ) -> int: ...

    async def enqueue(self, runs: Sequence[Run]) -> list[Run]: ...

    async def claim(self, worker: str, now: datetime, limit: int, lease_s: float) -> list[Run]: ...

    async def complete(self, worker: str, completions: Sequence[Completion]) -> list[str]: ...

    async def heartbeat(self, worker: str, run_ids: Sequence[str], now: datetime, lease_s: float) -> list[str]: ...

    async def release(self, worker: str, runs: Sequence[tuple[str, int]], now: datetime) -> int: ...

    async def reap_expired(self, now: datetime, limit: int) -> list[Run]: ...

    async def next_due_at(self) -> datetime | None: ...

    async def get_run(self, run_id: str) -> Run | None: ...

    async def list_runs(self, flt: RunFilter, limit: int, after: tuple[datetime, str] | None) -> list[Run]: ...

    async def cancel_run(self, run_id: str, now: datetime) -> Run: ...

    async def retry_run(self, run_id: str, now: datetime) -> Run: ...

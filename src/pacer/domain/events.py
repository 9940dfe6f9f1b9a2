"""The execution log's records: one ``RunEvent`` per state change of a run.

Events are past-tense facts about a run (``started``, ``succeeded``, ...). They are appended in
the same transaction as the change itself, so the log and the runs can never disagree, and
each gets a ``position`` that only grows in commit order.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from pacer.domain.models import Run, RunStatus

#: Longest error text an event carries; the run keeps the whole message.
MAX_EVENT_ERROR = 2_000


class EventKind(enum.StrEnum):
    QUEUED = "queued"
    DELAYED = "delayed"
    STARTED = "started"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RETRYING = "retrying"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"


#: The event a run's new status implies (``dead`` is a final failure: ``failed``).
KIND_OF_STATUS = {
    RunStatus.QUEUED: EventKind.QUEUED,
    RunStatus.RUNNING: EventKind.STARTED,
    RunStatus.SUCCEEDED: EventKind.SUCCEEDED,
    RunStatus.FAILED: EventKind.FAILED,
    RunStatus.DEAD: EventKind.FAILED,
    RunStatus.RETRYING: EventKind.RETRYING,
    RunStatus.CANCELLED: EventKind.CANCELLED,
    RunStatus.SKIPPED: EventKind.SKIPPED,
}


@dataclass(frozen=True)
class RunEvent:
    """One state change of one run. ``position`` is None until the store appends it."""

    kind: EventKind
    run_id: str
    attempt: int
    status: RunStatus
    at: datetime
    job_id: str | None = None
    query_id: str | None = None
    scheduled_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    worker: str | None = None
    error: str | None = None
    position: int | None = None

    @property
    def duration_ms(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds() * 1000


def event_of(run: Run, at: datetime, kind: EventKind | None = None) -> RunEvent:
    """The event for ``run`` as it is after a change made at ``at``."""
    return RunEvent(
        kind=kind or KIND_OF_STATUS[run.status],
        run_id=run.id,
        attempt=run.attempt,
        status=run.status,
        at=at,
        job_id=run.job_id,
        query_id=run.query_id,
        scheduled_at=run.scheduled_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        worker=run.worker,
        error=run.error[:MAX_EVENT_ERROR] if run.error else None,
    )


@dataclass(frozen=True)
class Missed:
    """Events pruned before a reader got them: positions ``first``..``last``, ``count`` of
    them (exact for a registered consumer; at most, for an anonymous reader)."""

    first: int
    last: int
    count: int


@dataclass(frozen=True)
class Consumer:
    name: str
    position: int
    updated_at: datetime
    missed: Missed | None = None

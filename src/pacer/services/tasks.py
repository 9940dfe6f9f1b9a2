"""Ad-hoc tasks: one run with no job, submitted once (idempotently) and tracked like any run."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pacer.domain.errors import Conflict, InvalidInput, NotFound
from pacer.domain.models import RetryPolicy, Run
from pacer.domain.runs import adhoc_run
from pacer.ports import ActionCatalog, Clock, RunFilter, RunStore

#: A task due further back than this is a mistake (a wrong zone, a stale client), not a backlog.
MAX_TASK_AGE = timedelta(hours=1)


@dataclass(frozen=True)
class TaskRequest:
    """What a caller asks for; ``due_at`` None means now."""

    action: dict[str, Any]
    due_at: datetime | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    retry: RetryPolicy | None = None
    timeout_s: float = 300.0
    priority: int = 0
    idempotency_key: str | None = None


def _defining(run: Run) -> dict[str, Any]:
    """Everything a task request sets, as the run keeps it (defaults filled in), by the
    request's field names: two requests under one idempotency key must agree on all of it.

    ``due_at`` is the time the request named (``fire_time``), not ``scheduled_at``: that one
    moves with delays and retries, and for a request naming no time it was computed from the
    arrival, so an identical retry would differ. Instants compare across offsets.
    """
    return {
        "action": run.action,
        "parameters": run.parameters,
        "due_at": run.fire_time,
        "retry": run.retry,
        "timeout_s": run.timeout_s,
        "priority": run.priority,
    }


def _differing(asked: Run, kept: Run) -> list[str]:
    """The request fields on which a new request (``asked``) and the task first created under
    its idempotency key (``kept``) differ.

    ``due_at`` is compared only when ``kept`` has a ``fire_time``. A task created before tasks
    kept their ``due_at`` as ``fire_time`` has none whatever its request named, so an
    identical retry of it was a 409; its other fields still decide. The cost: a stored null
    cannot tell "named no time" from "named one before it was kept", so a retry that names a
    time for a task whose request named none also gets the first task back, not a 409.
    *Rejected:* telling old rows apart (by creation time, by ``scheduled_at``): nothing in a
    row says which code wrote it, and ``scheduled_at`` moves with delays and retries.
    """
    wanted, stored = _defining(asked), _defining(kept)
    if kept.fire_time is None:
        del wanted["due_at"], stored["due_at"]
    return [name for name in wanted if wanted[name] != stored[name]]


#: Ad-hoc tasks without a due time start this long after they are queued: the window in which
#: a pacer (or ``POST /delay``) can still act on them before they run.
ADHOC_DELAY = timedelta(milliseconds=100)


class TaskService:
    def __init__(
        self,
        store: RunStore,
        actions: ActionCatalog,
        clock: Clock,
        adhoc_delay: timedelta = ADHOC_DELAY,
    ) -> None:
        self.store, self.actions, self.clock = store, actions, clock
        self.adhoc_delay = adhoc_delay

    async def submit(self, request: TaskRequest) -> tuple[Run, bool]:
        """Validate and enqueue; returns (run, created). A repeated idempotency key returns
        the run created first and creates nothing, if the request is the same in every field
        (else ``Conflict``)."""
        now = self.clock.now()
        due = request.due_at or now + self.adhoc_delay
        if due < now - MAX_TASK_AGE:
            raise InvalidInput("due_at", f"{due.isoformat()} is more than {MAX_TASK_AGE} ago")
        self.actions.validate(request.action)
        run = adhoc_run(
            request.action,
            due,
            now,
            self.actions.query_id(request.action),
            parameters=request.parameters,
            retry=request.retry,
            timeout_s=request.timeout_s,
            priority=request.priority,
            idempotency_key=request.idempotency_key,
            due_at=request.due_at,
        )
        if request.idempotency_key is None:
            await self.store.enqueue([run])
            return run, True
        stored, created = await self.store.enqueue_idempotent(run)
        differ = _differing(run, stored)
        if differ:
            # As Stripe does: a reused key with another request is a client bug, not a retry.
            raise Conflict(
                "Idempotency-Key",
                f"already used for a different task ({', '.join(differ)} differ)",
            )
        return stored, created

    async def get(self, run_id: str) -> Run:
        run = await self.store.get_run(run_id)
        if run is None or run.job_id is not None:
            raise NotFound("task", run_id)
        return run

    async def cancel(self, run_id: str) -> Run:
        await self.get(run_id)
        return await self.store.cancel_run(run_id, self.clock.now())

    async def list(self, limit: int, after: tuple[datetime, str] | None = None) -> list[Run]:
        """Newest first, keyset-paged like runs."""
        return await self.store.list_runs(RunFilter(adhoc_only=True), limit, after)

"""``GET /queued`` and ``POST /delay``: a contract existing clients use, kept exactly.

``GET /queued`` lists the executions now waiting, each
``{"query": {"id": …}, "execution": {"id": …, "timestamp": <scheduled time, epoch ms>}}``;
``POST /delay`` with ``{"id": <execution id>, "delay": <ms>}`` moves a waiting execution's
scheduled time later and answers its new time. They need a token like ``/api/v1``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from pacer.api.app import ApiServices, services
from pacer.api.auth import READ, WRITE
from pacer.domain.errors import InvalidInput, NotFound
from pacer.domain.fields import Number

router = APIRouter(tags=["queue"])
Services = Annotated[ApiServices, Depends(services)]
#: ``GET /queued`` answers at most this many, soonest first.
MAX_QUEUED = 10_000


class QueryRef(BaseModel):
    id: str | None


class ExecutionRef(BaseModel):
    id: str
    timestamp: int = Field(description="Scheduled start, epoch milliseconds.")


class Queued(BaseModel):
    query: QueryRef
    execution: ExecutionRef


class DelayIn(BaseModel):
    id: str = Field(min_length=1, max_length=36)
    delay: Number = Field(
        description="Milliseconds to add to the scheduled time.", allow_inf_nan=False
    )


def epoch_ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


@router.get("/queued", dependencies=READ)
async def queued(api: Services) -> list[Queued]:
    """The executions waiting to start (queued, or retrying), soonest first."""
    waiting = await api.store.list_waiting(MAX_QUEUED)
    return [
        Queued(
            query=QueryRef(id=run.query_id),
            execution=ExecutionRef(id=run.id, timestamp=epoch_ms(run.scheduled_at)),
        )
        for run in waiting
    ]


@router.post("/delay", dependencies=WRITE)
async def delay(body: DelayIn, api: Services) -> dict[str, Any]:
    """Move a waiting execution later by ``delay`` ms; 404 unknown, 409 already started,
    422 negative or over the configured maximum."""
    limit = api.limits.max_delay_ms
    if body.delay < 0 or body.delay > limit:
        raise InvalidInput("delay", f"must be between 0 and {limit:g} ms")
    if await api.store.get_run(body.id) is None:
        raise NotFound("execution", body.id)
    run = await api.store.delay_run(body.id, timedelta(milliseconds=body.delay), api.clock.now())
    return {"id": run.id, "timestamp": epoch_ms(run.scheduled_at)}

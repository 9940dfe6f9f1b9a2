"""``/api/v1/events`` (page and long poll), ``/api/v1/events/stream`` (Server-Sent Events) and
``/api/v1/consumers``: the execution log for monitoring clients.

A client keeps the ``position`` of the last event it stored and asks for everything after it;
positions grow in commit order, so nothing that commits later can appear behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime, BaseModel, Field

from pacer.api.app import ApiServices, services
from pacer.api.auth import Credentials
from pacer.api.queries import QueryInteger, QueryNumber
from pacer.domain.errors import InvalidInput, Unauthorized
from pacer.domain.events import Consumer, EventKind, Missed, RunEvent
from pacer.domain.fields import Integer
from pacer.domain.models import RunStatus

log = logging.getLogger(__name__)
router = APIRouter(tags=["events"])
#: Positions are 64-bit in the store; a larger one cannot exist (and would overflow a bind).
MAX_POSITION = 2**63 - 1
Services = Annotated[ApiServices, Depends(services)]


class EventOut(BaseModel):
    position: int
    kind: EventKind
    run_id: str
    query_id: str | None
    job_id: str | None
    attempt: int
    status: RunStatus
    at: AwareDatetime
    scheduled_at: AwareDatetime | None
    started_at: AwareDatetime | None
    finished_at: AwareDatetime | None
    duration_ms: float | None
    worker: str | None
    error: str | None

    @classmethod
    def of(cls, event: RunEvent) -> EventOut:
        assert event.position is not None
        fields = {name: getattr(event, name) for name in cls.model_fields}
        return cls(**fields)


class MissedOut(BaseModel):
    """Events pruned before this reader got them: positions ``from``..``to``."""

    first: int = Field(serialization_alias="from")
    last: int = Field(serialization_alias="to")
    count: int

    @classmethod
    def of(cls, missed: Missed | None) -> MissedOut | None:
        return (
            None
            if missed is None
            else cls(first=missed.first, last=missed.last, count=missed.count)
        )


class EventsPage(BaseModel):
    items: list[EventOut]
    next_after: int
    missed: MissedOut | None


class PositionIn(BaseModel):
    position: Integer = Field(ge=0, le=MAX_POSITION)


class ConsumerOut(BaseModel):
    name: str
    position: int
    updated_at: AwareDatetime
    missed: MissedOut | None

    @classmethod
    def of(cls, consumer: Consumer) -> ConsumerOut:
        return cls(
            name=consumer.name,
            position=consumer.position,
            updated_at=consumer.updated_at,
            missed=MissedOut.of(consumer.missed),
        )


@router.get("/events", response_model_by_alias=True)
async def list_events(
    api: Services,
    after: Annotated[
        QueryInteger,
        Query(ge=0, le=MAX_POSITION, description="The last position the client has."),
    ] = 0,
    limit: Annotated[QueryInteger, Query(ge=1, le=1000)] = 100,
    wait: Annotated[QueryNumber, Query(ge=0, le=30, description="Long poll, in seconds.")] = 0,
) -> EventsPage:
    """Events after ``after`` in position order; with ``wait``, answers as soon as there is
    one, or empty after ``wait`` seconds. ``missed`` says what pruning removed first."""
    page = await api.events.page(after, limit, wait)
    return EventsPage(
        items=[EventOut.of(e) for e in page.items],
        next_after=page.next_after,
        missed=MissedOut.of(page.missed),
    )


@router.get(
    "/events/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "An SSE stream."}},
)
async def stream_events(
    api: Services,
    credentials: Credentials,
    after: Annotated[QueryInteger, Query(ge=0, le=MAX_POSITION)] = 0,
    last_event_id: Annotated[str | None, Header(max_length=18)] = None,
) -> StreamingResponse:
    """Server-Sent Events: ``event: run`` per event (``id`` is its position), ``event: missed``
    when pruning skipped some, ``: keepalive`` comments. Resumes from ``Last-Event-ID``."""
    start = after
    if last_event_id is not None:
        if not (last_event_id.isascii() and last_event_id.isdigit()):
            raise InvalidInput("Last-Event-ID", "must be a position (a whole number)")
        start = int(last_event_id)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    secret = credentials.credentials if credentials is not None else None
    stream = _sse(api, start, secret)
    return StreamingResponse(stream, media_type="text/event-stream", headers=headers)


#: How often an open stream checks that its token is still live (not revoked, not expired).
TOKEN_RECHECK_S = 5.0


async def _allowed(api: ApiServices, secret: str | None) -> bool:
    """Whether the stream's token may still read. A token is checked when a request opens,
    and a stream is one request that can last for days: without this, revoking or expiring a
    token did not stop the streams it had opened. A store error keeps the stream (the next
    check tries again) rather than cut every reader on a transient failure."""
    try:
        await api.tokens.identify(secret)
    except Unauthorized:
        return False
    except Exception:
        log.warning("could not recheck a stream's token; keeping the stream", exc_info=True)
    return True


async def _sse(api: ApiServices, after: int, secret: str | None) -> AsyncIterator[str]:
    queue: asyncio.Queue[RunEvent | Missed | None] = asyncio.Queue(maxsize=1000)

    async def pump() -> None:
        try:
            async for item in api.events.stream(after):
                await queue.put(item)
        finally:
            await queue.put(None)  # the service closed (shutdown) or the read failed

    task = asyncio.create_task(pump())
    loop = asyncio.get_running_loop()
    keepalive_s = api.limits.sse_keepalive_s
    next_keepalive, next_check = loop.time() + keepalive_s, loop.time() + TOKEN_RECHECK_S
    try:
        yield ": stream open\n\n"
        while True:
            wait_s = max(0.0, min(next_keepalive, next_check) - loop.time())
            ticked = False
            try:
                item = await asyncio.wait_for(queue.get(), wait_s)
            except TimeoutError:
                ticked = True  # a keepalive or a token check is due
            if loop.time() >= next_check:
                if not await _allowed(api, secret):
                    return  # the reconnect gets the 401 that says why
                next_check = loop.time() + TOKEN_RECHECK_S
            if ticked:
                if loop.time() >= next_keepalive:
                    yield ": keepalive\n\n"
                    next_keepalive = loop.time() + keepalive_s
                continue
            if item is None:
                return
            yield _frame(item)
            next_keepalive = loop.time() + keepalive_s
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


def _frame(item: RunEvent | Missed) -> str:
    if isinstance(item, Missed):
        data: Any = MissedOut.of(item)
        assert data is not None
        return f"event: missed\ndata: {data.model_dump_json(by_alias=True)}\n\n"
    assert isinstance(item, RunEvent)
    body = EventOut.of(item).model_dump_json()
    return f"id: {item.position}\nevent: run\ndata: {body}\n\n"


ConsumerName = Annotated[str, Path(min_length=1, max_length=200)]


@router.put("/consumers/{name}/position", response_model_by_alias=True)
async def acknowledge(name: ConsumerName, body: PositionIn, api: Services) -> ConsumerOut:
    """Record that consumer ``name`` durably stored everything up to ``position``; pruning
    keeps every event after the smallest acknowledged position. A lower position than the
    last one is taken as it is (a rewind: a reader replaying from a restored store; see
    ``EventService.acknowledge``). A ``read`` token suffices: acknowledging is a reader's own
    bookkeeping."""
    return ConsumerOut.of(await api.events.acknowledge(name, body.position))


@router.get("/consumers/{name}", response_model_by_alias=True)
async def get_consumer(name: ConsumerName, api: Services) -> ConsumerOut:
    """A consumer's acknowledged position and what, if anything, it missed."""
    return ConsumerOut.of(await api.events.consumer(name))

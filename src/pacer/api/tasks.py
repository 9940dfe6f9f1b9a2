"""``/api/v1/tasks``: ad-hoc runs of an action, with no job; idempotent by ``Idempotency-Key``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Response, status

from pacer.api.app import ApiServices, services
from pacer.api.auth import WRITE, Principal, require_admin_for
from pacer.api.pagination import DEFAULT_LIMIT, Cursor, Limit, Page, decode_time_key
from pacer.api.runs import page_of
from pacer.api.schemas import RunOut, TaskCreated, TaskIn

router = APIRouter(prefix="/tasks", tags=["tasks"])
Services = Annotated[ApiServices, Depends(services)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        min_length=1,
        max_length=200,
        description="A retried request with the same key returns the first task (200).",
    ),
]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    dependencies=WRITE,
    responses={200: {"model": TaskCreated, "description": "Already created with this key."}},
)
async def create_task(
    body: TaskIn,
    api: Services,
    response: Response,
    caller: Principal,
    idempotency_key: IdempotencyKey = None,
) -> TaskCreated:
    """Queue one run of an action, now or at ``due_at``; answers at once. A raw ``sql``
    action needs an admin token."""
    require_admin_for(caller, api.actions, body.action)
    request = body.request(idempotency_key)
    run, created = await api.tasks.submit(request)
    location = f"/api/v1/tasks/{run.id}"
    response.headers["Location"] = location
    if not created:
        response.status_code = status.HTTP_200_OK
    return TaskCreated(
        id=run.id, location=location, status=run.status, scheduled_at=run.scheduled_at
    )


@router.get("")
async def list_tasks(
    api: Services, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> Page[RunOut]:
    """Ad-hoc runs, newest first, keyset-paged like runs."""
    runs = await api.tasks.list(limit + 1, decode_time_key(cursor))
    return page_of(runs, limit)


@router.get("/{task_id}")
async def get_task(task_id: str, api: Services) -> RunOut:
    """One task, with its result and error."""
    return RunOut.of(await api.tasks.get(task_id))


@router.post("/{task_id}/cancel", dependencies=WRITE)
async def cancel_task(task_id: str, api: Services) -> RunOut:
    """Cancel a task that has not finished; 409 once it has."""
    return RunOut.of(await api.tasks.cancel(task_id))

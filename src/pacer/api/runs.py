"""``/api/v1/runs``: every run (scheduled or ad hoc), filtered and keyset-paged; retry, cancel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from pacer.api.app import ApiServices, services
from pacer.api.auth import WRITE
from pacer.api.pagination import (
    DEFAULT_LIMIT,
    Cursor,
    Limit,
    Page,
    decode_time_key,
    encode_time_key,
    split,
)
from pacer.api.schemas import Moment, RunOut
from pacer.domain.errors import NotFound
from pacer.domain.models import Run, RunStatus
from pacer.ports import RunFilter

router = APIRouter(prefix="/runs", tags=["runs"])
Services = Annotated[ApiServices, Depends(services)]


def page_of(runs: list[Run], limit: int) -> Page[RunOut]:
    """Newest first; the cursor is the (created_at, id) of the last run served."""
    page, more = split(runs, limit)
    last = page[-1] if more else None
    next_cursor = encode_time_key(last.created_at, last.id) if last else None
    return Page[RunOut](items=[RunOut.of(run) for run in page], next_cursor=next_cursor)


async def _job_id(api: ApiServices, job: str | None) -> str | None:
    """A job's id from its id or name; an unknown value is kept as an id, since the runs of
    a deleted job stay in the history under its id."""
    if job is None:
        return None
    try:
        return (await api.jobs.get(job)).id
    except NotFound:
        return job


@router.get("")
async def list_runs(
    api: Services,
    job: Annotated[str | None, Query(description="Job id or name.")] = None,
    status: Annotated[list[RunStatus] | None, Query()] = None,
    query_id: str | None = None,
    since: Annotated[Moment | None, Query(description="Created at or after.")] = None,
    until: Annotated[Moment | None, Query(description="Created before.")] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[RunOut]:
    """Runs, newest first, stable under concurrent inserts (keyset on created_at, id)."""
    after = decode_time_key(cursor)
    flt = RunFilter(await _job_id(api, job), status or None, query_id, since, until)
    return page_of(await api.store.list_runs(flt, limit + 1, after), limit)


async def _run(api: ApiServices, run_id: str) -> Run:
    run = await api.store.get_run(run_id)
    if run is None:
        raise NotFound("run", run_id)
    return run


@router.get("/{run_id}")
async def get_run(run_id: str, api: Services) -> RunOut:
    """One run, with its result and error."""
    return RunOut.of(await _run(api, run_id))


@router.post("/{run_id}/retry", dependencies=WRITE)
async def retry_run(run_id: str, api: Services) -> RunOut:
    """Queue a finished run again, with a fresh allowance of attempts; 409 if not finished."""
    return RunOut.of(await api.store.retry_run(run_id, api.clock.now()))


@router.post("/{run_id}/cancel", dependencies=WRITE)
async def cancel_run(run_id: str, api: Services) -> RunOut:
    """Cancel a queued, retrying or running run; 409 once it has finished."""
    return RunOut.of(await api.store.cancel_run(run_id, api.clock.now()))

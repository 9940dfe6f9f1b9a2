"""``/api/v1/jobs``: create, list, read, replace, delete, pause, resume and trigger jobs.

A job is addressed by id or by name. Every change goes through ``JobService``, which validates
the whole spec before writing and wakes the scheduler.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from pacer.api.app import ApiServices, services
from pacer.api.auth import WRITE, Principal, require_admin_for
from pacer.api.pagination import DEFAULT_LIMIT, Cursor, Limit, Page, decode, encode, split
from pacer.api.schemas import JobOut, RunOut
from pacer.domain.models import Job, JobSpec

router = APIRouter(prefix="/jobs", tags=["jobs"])
Services = Annotated[ApiServices, Depends(services)]


async def _out(api: ApiServices, job: Job) -> JobOut:
    last = await api.store.last_runs([job.id])
    return JobOut.of(job, last.get(job.id))


@router.post("", status_code=status.HTTP_201_CREATED, dependencies=WRITE)
async def create_job(spec: JobSpec, api: Services, response: Response, caller: Principal) -> JobOut:
    """Create a job; 409 when the name is taken. Nothing is written if any field is invalid.
    A raw ``sql`` action needs an admin token."""
    require_admin_for(caller, api.actions, spec.action)
    job = await api.jobs.create(spec, source="api")
    response.headers["Location"] = f"/api/v1/jobs/{job.id}"
    return await _out(api, job)


@router.get("")
async def list_jobs(
    api: Services, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> Page[JobOut]:
    """Jobs by name. The store returns them all sorted; pages are cut here, on the name."""
    after = decode(cursor, 1)[0] if cursor is not None else None
    jobs = [job for job in await api.store.list_jobs() if after is None or job.name > after]
    page, more = split(jobs, limit)
    next_cursor = encode(page[-1].name) if more else None
    last = await api.store.last_runs([job.id for job in page])
    items = [JobOut.of(job, last.get(job.id)) for job in page]
    return Page[JobOut](items=items, next_cursor=next_cursor)


@router.get("/{job}")
async def get_job(job: str, api: Services) -> JobOut:
    """One job by id or name, with its last and next run."""
    return await _out(api, await api.jobs.get(job))


@router.put("/{job}", dependencies=WRITE)
async def replace_job(job: str, spec: JobSpec, api: Services, caller: Principal) -> JobOut:
    """Replace the spec, keeping the id; another ``name`` renames the job (409 when another
    job has it, or when the job comes from the jobs folder). 404 if the job was deleted
    meanwhile. A changed schedule restarts from now."""
    require_admin_for(caller, api.actions, spec.action)
    return await _out(api, await api.jobs.update(job, spec))


@router.delete("/{job}", status_code=status.HTTP_204_NO_CONTENT, dependencies=WRITE)
async def delete_job(job: str, api: Services) -> None:
    """Delete the job and its queued runs; finished runs stay as history."""
    await api.jobs.delete(job)


@router.post("/{job}/pause", dependencies=WRITE)
async def pause_job(job: str, api: Services) -> JobOut:
    """Stop firing; a run already queued still runs."""
    return await _out(api, await api.jobs.pause(job))


@router.post("/{job}/resume", dependencies=WRITE)
async def resume_job(job: str, api: Services) -> JobOut:
    """Fire again from now; fires that fell in the pause are not owed."""
    return await _out(api, await api.jobs.resume(job))


@router.post("/{job}/trigger", status_code=status.HTTP_202_ACCEPTED, dependencies=WRITE)
async def trigger_job(job: str, api: Services) -> RunOut:
    """Queue a run now, outside the schedule (even when paused)."""
    return RunOut.of(await api.jobs.trigger(job))

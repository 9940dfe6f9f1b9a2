"""``/api/v1/jobs`` through the ASGI app, on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pacer.api.app import create_app
from pacer.bootstrap import Container, running
from pacer.domain.errors import NotFound
from pacer.domain.models import Job, JobSpec
from pacer.domain.tokens import Scope
from pacer.domain.validation import STORED
from pacer.services.jobs import DEFINITIONS
from support import fast_settings

NOOP = {"kind": "python", "function": "pacer.testing:noop"}
PROBLEM = "application/problem+json"


def job_body(name: str = "nightly", **changes: Any) -> dict[str, Any]:
    return {"name": name, "schedule": {"cron": "0 3 * * *"}, "action": NOOP, **changes}


@contextlib.asynccontextmanager
async def api_client(
    container: Container, scope: Scope | None = Scope.ADMIN
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to ``create_app`` over the container's real services, carrying
    a fresh token of ``scope`` (none when ``scope`` is None)."""
    headers = {}
    if scope is not None:
        _, secret = await container.tokens.create(f"test-{scope}", scope)
        headers["Authorization"] = f"Bearer {secret}"
    transport = httpx.ASGITransport(app=create_app(container.api_services()))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers=headers
    ) as client:
        yield client


@pytest.fixture
async def container(database_url: str, tmp_path: Path) -> AsyncIterator[Container]:
    """The shared container, plus a ``demo`` SQL target for the sql-job cases."""
    settings = fast_settings(database_url, targets={"demo": f"sqlite:///{tmp_path}/demo.db"})
    async with running(settings) as built:
        yield built


@pytest.fixture
async def client(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(container) as built:
        yield built


async def test_create_then_read_by_id_and_by_name(client: httpx.AsyncClient) -> None:
    """POST answers 201 with a Location; the job reads back by id and by name."""
    created = await client.post("/api/v1/jobs", json=job_body())
    job = created.json()
    assert 201 == created.status_code
    assert f"/api/v1/jobs/{job['id']}" == created.headers["location"]
    by_id = await client.get(created.headers["location"])
    by_name = await client.get("/api/v1/jobs/nightly")
    assert job == by_id.json() == by_name.json()
    assert ("nightly", "api", True) == (job["name"], job["source"], job["enabled"])


async def test_new_job_shows_next_run_and_no_last_run(client: httpx.AsyncClient) -> None:
    """A fresh cron job has a next run at 03:00 UTC and no last run."""
    job = (await client.post("/api/v1/jobs", json=job_body())).json()
    assert None is job["last_run"]
    assert job["next_run"].endswith("T03:00:00Z")


async def test_trigger_queues_a_run_shown_as_last_run(client: httpx.AsyncClient) -> None:
    """Trigger answers 202 with a queued run, which the job then shows as its last run."""
    await client.post("/api/v1/jobs", json=job_body())
    triggered = await client.post("/api/v1/jobs/nightly/trigger")
    run = triggered.json()
    job = (await client.get("/api/v1/jobs/nightly")).json()
    assert (202, "queued") == (triggered.status_code, run["status"])
    assert {"at": run["scheduled_at"], "status": "queued", "run_id": run["id"]} == job["last_run"]


async def test_the_jobs_list_shows_each_jobs_newest_run(client: httpx.AsyncClient) -> None:
    """Each job on a page of the list carries its own newest run (one query for the page)."""
    for name in ("a", "b", "c"):
        await client.post("/api/v1/jobs", json=job_body(name=name))
    await client.post("/api/v1/jobs/a/trigger")
    newest_a = (await client.post("/api/v1/jobs/a/trigger")).json()
    newest_b = (await client.post("/api/v1/jobs/b/trigger")).json()
    listed = (await client.get("/api/v1/jobs", params={"limit": 3})).json()["items"]
    last = {job["name"]: job["last_run"] and job["last_run"]["run_id"] for job in listed}
    assert {"a": newest_a["id"], "b": newest_b["id"], "c": None} == last


async def test_pause_and_resume(client: httpx.AsyncClient) -> None:
    """Pause disables the job (no next run); resume enables it with a next run again."""
    await client.post("/api/v1/jobs", json=job_body())
    paused = (await client.post("/api/v1/jobs/nightly/pause")).json()
    resumed = (await client.post("/api/v1/jobs/nightly/resume")).json()
    assert (False, None) == (paused["enabled"], paused["next_run"])
    assert True is resumed["enabled"]
    assert resumed["next_run"] is not None


async def test_put_replaces_the_spec(client: httpx.AsyncClient) -> None:
    """PUT replaces the whole spec, keeping the id."""
    job = (await client.post("/api/v1/jobs", json=job_body())).json()
    body = job_body(schedule={"interval_s": 60}, description="every minute")
    replaced = await client.put("/api/v1/jobs/nightly", json=body)
    assert 200 == replaced.status_code
    assert (job["id"], 60, "every minute") == (
        replaced.json()["id"],
        replaced.json()["schedule"]["interval_s"],
        replaced.json()["description"],
    )


async def test_put_with_another_name_renames_the_job(client: httpx.AsyncClient) -> None:
    """A PUT whose body has a new name renames the job: same id, old name gone."""
    job = (await client.post("/api/v1/jobs", json=job_body())).json()
    answer = await client.put("/api/v1/jobs/nightly", json=job_body("renamed"))
    assert (200, job["id"], "renamed") == (
        answer.status_code,
        answer.json()["id"],
        answer.json()["name"],
    )
    assert 404 == (await client.get("/api/v1/jobs/nightly")).status_code
    assert job["id"] == (await client.get("/api/v1/jobs/renamed")).json()["id"]


async def test_put_renaming_to_a_taken_name_is_409(client: httpx.AsyncClient) -> None:
    """A rename to another job's name is a 409 naming ``name``; neither job changes."""
    mine = (await client.post("/api/v1/jobs", json=job_body("mine"))).json()
    theirs = (await client.post("/api/v1/jobs", json=job_body("theirs"))).json()
    answer = await client.put(f"/api/v1/jobs/{mine['id']}", json=job_body("theirs", priority=9))
    assert (409, PROBLEM, ["name"]) == (
        answer.status_code,
        answer.headers["content-type"],
        [e["field"] for e in answer.json()["errors"]],
    )
    assert [mine, theirs] == (await client.get("/api/v1/jobs")).json()["items"]


async def test_put_cannot_rename_a_job_from_the_jobs_folder(
    container: Container, client: httpx.AsyncClient
) -> None:
    """A job defined in the jobs folder keeps its name (the next start would bring the old
    one back): 409 naming ``name``; other changes are still accepted."""
    await container.jobs.sync([JobSpec.model_validate(job_body("defined"))], DEFINITIONS)
    renamed = await client.put("/api/v1/jobs/defined", json=job_body("moved"))
    edited = await client.put("/api/v1/jobs/defined", json=job_body("defined", priority=3))
    assert (409, ["name"]) == (renamed.status_code, [e["field"] for e in renamed.json()["errors"]])
    assert (200, 3) == (edited.status_code, edited.json()["priority"])


async def test_a_job_gone_from_the_jobs_folder_says_so_and_stays_stopped(
    container: Container, client: httpx.AsyncClient
) -> None:
    """A job stopped because it left the jobs folder shows ``removed_at`` and no next run;
    resuming or replacing it is a 409 (it would fire until the next start stopped it again),
    and it can be deleted."""
    await container.jobs.sync([JobSpec.model_validate(job_body("defined"))], DEFINITIONS)
    await container.jobs.sync([], DEFINITIONS, stop_missing=True)
    shown = (await client.get("/api/v1/jobs/defined")).json()
    assert (False, None, True) == (
        shown["enabled"],
        shown["next_run"],
        shown["removed_at"] is not None,
    )
    resumed = await client.post("/api/v1/jobs/defined/resume")
    replaced = await client.put("/api/v1/jobs/defined", json=job_body("defined"))
    assert [(409, ["job"]), (409, ["job"])] == [
        (answer.status_code, [e["field"] for e in answer.json()["errors"]])
        for answer in (resumed, replaced)
    ]
    assert not (await client.get("/api/v1/jobs/defined")).json()["enabled"]
    assert 204 == (await client.delete("/api/v1/jobs/defined")).status_code


async def test_update_of_a_job_deleted_after_it_was_read_is_not_found(
    container: Container,
) -> None:
    """A job deleted between the update's read and its write stays deleted: ``NotFound``,
    and no job comes back under a new id (a concurrent PUT and DELETE did that)."""
    job = await container.jobs.create(JobSpec.model_validate(job_body()))
    store = container.store
    read = store.get_job

    async def read_then_deleted(job_id: str) -> Job | None:
        found = await read(job_id)
        await store.delete_job(job_id)
        return found

    store.get_job = read_then_deleted  # type: ignore[method-assign]
    with pytest.raises(NotFound):
        await container.jobs.update(job.id, JobSpec.model_validate(job_body(priority=5)))
    assert [] == await store.list_jobs()


async def test_a_job_cannot_be_named_after_another_jobs_id(client: httpx.AsyncClient) -> None:
    """A job named after another job's id is refused (422 on ``name``), so the id keeps
    addressing the job it belongs to."""
    victim = (await client.post("/api/v1/jobs", json=job_body("victim"))).json()
    answer = await client.post("/api/v1/jobs", json=job_body(victim["id"]))
    assert (422, PROBLEM, ["name"]) == (
        answer.status_code,
        answer.headers["content-type"],
        [e["field"] for e in answer.json()["errors"]],
    )
    assert ["victim"] == [job["name"] for job in (await client.get("/api/v1/jobs")).json()["items"]]
    renamed = await client.put("/api/v1/jobs/victim", json=job_body(victim["id"]))
    assert (422, ["name"]) == (renamed.status_code, [e["field"] for e in renamed.json()["errors"]])


async def test_a_job_stored_with_an_id_shaped_name_loads_and_is_found_by_its_id(
    container: Container, client: httpx.AsyncClient
) -> None:
    """A job named like an id before the rule still lists, is reached by its own id, and its
    name never stands for the job whose id it is."""
    victim = (await client.post("/api/v1/jobs", json=job_body("victim"))).json()
    legacy_spec = JobSpec.model_validate(job_body(victim["id"]), context=STORED)
    legacy = await container.store.create_job(legacy_spec, "api", None, container.clock.now())
    listed = (await client.get("/api/v1/jobs")).json()["items"]
    assert {victim["id"], legacy.id} == {job["id"] for job in listed}
    assert "victim" == (await client.get(f"/api/v1/jobs/{victim['id']}")).json()["name"]
    assert victim["id"] == (await client.get(f"/api/v1/jobs/{legacy.id}")).json()["name"]


async def test_delete_removes_the_job_and_its_queued_runs(client: httpx.AsyncClient) -> None:
    """DELETE answers 204; the job is gone (404) and so are its queued runs."""
    await client.post("/api/v1/jobs", json=job_body())
    run = (await client.post("/api/v1/jobs/nightly/trigger")).json()
    deleted = await client.delete("/api/v1/jobs/nightly")
    assert 204 == deleted.status_code
    assert 404 == (await client.get("/api/v1/jobs/nightly")).status_code
    assert 404 == (await client.get(f"/api/v1/runs/{run['id']}")).status_code


async def test_duplicate_name_is_409(client: httpx.AsyncClient) -> None:
    """A second job with a taken name is a 409 problem naming ``name``."""
    await client.post("/api/v1/jobs", json=job_body())
    answer = await client.post("/api/v1/jobs", json=job_body())
    assert (409, PROBLEM) == (answer.status_code, answer.headers["content-type"])
    assert ["name"] == [e["field"] for e in answer.json()["errors"]]


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_unknown_job_is_404_problem(client: httpx.AsyncClient, method: str) -> None:
    """Every verb on a job that does not exist answers a 404 problem."""
    body = job_body("ghost") if method == "PUT" else None
    answer = await client.request(method, "/api/v1/jobs/ghost", json=body)
    assert (404, PROBLEM, 404) == (
        answer.status_code,
        answer.headers["content-type"],
        answer.json()["status"],
    )


@pytest.mark.parametrize("action", ["pause", "resume", "trigger"])
async def test_actions_on_unknown_job_are_404(client: httpx.AsyncClient, action: str) -> None:
    """Pause, resume and trigger on a missing job answer 404."""
    assert 404 == (await client.post(f"/api/v1/jobs/ghost/{action}")).status_code


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"schedule": {"cron": "61 * * * *"}}, "schedule.cron"),
        ({"schedule": {"cron": "0 3 * * *", "tz": "Mars/Olympus"}}, "schedule.tz"),
        (
            {"action": {"kind": "sql", "target": "nowhere", "statement": "SELECT 1"}},
            "action.target",
        ),
        (
            {"action": {"kind": "sql", "target": "demo", "statement": "DELETE FROM t"}},
            "action.statement",
        ),
        ({"schedule": {"at": "2020-01-01T00:00:00Z"}}, "schedule.at"),
        ({"schedule": {"interval_s": 0.000001}}, "schedule.interval_s"),
        ({"schedule": {"cron": "@every 0.5s"}}, "schedule.cron"),
        ({"name": "has space"}, "name"),
    ],
)
async def test_invalid_job_is_422_naming_the_field_and_writes_nothing(
    client: httpx.AsyncClient, changes: dict[str, Any], field: str
) -> None:
    """Bad cron, zone, target, a writing statement in a read-only job: 422, nothing stored."""
    answer = await client.post("/api/v1/jobs", json=job_body(**changes))
    assert (422, PROBLEM) == (answer.status_code, answer.headers["content-type"])
    assert field in [e["field"] for e in answer.json()["errors"]]
    assert [] == (await client.get("/api/v1/jobs")).json()["items"]


async def test_jobs_list_pages_by_name(client: httpx.AsyncClient) -> None:
    """Pages follow the name order; the last page has no next cursor."""
    for name in ["c", "a", "e", "b", "d"]:
        await client.post("/api/v1/jobs", json=job_body(name))
    names: list[str] = []
    cursor: str | None = None
    for _ in range(3):
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/v1/jobs", params=params)).json()
        names += [job["name"] for job in page["items"]]
        cursor = page["next_cursor"]
    assert (["a", "b", "c", "d", "e"], None) == (names, cursor)

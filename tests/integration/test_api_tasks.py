"""``/api/v1/tasks``: ad-hoc runs, idempotent creation, listing and cancelling."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from test_api_jobs import NOOP, PROBLEM, api_client, job_body

from pacer.bootstrap import Container
from pacer.stores.sqlalchemy.tables import runs


@pytest.fixture
async def client(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(container) as built:
        yield built


async def test_create_answers_at_once_with_location(
    client: httpx.AsyncClient, container: Container
) -> None:
    """201 with id, location and status; the task reads back at that location."""
    answer = await client.post("/api/v1/tasks", json={"action": NOOP, "parameters": {"a": 1}})
    task = answer.json()
    assert (201, "queued") == (answer.status_code, task["status"])
    assert f"/api/v1/tasks/{task['id']}" == task["location"] == answer.headers["location"]
    stored = (await client.get(task["location"])).json()
    assert (task["id"], None, {"a": 1}) == (stored["id"], stored["job_id"], stored["parameters"])


async def test_due_at_schedules_later(client: httpx.AsyncClient, container: Container) -> None:
    """A task with ``due_at`` is scheduled then."""
    due = (container.clock.now() + timedelta(hours=2)).replace(microsecond=0)
    task = (
        await client.post("/api/v1/tasks", json={"action": NOOP, "due_at": due.isoformat()})
    ).json()
    assert due.isoformat().replace("+00:00", "Z") == task["scheduled_at"]


async def test_idempotency_key_returns_the_first_task(client: httpx.AsyncClient) -> None:
    """The same Idempotency-Key answers 200 with the first task's id and creates nothing."""
    headers = {"Idempotency-Key": "order-42"}
    first = await client.post("/api/v1/tasks", json={"action": NOOP}, headers=headers)
    again = await client.post("/api/v1/tasks", json={"action": NOOP}, headers=headers)
    listed = (await client.get("/api/v1/tasks")).json()["items"]
    assert (201, 200) == (first.status_code, again.status_code)
    assert first.json()["id"] == again.json()["id"]
    assert [first.json()["id"]] == [task["id"] for task in listed]


async def test_different_keys_make_different_tasks(client: httpx.AsyncClient) -> None:
    """Distinct keys (or none) each create a task."""
    for key in ("a", "b"):
        await client.post("/api/v1/tasks", json={"action": NOOP}, headers={"Idempotency-Key": key})
    await client.post("/api/v1/tasks", json={"action": NOOP})
    assert 3 == len((await client.get("/api/v1/tasks")).json()["items"])


async def test_list_shows_tasks_only_and_pages(client: httpx.AsyncClient) -> None:
    """Runs of jobs are not tasks; tasks page newest first without repeats."""
    await client.post("/api/v1/jobs", json=job_body())
    await client.post("/api/v1/jobs/nightly/trigger")
    created = [
        (await client.post("/api/v1/tasks", json={"action": NOOP})).json()["id"] for _ in range(3)
    ]
    first = (await client.get("/api/v1/tasks", params={"limit": 2})).json()
    second = (
        await client.get("/api/v1/tasks", params={"limit": 2, "cursor": first["next_cursor"]})
    ).json()
    ids = [t["id"] for t in first["items"] + second["items"]]
    assert (sorted(created), None) == (sorted(ids), second["next_cursor"])
    assert len(ids) == len(set(ids))


async def test_cancel_a_task(client: httpx.AsyncClient) -> None:
    """Cancel answers the cancelled task; cancelling again is 409."""
    task = (await client.post("/api/v1/tasks", json={"action": NOOP})).json()
    cancelled = await client.post(f"/api/v1/tasks/{task['id']}/cancel")
    again = await client.post(f"/api/v1/tasks/{task['id']}/cancel")
    assert ("cancelled", 409) == (cancelled.json()["status"], again.status_code)


async def test_a_job_run_is_not_a_task(client: httpx.AsyncClient) -> None:
    """A job's run is not found under /tasks."""
    await client.post("/api/v1/jobs", json=job_body())
    run = (await client.post("/api/v1/jobs/nightly/trigger")).json()
    assert 404 == (await client.get(f"/api/v1/tasks/{run['id']}")).status_code
    assert 404 == (await client.post(f"/api/v1/tasks/{run['id']}/cancel")).status_code


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"action": {"kind": "carrier-pigeon"}}, "action"),
        ({"action": {"kind": "http", "url": "ftp://x"}}, "action.url"),
        (
            {"action": {"kind": "sql", "target": "nowhere", "statement": "SELECT 1"}},
            "action.target",
        ),
        ({"action": NOOP, "due_at": "2020-01-01T00:00:00Z"}, "due_at"),
        ({"action": NOOP, "due_at": "2030-01-01T00:00:00"}, "due_at"),
        ({"action": NOOP, "priority": 5000}, "priority"),
        ({"action": NOOP, "surprise": 1}, "surprise"),
        ({}, "action"),
    ],
)
async def test_invalid_task_is_422_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    """A bad action, an old or naive ``due_at``, or an unknown key: 422, nothing queued."""
    answer = await client.post("/api/v1/tasks", json=body)
    assert (422, PROBLEM) == (answer.status_code, answer.headers["content-type"])
    assert field in [e["field"] for e in answer.json()["errors"]]
    assert [] == (await client.get("/api/v1/tasks")).json()["items"]


async def test_idempotency_key_reused_for_another_task_is_409(client: httpx.AsyncClient) -> None:
    """A key already used for a different action or parameters is a 409, not the old task."""
    headers = {"Idempotency-Key": "order-43"}
    await client.post("/api/v1/tasks", json={"action": NOOP}, headers=headers)
    other = {"action": NOOP, "parameters": {"x": 1}}
    answer = await client.post("/api/v1/tasks", json=other, headers=headers)
    assert (409, ["Idempotency-Key"]) == (
        answer.status_code,
        [e["field"] for e in answer.json()["errors"]],
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"due_at": "2030-01-01T09:00:00Z"}, "due_at"),
        ({"priority": 5}, "priority"),
        ({"retry": {"max_attempts": 7}}, "retry"),
        ({"timeout_s": 5}, "timeout_s"),
    ],
)
async def test_idempotency_key_reused_with_any_other_field_is_409(
    client: httpx.AsyncClient, change: dict[str, Any], field: str
) -> None:
    """A key reused with the same action but another due time, priority, retry policy or
    timeout is a 409 on ``Idempotency-Key`` naming what differs; only one task exists."""
    headers = {"Idempotency-Key": "order-44"}
    first = {"action": NOOP, "due_at": "2030-01-01T08:00:00Z"}
    created = await client.post("/api/v1/tasks", json=first, headers=headers)
    answer = await client.post("/api/v1/tasks", json={**first, **change}, headers=headers)
    assert (409, PROBLEM) == (answer.status_code, answer.headers["content-type"])
    (error,) = answer.json()["errors"]
    assert "Idempotency-Key" == error["field"]
    assert f"({field} differ)" in error["reason"]
    listed = (await client.get("/api/v1/tasks")).json()["items"]
    assert [created.json()["id"]] == [task["id"] for task in listed]


async def test_a_due_at_named_and_one_left_out_are_different_requests(
    client: httpx.AsyncClient,
) -> None:
    """A retry that leaves out the ``due_at`` its first request named is another request,
    even though the first was scheduled then: what was sent counts, not the time computed."""
    headers = {"Idempotency-Key": "order-45"}
    named = {"action": NOOP, "due_at": "2030-01-01T08:00:00Z"}
    await client.post("/api/v1/tasks", json=named, headers=headers)
    answer = await client.post("/api/v1/tasks", json={"action": NOOP}, headers=headers)
    assert (409, "Idempotency-Key") == (answer.status_code, answer.json()["errors"][0]["field"])
    assert "(due_at differ)" in answer.json()["errors"][0]["reason"]


async def _forget_fire_time(container: Container, task_id: str) -> None:
    """The task's row as Pacer wrote it before tasks kept their ``due_at`` as ``fire_time``."""
    async with container.store.engine.begin() as conn:
        await conn.execute(update(runs).where(runs.c.id == task_id).values(fire_time=None))


async def test_a_task_stored_without_fire_time_matches_an_identical_retry(
    client: httpx.AsyncClient, container: Container
) -> None:
    """A task created before ``fire_time`` was kept for tasks (null in its row) answers an
    identical retry with itself (200), not a 409 on ``due_at``: the stored null cannot be
    compared, so ``due_at`` is left out; every other field is still compared."""
    headers = {"Idempotency-Key": "order-47"}
    body = {"action": NOOP, "due_at": "2030-01-01T08:00:00Z", "priority": 3}
    first = (await client.post("/api/v1/tasks", json=body, headers=headers)).json()
    await _forget_fire_time(container, first["id"])
    again = await client.post("/api/v1/tasks", json=body, headers=headers)
    other = await client.post("/api/v1/tasks", json={**body, "priority": 4}, headers=headers)
    assert (200, first["id"]) == (again.status_code, again.json()["id"])
    assert 409 == other.status_code
    assert "(priority differ)" in other.json()["errors"][0]["reason"]
    listed = (await client.get("/api/v1/tasks")).json()["items"]
    assert [(first["id"], None)] == [(task["id"], task["fire_time"]) for task in listed]


async def test_a_stored_null_fire_time_takes_a_retry_that_names_a_time(
    client: httpx.AsyncClient,
) -> None:
    """The price of the rule above, documented in ``services/tasks.py``: a null cannot tell
    "named no time" from "named one before it was kept", so a retry naming a time for a task
    whose request named none gets that task back too."""
    headers = {"Idempotency-Key": "order-48"}
    first = (await client.post("/api/v1/tasks", json={"action": NOOP}, headers=headers)).json()
    named = {"action": NOOP, "due_at": first["scheduled_at"]}
    answer = await client.post("/api/v1/tasks", json=named, headers=headers)
    assert (200, first["id"]) == (answer.status_code, answer.json()["id"])


async def test_an_identical_retry_is_the_same_task_after_a_delay_and_in_another_offset(
    client: httpx.AsyncClient,
) -> None:
    """The same request again answers 200 with the first task: its ``due_at`` may be written
    in another offset (the same instant), and a ``POST /delay`` of the task in between (which
    moves its scheduled time) changes nothing; defaults sent explicitly equal defaults left
    out."""
    headers = {"Idempotency-Key": "order-46"}
    body = {"action": NOOP, "due_at": "2030-01-01T09:00:00+01:00", "parameters": {"n": 1}}
    first = await client.post("/api/v1/tasks", json=body, headers=headers)
    delayed = await client.post("/delay", json={"id": first.json()["id"], "delay": 1500})
    again = {**body, "due_at": "2030-01-01T08:00:00Z", "priority": 0, "timeout_s": 300}
    answer = await client.post("/api/v1/tasks", json=again, headers=headers)
    assert (201, 200, 200) == (first.status_code, delayed.status_code, answer.status_code)
    assert first.json()["id"] == answer.json()["id"]

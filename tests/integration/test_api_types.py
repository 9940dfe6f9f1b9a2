"""Every field takes its own JSON type, in a body or a query: a value of another type is a
422 naming the field, and nothing changes (pydantic's lax mode converted them silently)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from test_api_jobs import NOOP, PROBLEM, api_client, job_body

from pacer.bootstrap import Container

CONSUMER = "/api/v1/consumers/mon-1/position"


@pytest.fixture
async def client(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(container) as built:
        yield built


async def _stored(client: httpx.AsyncClient) -> dict[str, Any]:
    """What the requests below could have changed."""
    consumer = await client.get("/api/v1/consumers/mon-1")
    return {
        "jobs": (await client.get("/api/v1/jobs")).json()["items"],
        "tasks": (await client.get("/api/v1/tasks")).json()["items"],
        "consumer": consumer.json() if consumer.status_code == 200 else None,
    }


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("PUT", CONSUMER, {"position": True}, "position"),
        ("PUT", CONSUMER, {"position": "2"}, "position"),
        ("PUT", CONSUMER, {"position": 1.5}, "position"),
        ("POST", "/api/v1/jobs", job_body(as_of=0), "as_of"),
        ("POST", "/api/v1/jobs", job_body(as_of="0"), "as_of"),
        ("POST", "/api/v1/jobs", job_body(schedule={"at": 1.9e9}), "schedule.at"),
        ("POST", "/api/v1/jobs", job_body(schedule={"at": "1900000000"}), "schedule.at"),
        ("POST", "/api/v1/jobs", job_body(priority="2"), "priority"),
        ("POST", "/api/v1/jobs", job_body(timeout_s=True), "timeout_s"),
        ("POST", "/api/v1/jobs", job_body(enabled="no"), "enabled"),
        ("POST", "/api/v1/jobs", job_body(retry={"max_attempts": True}), "retry.max_attempts"),
        ("POST", "/api/v1/tasks", {"action": NOOP, "due_at": 1900000000}, "due_at"),
        ("POST", "/api/v1/tasks", {"action": NOOP, "due_at": 1.9e9}, "due_at"),
        ("POST", "/api/v1/tasks", {"action": NOOP, "due_at": "1900000000"}, "due_at"),
        ("POST", "/api/v1/tasks", {"action": NOOP, "priority": True}, "priority"),
        ("POST", "/api/v1/tasks", {"action": NOOP, "timeout_s": "30"}, "timeout_s"),
        ("POST", "/delay", {"id": "x", "delay": "500"}, "delay"),
        ("POST", "/delay", {"id": "x", "delay": True}, "delay"),
    ],
)
async def test_a_body_value_of_another_type_is_422_naming_it(
    client: httpx.AsyncClient, method: str, path: str, body: dict[str, Any], field: str
) -> None:
    """``true`` or ``"2"`` for an integer, a number for a time or a date, text for a number,
    text for a boolean: each is refused on its field, and nothing is stored. (The log holds
    events, so a position read as 1 or 2 would have been taken.)"""
    for _ in range(3):
        await client.post("/api/v1/tasks", json={"action": NOOP})
    await client.put(CONSUMER, json={"position": 0})
    before = await _stored(client)
    answer = await client.request(method, path, json=body)
    assert (422, PROBLEM) == (answer.status_code, answer.headers["content-type"])
    assert [field] == [error["field"] for error in answer.json()["errors"]]
    assert before == await _stored(client)


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/v1/runs?until=0.5", "until"),
        ("/api/v1/runs?since=1700000000", "since"),
        ("/api/v1/runs?limit=1_0", "limit"),
        ("/api/v1/tasks?limit=%2B5", "limit"),
        ("/api/v1/events?after=true", "after"),
        ("/api/v1/events?after=%201", "after"),
        ("/api/v1/events?wait=.5", "wait"),
        ("/api/v1/events?wait=nan", "wait"),
        ("/api/v1/resources?since=1_000", "since"),
    ],
)
async def test_a_query_value_of_another_type_is_422_naming_it(
    client: httpx.AsyncClient, path: str, field: str
) -> None:
    """A number where a time is expected (read as seconds since 1970), and a number not
    written as JSON writes one, are refused on their parameter."""
    answer = await client.get(path)
    assert (422, PROBLEM) == (answer.status_code, answer.headers["content-type"])
    assert [field] == [error["field"] for error in answer.json()["errors"]]


async def test_proper_values_are_accepted(client: httpx.AsyncClient) -> None:
    """ISO-8601 times with any offset, integers (``2.0`` too, as JSON Schema counts it) and
    numbers given as integers still pass, in bodies and in queries."""
    task = {
        "action": NOOP,
        "due_at": "2030-01-01T09:00:00+05:30",
        "priority": 2.0,
        "timeout_s": 30,
    }
    created = await client.post("/api/v1/tasks", json=task)
    job = await client.post("/api/v1/jobs", json=job_body(as_of="2022-12-22", enabled=False))
    acked = await client.put(CONSUMER, json={"position": 1})
    listed = await client.get(
        "/api/v1/runs",
        params={"since": "2020-01-01T00:00:00-03:00", "until": "2999-01-01T00:00:00Z"},
    )
    events = await client.get("/api/v1/events", params={"after": "0", "limit": "1.0"})
    assert (201, 201, 200, 200, 200) == tuple(
        answer.status_code for answer in (created, job, acked, listed, events)
    )
    stored = (await client.get(created.json()["location"])).json()
    assert (2, 30.0, "2030-01-01T03:30:00Z") == (
        stored["priority"],
        stored["timeout_s"],
        stored["fire_time"],
    )
    assert [created.json()["id"]] == [run["id"] for run in listed.json()["items"]]
    assert [created.json()["id"]] == [event["run_id"] for event in events.json()["items"]]

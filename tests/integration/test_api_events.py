"""The execution log over HTTP (page, long poll, SSE, consumers) and the ``GET /queued`` /
``POST /delay`` contract, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from test_api_jobs import NOOP, PROBLEM, api_client

from pacer.api import events as events_api
from pacer.api.app import create_app
from pacer.bootstrap import Container
from pacer.domain.tokens import Scope

TASK = {"action": NOOP, "due_at": "2030-01-01T00:00:00Z"}


async def _task(client: httpx.AsyncClient, **changes: Any) -> str:
    answer = await client.post("/api/v1/tasks", json={**TASK, **changes})
    assert 201 == answer.status_code, answer.text
    task_id: str = answer.json()["id"]
    return task_id


async def test_events_page_and_resume_after_a_position(container: Container) -> None:
    """Each created task is one ``queued`` event; ``after`` resumes past what was read."""
    async with api_client(container) as client:
        ids = [await _task(client) for _ in range(3)]
        first = (await client.get("/api/v1/events", params={"limit": 2})).json()
        rest = (await client.get("/api/v1/events", params={"after": first["next_after"]})).json()
    items = first["items"] + rest["items"]
    assert ids == [item["run_id"] for item in items]
    assert {"queued"} == {item["kind"] for item in items}
    assert first["missed"] is None
    positions = [item["position"] for item in items]
    assert sorted(positions) == positions


async def test_long_poll_answers_when_an_event_commits(container: Container) -> None:
    """A reader waiting 20 s gets the event committed while it waits, not an empty page."""
    async with api_client(container) as client:
        head = (await client.get("/api/v1/events")).json()["next_after"]
        waiting = asyncio.create_task(
            client.get("/api/v1/events", params={"after": head, "wait": 20})
        )
        await asyncio.sleep(0.1)
        task_id = await _task(client)
        answer = (await waiting).json()
    assert [task_id] == [item["run_id"] for item in answer["items"]]


@contextlib.asynccontextmanager
async def _serving(container: Container) -> AsyncIterator[str]:
    """The app on a real socket: SSE is a stream that ASGITransport would buffer forever."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(create_app(container.api_services()), log_level="warning")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await serving


async def _sse_events(client: httpx.AsyncClient, count: int, **headers: str) -> list[dict]:
    found: list[dict] = []
    async with client.stream("GET", "/api/v1/events/stream", headers=headers) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        frame: dict[str, str] = {}
        async for line in response.aiter_lines():
            if line == "" and "data" in frame:
                found.append({"id": frame.get("id"), **json.loads(frame["data"])})
                if len(found) == count:
                    return found
                frame = {}
            elif ":" in line and not line.startswith(":"):
                key, _, value = line.partition(":")
                frame[key] = value.strip()
    return found


async def test_sse_streams_events_and_resumes_from_last_event_id(container: Container) -> None:
    """The stream sends each event with its position as id; Last-Event-ID resumes after it."""
    _, secret = await container.tokens.create("sse", Scope.READ)
    async with api_client(container) as writer:
        ids = [await _task(writer) for _ in range(4)]
    async with (
        _serving(container) as base,
        httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {secret}"}, timeout=30
        ) as client,
    ):
        first = await asyncio.wait_for(_sse_events(client, 2), 30)
        resumed = await asyncio.wait_for(
            _sse_events(client, 2, **{"Last-Event-ID": str(first[-1]["id"])}), 30
        )
    assert ids == [event["run_id"] for event in first + resumed]
    assert [str(event["position"]) for event in first] == [event["id"] for event in first]


async def test_consumers_acknowledge_positions(container: Container) -> None:
    """PUT stores a consumer's position; GET reads it; past the head is 422; unknown is 404."""
    async with api_client(container, scope=Scope.READ) as reader:
        async with api_client(container) as writer:
            await _task(writer)
        head = (await reader.get("/api/v1/events")).json()["next_after"]
        put = await reader.put("/api/v1/consumers/mon-1/position", json={"position": head})
        got = await reader.get("/api/v1/consumers/mon-1")
        past = await reader.put("/api/v1/consumers/mon-1/position", json={"position": head + 5})
        unknown = await reader.get("/api/v1/consumers/nobody")
    assert 200 == put.status_code
    assert ("mon-1", head, None) == tuple(got.json()[k] for k in ("name", "position", "missed"))
    assert "position" == past.json()["errors"][0]["field"]
    assert (422, 404) == (past.status_code, unknown.status_code)


async def test_a_consumer_may_move_its_position_back(container: Container) -> None:
    """A lower position than the last one is taken as it is (a rewind, documented): the
    consumer's record says what it acknowledged last."""
    async with api_client(container) as client:
        for _ in range(3):
            await _task(client)
        head = (await client.get("/api/v1/events")).json()["next_after"]
        forward = await client.put("/api/v1/consumers/mon-1/position", json={"position": head})
        back = await client.put("/api/v1/consumers/mon-1/position", json={"position": head - 2})
        got = (await client.get("/api/v1/consumers/mon-1")).json()
    assert (200, 200) == (forward.status_code, back.status_code)
    assert head - 2 == back.json()["position"] == got["position"]


async def test_queued_lists_waiting_executions_in_the_contract_shape(
    container: Container,
) -> None:
    """GET /queued: ``{"query": {"id"}, "execution": {"id", "timestamp"}}`` soonest first."""
    async with api_client(container) as client:
        later = await _task(client, due_at="2030-01-01T00:00:01Z")
        sooner = await _task(client)
        listed = (await client.get("/queued")).json()
        run = await container.store.get_run(sooner)
    assert run is not None
    assert [sooner, later] == [item["execution"]["id"] for item in listed]
    assert {
        "query": {"id": run.query_id},
        "execution": {"id": sooner, "timestamp": 1893456000000},
    } == listed[0]


async def test_delay_moves_a_waiting_execution_and_refuses_the_rest(
    container: Container,
) -> None:
    """POST /delay adds the delay and answers the new time; 404 unknown, 409 started, 422
    negative or too long; the change is logged as ``delayed``."""
    async with api_client(container) as client:
        task_id = await _task(client)
        moved = await client.post("/delay", json={"id": task_id, "delay": 1500})
        unknown = await client.post("/delay", json={"id": "nope", "delay": 10})
        negative = await client.post("/delay", json={"id": task_id, "delay": -1})
        too_long = await client.post("/delay", json={"id": task_id, "delay": 10**12})
        soon = await _task(client, due_at=None)
        await container.store.claim("w", container.clock.now() + timedelta(seconds=1), 10, 30)
        started = await client.post("/delay", json={"id": soon, "delay": 10})
        kinds = [e["kind"] for e in (await client.get("/api/v1/events")).json()["items"]]
    assert {"id": task_id, "timestamp": 1893456001500} == moved.json()
    statuses = [a.status_code for a in (unknown, started, negative, too_long)]
    assert [404, 409, 422, 422] == statuses
    assert all(a.headers["content-type"].startswith(PROBLEM) for a in (unknown, started))
    assert "delayed" in kinds


async def test_queue_contract_needs_a_token(container: Container) -> None:
    """/queued and /delay are not open: 401 without a token, 403 delaying with a read token."""
    async with api_client(container, scope=None) as anonymous:
        assert 401 == (await anonymous.get("/queued")).status_code
    async with api_client(container, scope=Scope.READ) as reader:
        assert 200 == (await reader.get("/queued")).status_code
        assert 403 == (await reader.post("/delay", json={"id": "x", "delay": 1})).status_code


async def test_adhoc_tasks_start_100_ms_after_they_are_queued(container: Container) -> None:
    """A task without ``due_at`` is scheduled 100 ms after it is queued (the pacer's window)."""
    async with api_client(container) as client:
        answer = await client.post("/api/v1/tasks", json={"action": NOOP})
    run = await container.store.get_run(answer.json()["id"])
    assert run is not None
    assert timedelta(milliseconds=100) == run.scheduled_at - run.created_at


async def test_a_stream_ends_once_its_token_is_revoked(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token is checked when a request opens, and a stream can last for days: revoking the
    token must also end the streams it opened (the reconnect then gets the 401)."""
    monkeypatch.setattr(events_api, "TOKEN_RECHECK_S", 0.1)
    token, secret = await container.tokens.create("sse", Scope.READ)
    async with api_client(container) as writer:
        await _task(writer)
    headers = {"Authorization": f"Bearer {secret}"}
    async with (
        _serving(container) as base,
        httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client,
    ):
        async with client.stream("GET", "/api/v1/events/stream") as response:
            lines = response.aiter_lines()
            while not (await anext(lines)).startswith("data:"):
                pass  # the first event: the stream is open and authorised
            await container.tokens.revoke(token.id)
            rest = await asyncio.wait_for(_drain(lines), 30)  # ends instead of hanging
        again = await client.get("/api/v1/events/stream")
    assert all(not line.startswith("data:") for line in rest)
    assert 401 == again.status_code


async def _drain(lines: AsyncIterator[str]) -> list[str]:
    return [line async for line in lines]

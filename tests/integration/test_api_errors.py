"""Every error is RFC 9457 problem+json: malformed bodies, 413, unknown routes, 405, 500."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from test_api_jobs import NOOP, PROBLEM, api_client

from pacer.api.app import create_app
from pacer.api.guards import MAX_BODY_BYTES
from pacer.bootstrap import Container


@pytest.fixture
async def client(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(container) as built:
        yield built


def _is_problem(answer: httpx.Response, status: int) -> bool:
    body = answer.json()
    return (answer.status_code, answer.headers["content-type"], body["status"]) == (
        status,
        PROBLEM,
        status,
    ) and {"type", "title", "detail"} <= set(body)


async def test_malformed_json_is_422(client: httpx.AsyncClient) -> None:
    """A body that is not JSON is a 422 problem naming ``body``."""
    answer = await client.post(
        "/api/v1/jobs", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert _is_problem(answer, 422)
    assert ["body"] == [e["field"] for e in answer.json()["errors"]]


async def test_every_invalid_field_is_listed(client: httpx.AsyncClient) -> None:
    """Validation lists each field by its dotted path, without the ``body`` prefix."""
    body = {"name": "", "action": NOOP, "timeout_s": -1, "retry": {"max_attempts": 0}}
    answer = await client.post("/api/v1/jobs", json=body)
    fields = {e["field"] for e in answer.json()["errors"]}
    assert _is_problem(answer, 422)
    assert {"name", "timeout_s", "retry.max_attempts"} == fields


async def test_body_over_the_limit_by_content_length_is_413(client: httpx.AsyncClient) -> None:
    """A declared body over 1 MiB is refused before it is read."""
    answer = await client.post("/api/v1/tasks", content=b"x" * (MAX_BODY_BYTES + 1))
    assert _is_problem(answer, 413)
    assert [] == (await client.get("/api/v1/tasks")).json()["items"]


async def test_streamed_body_over_the_limit_is_413(client: httpx.AsyncClient) -> None:
    """A chunked body without Content-Length is cut off once it passes 1 MiB."""

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b" " * (MAX_BODY_BYTES // 2)

    answer = await client.post(
        "/api/v1/tasks", content=chunks(), headers={"content-type": "application/json"}
    )
    assert _is_problem(answer, 413)


async def test_body_just_under_the_limit_is_read(client: httpx.AsyncClient) -> None:
    """A body under 1 MiB passes the limit (and is then validated as usual)."""
    padding = " " * (MAX_BODY_BYTES - 100)
    answer = await client.post(
        "/api/v1/tasks",
        content=f'{{"action": {{"kind": "python", "function": "pacer.testing:noop"}}}}{padding}',
        headers={"content-type": "application/json"},
    )
    assert 201 == answer.status_code


async def test_unknown_route_is_404_problem(client: httpx.AsyncClient) -> None:
    """A path no route serves is a 404 problem naming the path; an unknown id names what
    was looked for."""
    answer = await client.get("/api/v1/nothing-here")
    assert _is_problem(answer, 404)
    assert ["path"] == [e["field"] for e in answer.json()["errors"]]
    answer = await client.get("/api/v1/runs/no-such-run")
    assert _is_problem(answer, 404)
    assert [("run", "no run 'no-such-run'")] == [
        (e["field"], e["reason"]) for e in answer.json()["errors"]
    ]


async def test_wrong_method_is_405_problem(client: httpx.AsyncClient) -> None:
    """A known path with the wrong method is a 405 problem with ``Allow``."""
    answer = await client.delete("/api/v1/runs")
    assert _is_problem(answer, 405)
    assert "GET" in answer.headers["allow"]
    [error] = answer.json()["errors"]
    assert ("method", "DELETE is not allowed here (allowed: GET)") == (
        error["field"],
        error["reason"],
    )


async def test_unexpected_exception_is_500_without_internals(container: Container) -> None:
    """A bug answers a bare 500 problem; the exception's text is not sent."""
    app = create_app(container.api_services())

    async def boom() -> None:
        raise RuntimeError("secret internals")

    app.add_api_route("/boom", boom)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        answer = await client.get("/boom")
    assert _is_problem(answer, 500)
    assert "secret" not in answer.text


async def test_openapi_documents_every_resource(client: httpx.AsyncClient) -> None:
    """The schema lists the jobs, tasks and runs routes, and /docs serves."""
    schema = (await client.get("/openapi.json")).json()
    paths = set(schema["paths"])
    assert {"/api/v1/jobs", "/api/v1/tasks", "/api/v1/runs/{run_id}", "/healthz"} <= paths
    assert "Problem" in schema["components"]["schemas"]
    assert 200 == (await client.get("/docs")).status_code


async def test_healthz(client: httpx.AsyncClient) -> None:
    """Health answers ok while the store answers."""
    assert "ok" == (await client.get("/healthz")).json()["status"]


async def test_action_errors_are_named_without_the_kind_tag(client: httpx.AsyncClient) -> None:
    """A missing sql target is ``action.target``, not pydantic's ``action.sql.target``."""
    body = {"name": "x", "action": {"kind": "sql", "statement": "SELECT 1"}}
    answer = await client.post("/api/v1/jobs", json=body)
    assert ["action.target"] == [e["field"] for e in answer.json()["errors"]]


async def test_nul_characters_are_refused_before_the_store(client: httpx.AsyncClient) -> None:
    """A NUL in the query or escaped in a JSON body is a 422 naming the field; nothing is
    stored (PostgreSQL cannot keep NUL, so it would otherwise surface as a 500)."""
    in_query = await client.get("/api/v1/runs", params={"query_id": "a\x00b"})
    in_body = await client.post(
        "/api/v1/jobs",
        content=b'{"name": "n", "action": {"kind": "python", "function": "pacer.testing:noop"},'
        b' "description": "a\\u0000b"}',
        headers={"Content-Type": "application/json"},
    )
    in_result = await client.post("/result", content=b'{"x": "\\u0000"}')
    assert ("query", "description", "x") == tuple(
        answer.json()["errors"][0]["field"] for answer in (in_query, in_body, in_result)
    )
    assert {422} == {a.status_code for a in (in_query, in_body, in_result)}
    assert [] == (await client.get("/api/v1/jobs")).json()["items"]
    assert [] == (await client.get("/result")).json()

"""Values no part behind the API can hold are refused at the door, as a 422 naming the field,
and nothing is stored; values it can hold come back exactly. On both stores: each of these
was a 500 on one of them, or a silent change on the other (found by a probe)."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from test_api_jobs import NOOP, PROBLEM, api_client, job_body

from pacer.api.app import create_app
from pacer.bootstrap import Container

JSON = {"content-type": "application/json"}


@pytest.fixture
async def client(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(container) as built:
        yield built


def _refused(answer: httpx.Response, field: str) -> str:
    """The reason given for ``field`` in a 422 problem."""
    assert (422, PROBLEM) == (answer.status_code, answer.headers["content-type"]), answer.text
    reasons = {e["field"]: e["reason"] for e in answer.json()["errors"]}
    assert field in reasons, reasons
    return reasons[field]


async def _nothing_stored(client: httpx.AsyncClient) -> None:
    assert [] == (await client.get("/api/v1/tasks")).json()["items"]
    assert [] == (await client.get("/api/v1/results")).json()["items"]
    assert [] == (await client.get("/api/v1/jobs")).json()["items"]


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e309", "-2e400"])
async def test_numbers_json_cannot_carry_are_refused(
    client: httpx.AsyncClient, number: str
) -> None:
    """Not JSON by RFC 8259 though Python reads them: PostgreSQL's JSONB refused them (a 500)
    and SQLite stored ``null``."""
    task = f'{{"action": {json.dumps(NOOP)}, "parameters": {{"y": [1, {number}]}}}}'
    answer = await client.post("/api/v1/tasks", content=task, headers=JSON)
    assert "not a finite number" in _refused(answer, "parameters.y.1")
    answer = await client.post("/result", content=f'{{"x": {number}}}', headers=JSON)
    assert "not a finite number" in _refused(answer, "x")
    await _nothing_stored(client)


@pytest.mark.parametrize("escape", ["\\ud800", "\\udfff", "a\\ud83d", "\\ude00b"])
async def test_lone_surrogates_are_refused(client: httpx.AsyncClient, escape: str) -> None:
    """SQLite stored them, and every later page that held one failed to serialise."""
    task = f'{{"action": {json.dumps(NOOP)}, "parameters": {{"x": "{escape}"}}}}'
    answer = await client.post("/api/v1/tasks", content=task, headers=JSON)
    assert "surrogate" in _refused(answer, "parameters.x")
    answer = await client.post("/result", content=f'"{escape}"', headers=JSON)
    assert "surrogate" in _refused(answer, "body")
    job = json.dumps(job_body()).replace('"name"', f'"description": "{escape}", "name"', 1)
    answer = await client.post("/api/v1/jobs", content=job, headers=JSON)
    assert "surrogate" in _refused(answer, "description")
    answer = await client.post("/result", content=f'{{"k{escape}": 1}}', headers=JSON)
    assert (422, 1) == (answer.status_code, len(answer.json()["errors"]))
    assert "the key contains a lone UTF-16 surrogate" in answer.json()["errors"][0]["reason"]
    await _nothing_stored(client)
    assert 200 == (await client.get("/result")).status_code


async def test_nul_in_a_json_string_or_key_is_refused(client: httpx.AsyncClient) -> None:
    answer = await client.post("/result", content='{"a": ["x\\u0000"]}', headers=JSON)
    assert "NUL" in _refused(answer, "a.0")
    answer = await client.post("/result", content='{"a\\u0000": 1}', headers=JSON)
    assert "NUL" in _refused(answer, "a\\x00")
    await _nothing_stored(client)


async def test_escapes_that_are_text_pass_and_come_back_exactly(client: httpx.AsyncClient) -> None:
    """An escaped backslash followed by ``u0000`` is six characters of text, and a pair of
    surrogates is one character: both are fine."""
    body = {"text": "\\u0000 and \\ud800", "pair": "\U0001f600", "big": 12345678901234567890}
    assert 201 == (await client.post("/result", json=body)).status_code
    assert [body] == (await client.get("/result")).json()


@pytest.mark.parametrize("body", ["12345678901234567890", "-0.1", "2.5e-3", '"7"', "true", "null"])
async def test_any_json_value_comes_back_exactly(client: httpx.AsyncClient, body: str) -> None:
    """SQLite gave the column NUMERIC affinity, so a bare number was converted:
    ``12345678901234567890`` came back as ``1.2345678901234567e+19``."""
    assert 201 == (await client.post("/result", content=body, headers=JSON)).status_code
    assert [json.loads(body)] == (await client.get("/result")).json()


async def test_deep_nesting_is_refused(client: httpx.AsyncClient) -> None:
    body = "[" * 200_000 + "]" * 200_000
    answer = await client.post("/result", content=body, headers=JSON)
    assert "nested too deeply" in _refused(answer, "body")
    await _nothing_stored(client)


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/v1/events/consumers/%ff%fe", "path"),
        ("/api/v1/runs?job=%c3%28", "query"),
        ("/api/v1/runs?job=a%00b", "query"),
    ],
)
async def test_urls_that_are_not_utf8_or_hold_nul_are_refused(
    client: httpx.AsyncClient, url: str, field: str
) -> None:
    """``%ff%fe`` was read as U+FFFD, so two different consumer names became one."""
    _refused(await client.get(url), field)


async def test_body_is_still_read_by_the_route_after_the_guard(client: httpx.AsyncClient) -> None:
    """The guard reads the body first; the route must still get all of it, streamed or not."""

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"action": '
        yield json.dumps(NOOP).encode()
        yield b', "parameters": {"n": 1.5}}'

    answer = await client.post("/api/v1/tasks", content=chunks(), headers=JSON)
    assert 201 == answer.status_code, answer.text
    assert {"n": 1.5} == (await client.get(answer.json()["location"])).json()["parameters"]


@pytest.mark.parametrize(
    "due", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00", "9999-06-01T00:00:00Z"]
)
async def test_instants_outside_the_accepted_range_are_refused(
    client: httpx.AsyncClient, due: str
) -> None:
    """Converting ``9999-12-31T23:59:59-05:00`` to UTC overflowed (a 500)."""
    answer = await client.post("/api/v1/tasks", json={"action": NOOP, "due_at": due})
    assert "must lie between" in _refused(answer, "due_at")
    for name in ("since", "until"):
        answer = await client.get("/api/v1/runs", params={name: due})
        assert "must lie between" in _refused(answer, name)
    await _nothing_stored(client)


def _cursor(*keys: str) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(keys)).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "keys",
    [
        ("9999-12-31T23:59:59-05:00", "x"),
        ("2020-01-01T00:00:00+00:00", "\x00"),
        ("2020-01-01T00:00:00+00:00", "\ud800"),
    ],
)
async def test_cursors_the_api_cannot_have_issued_are_refused(
    client: httpx.AsyncClient, keys: tuple[str, str]
) -> None:
    for path in ("/api/v1/runs", "/api/v1/tasks"):
        answer = await client.get(path, params={"cursor": _cursor(*keys)})
        assert "not a cursor issued by this API" == _refused(answer, "cursor")


async def test_a_delay_past_the_accepted_range_is_refused_and_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    """PostgreSQL stored the time and then could not read it back; SQLite overflowed."""
    due = "9998-12-31T23:30:00Z"
    task = (await client.post("/api/v1/tasks", json={"action": NOOP, "due_at": due})).json()
    answer = await client.post("/delay", json={"id": task["id"], "delay": 3_600_000})
    assert "would move the time past" in _refused(answer, "delay")
    assert task["scheduled_at"] == (await client.get(task["location"])).json()["scheduled_at"]
    answer = await client.post("/delay", content=f'{{"id": "{task["id"]}", "delay": NaN}}')
    assert "not a finite number" in _refused(answer, "delay")
    answer = await client.post("/delay", json={"id": task["id"], "delay": 1000})
    assert 200 == answer.status_code


@pytest.mark.parametrize(
    ("schedule", "field"),
    [
        ({"at": "9999-12-31T23:00:00", "tz": "America/New_York"}, "schedule.at"),
        (
            {"cron": "* * * * *", "end": "9999-12-31T23:59:59", "tz": "America/New_York"},
            "schedule.end",
        ),
        (
            {
                "cron": "* * * * *",
                "start": "2020-01-01T00:00:00",
                "end": "9999-12-31T23:00:00",
                "tz": "America/New_York",
            },
            "schedule.end",
        ),
        (
            {"cron": "* * * * *", "start": "0001-01-01T00:00:00", "tz": "Asia/Tokyo"},
            "schedule.start",
        ),
        ({"cron": "0 0 1 1 *", "start": "9999-06-01T00:00:00Z"}, "schedule.start"),
    ],
)
async def test_schedules_at_the_edges_of_time_are_refused(
    client: httpx.AsyncClient, schedule: dict[str, Any], field: str
) -> None:
    answer = await client.post("/api/v1/jobs", json=job_body(schedule=schedule))
    assert "must lie between" in _refused(answer, field)
    await _nothing_stored(client)


async def test_a_cron_whose_next_fire_is_past_the_last_year_simply_ends(
    client: httpx.AsyncClient,
) -> None:
    """croniter raised ``year 10000 is out of range``; now the schedule is exhausted."""
    schedule = {"cron": "0 0 1 1 *", "start": "9998-06-01T00:00:00Z"}
    job = (await client.post("/api/v1/jobs", json=job_body(schedule=schedule))).json()
    assert job["next_run"].startswith("9999-01-01")


@pytest.mark.parametrize("as_of", ["9999-12-31", "0001-01-01"])
async def test_as_of_at_the_edges_of_time_is_refused(client: httpx.AsyncClient, as_of: str) -> None:
    """A metric over ``today`` adds a day to it: at 9999-12-31 that overflowed in the worker."""
    _refused(await client.post("/api/v1/jobs", json=job_body(as_of=as_of)), "as_of")


def test_openapi_says_an_action_needs_its_kind(container: Container) -> None:
    """The union is discriminated by ``kind``: a body without it is refused, so the schema
    must not call it optional."""
    schemas = create_app(container.api_services()).openapi()["components"]["schemas"]
    actions = [name for name in schemas if name.endswith("Action")]
    assert {"SqlAction", "HttpAction", "PythonAction", "MetricAction", "SimAction"} <= set(actions)
    for name in actions:
        assert "kind" in schemas[name]["required"], name


async def test_future_moments_inside_the_range_still_work(client: httpx.AsyncClient) -> None:
    due = "9998-12-31T22:00:00-01:00"
    answer = await client.post("/api/v1/tasks", json={"action": NOOP, "due_at": due})
    assert 201 == answer.status_code, answer.text
    stored = (await client.get(answer.json()["location"])).json()
    assert "9998-12-31T23:00:00Z" == stored["scheduled_at"]

"""``/api/v1/runs``: filters, keyset paging under concurrent inserts, retry and cancel."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from test_api_jobs import NOOP, PROBLEM, api_client, job_body

from pacer.bootstrap import Container
from pacer.domain.models import Run
from pacer.domain.runs import adhoc_run

BASE = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
async def client(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(container) as built:
        yield built


async def _insert(container: Container, count: int, start: datetime, **changes: Any) -> list[Run]:
    """``count`` ad-hoc runs created one second apart from ``start``."""
    runs = []
    for i in range(count):
        at = start + timedelta(seconds=i)
        run = adhoc_run(dict(NOOP), at + timedelta(days=365), at, changes.get("query_id"))
        run.job_id = changes.get("job_id")
        runs.append(run)
    await container.store.enqueue(runs)
    return runs


async def _all_pages(
    client: httpx.AsyncClient, params: dict[str, Any], between: Any = None
) -> list[str]:
    ids: list[str] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/v1/runs", params=query)).json()
        ids += [run["id"] for run in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return ids
        if between is not None:
            await between()


async def test_pages_are_newest_first_and_complete(
    client: httpx.AsyncClient, container: Container
) -> None:
    """Paging with limit 3 through 7 runs returns each once, newest first."""
    runs = await _insert(container, 7, BASE)
    expected = [run.id for run in reversed(runs)]
    assert expected == await _all_pages(client, {"limit": 3})


async def test_paging_is_stable_under_concurrent_inserts(
    client: httpx.AsyncClient, container: Container
) -> None:
    """Newer runs inserted between pages neither duplicate nor push out older ones."""
    runs = await _insert(container, 9, BASE)
    newer = iter(range(10))

    async def insert_newer() -> None:
        await _insert(container, 2, BASE + timedelta(hours=1 + next(newer)))

    ids = await _all_pages(client, {"limit": 2}, between=insert_newer)
    assert [run.id for run in reversed(runs)] == ids


async def test_runs_created_at_the_same_instant_page_by_id(
    client: httpx.AsyncClient, container: Container
) -> None:
    """Ties on created_at are broken by id: no run is skipped or repeated."""
    runs = [adhoc_run(dict(NOOP), BASE, BASE, None) for _ in range(5)]
    await container.store.enqueue(runs)
    ids = await _all_pages(client, {"limit": 2})
    assert sorted(run.id for run in runs) == sorted(ids)
    assert len(ids) == len(set(ids))


async def test_filter_by_job_name_or_id(client: httpx.AsyncClient) -> None:
    """``job`` accepts a job's id or its name and returns only that job's runs."""
    job = (await client.post("/api/v1/jobs", json=job_body())).json()
    run = (await client.post("/api/v1/jobs/nightly/trigger")).json()
    await client.post("/api/v1/tasks", json={"action": NOOP})
    for key in (job["id"], "nightly"):
        page = (await client.get("/api/v1/runs", params={"job": key})).json()
        assert [run["id"]] == [item["id"] for item in page["items"]]


async def test_filter_by_status_query_id_and_time(
    client: httpx.AsyncClient, container: Container
) -> None:
    """``status``, ``query_id``, ``since`` and ``until`` narrow the list."""
    old = await _insert(container, 2, BASE, query_id="q1")
    new = await _insert(container, 2, BASE + timedelta(days=1), query_id="q2")
    await client.post(f"/api/v1/runs/{old[0].id}/cancel")

    async def ids(**params: Any) -> set[str]:
        page = (await client.get("/api/v1/runs", params=params)).json()
        return {item["id"] for item in page["items"]}

    assert {old[0].id} == await ids(status="cancelled")
    assert {old[1].id, *[r.id for r in new]} == await ids(status="queued")
    assert {r.id for r in new} == await ids(query_id="q2")
    since = (BASE + timedelta(hours=12)).isoformat()
    assert {r.id for r in new} == await ids(since=since)
    assert {r.id for r in old} == await ids(until=since)


async def test_get_run_shows_result_and_error(client: httpx.AsyncClient) -> None:
    """A run reads back by id, with ``result`` and ``error`` fields."""
    task = (await client.post("/api/v1/tasks", json={"action": NOOP})).json()
    run = (await client.get(f"/api/v1/runs/{task['id']}")).json()
    assert (task["id"], None, None) == (run["id"], run["result"], run["error"])


async def test_cancel_then_retry(client: httpx.AsyncClient) -> None:
    """Cancel a queued run, then retry it: cancelled, then queued again."""
    task = (await client.post("/api/v1/tasks", json={"action": NOOP})).json()
    cancelled = await client.post(f"/api/v1/runs/{task['id']}/cancel")
    retried = await client.post(f"/api/v1/runs/{task['id']}/retry")
    assert (200, "cancelled") == (cancelled.status_code, cancelled.json()["status"])
    assert (200, "queued") == (retried.status_code, retried.json()["status"])


async def test_cancel_a_finished_run_is_409(client: httpx.AsyncClient) -> None:
    """A run that already finished cannot be cancelled: 409 naming ``status``."""
    task = (await client.post("/api/v1/tasks", json={"action": NOOP})).json()
    await client.post(f"/api/v1/runs/{task['id']}/cancel")
    again = await client.post(f"/api/v1/runs/{task['id']}/cancel")
    assert (409, PROBLEM) == (again.status_code, again.headers["content-type"])
    assert ["status"] == [e["field"] for e in again.json()["errors"]]


async def test_retry_an_unfinished_run_is_409(client: httpx.AsyncClient) -> None:
    """Only finished runs can be retried by hand."""
    task = (await client.post("/api/v1/tasks", json={"action": NOOP})).json()
    assert 409 == (await client.post(f"/api/v1/runs/{task['id']}/retry")).status_code


@pytest.mark.parametrize(
    ("method", "suffix"), [("GET", ""), ("POST", "/retry"), ("POST", "/cancel")]
)
async def test_unknown_run_is_404(client: httpx.AsyncClient, method: str, suffix: str) -> None:
    """Reading, retrying or cancelling a run that does not exist answers a 404 problem."""
    answer = await client.request(method, f"/api/v1/runs/nope{suffix}")
    assert (404, PROBLEM) == (answer.status_code, answer.headers["content-type"])


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "WyJ4Il0"}, "cursor"),
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"status": "sleeping"}, "status.0"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-01-01T00:00:00"}, "since"),
    ],
)
async def test_bad_query_parameters_are_422(
    client: httpx.AsyncClient, params: dict[str, Any], field: str
) -> None:
    """Bad cursors, limits, statuses and times answer 422 naming the parameter."""
    answer = await client.get("/api/v1/runs", params=params)
    assert (422, [field]) == (answer.status_code, [e["field"] for e in answer.json()["errors"]])

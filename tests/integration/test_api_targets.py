"""``/api/v1/targets`` and metric jobs through the ASGI app, on SQLite and PostgreSQL stores."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy
from test_api_jobs import api_client

from pacer.bootstrap import Container, running
from pacer.domain.models import FINAL
from pacer.domain.tokens import Scope
from support import eventually, fast_settings

PROBLEM = "application/problem+json"
ROWS = [(1, "2022-12-01 10:00:00", 70.5), (2, "2022-12-05 11:00:00", 80.0)]


def _populate(url: str) -> None:
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE registration (id INTEGER PRIMARY KEY, timestamp TEXT NOT NULL, weight REAL NOT NULL)"
        )
        conn.execute(
            sqlalchemy.text("INSERT INTO registration VALUES (:id, :at, :weight)"),
            [{"id": id_, "at": at, "weight": weight} for id_, at, weight in ROWS],
        )
    engine.dispose()


@pytest.fixture
async def container(database_url: str, tmp_path: Path) -> AsyncIterator[Container]:
    """A store on each backend, with a populated ``demo`` target and an empty ``spare`` one."""
    demo = f"sqlite:///{tmp_path}/demo.db"
    _populate(demo)
    targets = {"demo": demo, "spare": f"sqlite:///{tmp_path}/spare.db"}
    async with running(fast_settings(database_url, targets=targets)) as built:
        yield built


@pytest.fixture
async def client(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(container, Scope.WRITE) as built:
        yield built


def metric_job(name: str = "weights", **action: Any) -> dict[str, Any]:
    fields = {
        "kind": "metric",
        "target": "demo",
        "table": "registration",
        "column": "weight",
        "aggregation": "avg",
        "time_column": "timestamp",
        "period": "per_week",
        **action,
    }
    return {"name": name, "schedule": {"cron": "0 3 * * *"}, "action": fields}


async def test_targets_are_listed_by_name_with_their_dialect(client: httpx.AsyncClient) -> None:
    """The list shows names and dialects, never URLs."""
    answer = await client.get("/api/v1/targets")
    assert 200 == answer.status_code
    assert {
        "items": [{"name": "demo", "dialect": "sqlite"}, {"name": "spare", "dialect": "sqlite"}],
        "next_cursor": None,
    } == answer.json()


async def test_targets_are_paged(client: httpx.AsyncClient) -> None:
    """``limit`` cuts pages; ``next_cursor`` fetches the next one."""
    first = (await client.get("/api/v1/targets", params={"limit": 1})).json()
    second = (
        await client.get("/api/v1/targets", params={"limit": 1, "cursor": first["next_cursor"]})
    ).json()
    assert (["demo"], ["spare"]) == (
        [t["name"] for t in first["items"]],
        [t["name"] for t in second["items"]],
    )
    assert None is second["next_cursor"]


async def test_metadata_describes_tables_columns_and_choices(client: httpx.AsyncClient) -> None:
    """The metadata lists each column with what may be measured on it, and every choice."""
    answer = await client.get("/api/v1/targets/demo/metadata")
    every = ["min", "max", "avg", "sum", "count"]
    assert 200 == answer.status_code
    assert {
        "name": "demo",
        "dialect": "sqlite",
        "tables": [
            {
                "name": "registration",
                "columns": [
                    {
                        "name": "id",
                        "type": "INTEGER",
                        "nullable": True,
                        "numeric": True,
                        "time": False,
                        "aggregations": every,
                    },
                    {
                        "name": "timestamp",
                        "type": "TEXT",
                        "nullable": False,
                        "numeric": False,
                        "time": True,
                        "aggregations": ["count"],
                    },
                    {
                        "name": "weight",
                        "type": "REAL",
                        "nullable": False,
                        "numeric": True,
                        "time": False,
                        "aggregations": every,
                    },
                ],
                "time_columns": ["timestamp"],
            }
        ],
        "aggregations": every,
        "periods": [
            "today",
            "yesterday",
            "last_7_days",
            "last_30_days",
            "previous_iso_week",
            "per_day",
            "per_week",
            "per_month",
        ],
    } == answer.json()


async def test_metadata_of_an_unknown_target_is_404(client: httpx.AsyncClient) -> None:
    """An unknown target answers a 404 problem."""
    answer = await client.get("/api/v1/targets/nope/metadata")
    assert (404, PROBLEM) == (answer.status_code, answer.headers["content-type"])


async def test_targets_need_a_token(container: Container) -> None:
    """Without a token the targets are not shown."""
    async with api_client(container, None) as anonymous:
        assert 401 == (await anonymous.get("/api/v1/targets")).status_code


@pytest.mark.parametrize(
    ("action", "field"),
    [
        ({"table": "nope"}, "action.table"),
        ({"column": "height"}, "action.column"),
        ({"column": "timestamp"}, "action.aggregation"),
        ({"time_column": "weight"}, "action.time_column"),
        ({"group_by": "region"}, "action.group_by"),
        ({"target": "nowhere"}, "action.target"),
    ],
)
async def test_invalid_metric_jobs_are_refused(
    client: httpx.AsyncClient, action: dict[str, Any], field: str
) -> None:
    """A metric naming what the target lacks is 422 on the field, and nothing is stored."""
    answer = await client.post("/api/v1/jobs", json=metric_job(**action))
    assert (422, field) == (answer.status_code, answer.json()["errors"][0]["field"])
    assert 404 == (await client.get("/api/v1/jobs/weights")).status_code


async def test_a_valid_metric_job_is_created_with_a_write_token(client: httpx.AsyncClient) -> None:
    """Metric jobs compile to vetted SQL: a write token suffices, and the spec reads back."""
    answer = await client.post("/api/v1/jobs", json=metric_job(group_by="id"))
    assert 201 == answer.status_code
    action = answer.json()["action"]
    assert ("metric", ["id"], "per_week") == (action["kind"], action["group_by"], action["period"])


async def test_a_metric_job_runs_and_stores_its_result(
    container: Container, client: httpx.AsyncClient
) -> None:
    """A triggered metric run, executed by a real worker, stores the weekly averages."""
    await client.post("/api/v1/jobs", json=metric_job())
    run = (await client.post("/api/v1/jobs/weights/trigger")).json()
    stop = asyncio.Event()
    task = asyncio.create_task(container.worker().run(stop))

    async def finished() -> bool:
        found = await container.store.get_run(run["id"])
        return found is not None and found.status in FINAL

    try:
        await eventually(finished)
    finally:
        stop.set()
        await task
    done = (await client.get(f"/api/v1/runs/{run['id']}")).json()
    assert "succeeded" == done["status"]
    expected = {
        "columns": ["year", "week", "average_weight"],
        "rows": [[2022, 48, 70.5], [2022, 49, 80.0]],
    }
    assert expected == {key: done["result"][key] for key in ("columns", "rows")}

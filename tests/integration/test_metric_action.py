"""Schema discovery and the metric action on a real SQLite file and a real PostgreSQL database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy

from pacer.actions.discovery import SchemaCatalog
from pacer.actions.metric import MetricActionRunner
from pacer.actions.sql import SqlActionRunner
from pacer.actions.targets import Targets
from pacer.domain.errors import ActionFailed, InvalidInput, NotFound
from pacer.ports import RunContext

#: A Thursday: today is 12-08, the previous ISO week is 2022-W48 (11-28 to 12-04).
AS_OF = date(2022, 12, 8)
REGISTRATIONS = [
    (1, "2022-11-01 09:00:00", 60.0),
    (2, "2022-11-28 08:00:00", 70.0),
    (3, "2022-12-04 23:59:59", 80.0),
    (4, "2022-12-07 12:00:00", 90.0),
    (5, "2022-12-08 00:00:00", 100.0),
    (6, "2022-12-08 18:30:00", 110.0),
    (7, "2022-12-09 00:00:00", 1000.0),  # after as_of: outside every filter period
]
DAILY = [["2022-11-01", 60.0], ["2022-11-28", 70.0], ["2022-12-04", 80.0]]
DAILY += [["2022-12-07", 90.0], ["2022-12-08", 105.0], ["2022-12-09", 1000.0]]
ORDER_ITEMS = [
    (1, 2.5, "x", "2022-12-01T10:00:00", "2022-12-01"),
    (2, 4.0, "y", "2022-12-01T11:00:00", "soon"),
    (3, 1.5, "x", "2022-12-02T09:00:00", None),
]
DDL = {
    "sqlite": "CREATE TABLE registration (id INTEGER PRIMARY KEY, timestamp TEXT NOT NULL, weight REAL NOT NULL)",
    "postgresql": "CREATE TABLE registration (id INTEGER PRIMARY KEY, timestamp timestamp NOT NULL, weight REAL NOT NULL, logged_at TEXT)",
}
COMMON_DDL = [
    'CREATE TABLE "Order Items" (id INTEGER PRIMARY KEY, "select" REAL, "group" TEXT, "created at" TEXT, note TEXT)',
    "CREATE TABLE pacer_runs (id TEXT)",
    "CREATE TABLE alembic_version (version_num TEXT)",
]


def _populate(url: str, backend: str) -> None:
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as conn:
        for ddl in [DDL[backend], *COMMON_DDL]:
            conn.exec_driver_sql(ddl)
        for id_, moment, weight in REGISTRATIONS:
            values = {"id": id_, "timestamp": moment, "weight": weight}
            if backend == "postgresql":
                values["logged_at"] = moment.replace(" ", "T")
            conn.execute(
                sqlalchemy.table("registration", *map(sqlalchemy.column, values)).insert(), values
            )
        items = sqlalchemy.table(
            "Order Items", *map(sqlalchemy.column, ["id", "select", "group", "created at", "note"])
        )
        for row in ORDER_ITEMS:
            conn.execute(items.insert().values(row))
    engine.dispose()


@dataclass(frozen=True)
class Case:
    backend: str
    url: str
    #: The registration time column under test: declared, or ISO text (PostgreSQL only).
    time_column: str = "timestamp"


@pytest.fixture(params=["sqlite", "postgresql", "postgresql-text"])
def case(request: pytest.FixtureRequest, tmp_path: Path) -> Case:
    """SQLite (TEXT dates), PostgreSQL with a timestamp column, and with an ISO text column."""
    backend = request.param.split("-")[0]
    url = (
        f"sqlite:///{tmp_path}/target.db"
        if backend == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    _populate(url, backend)
    return Case(backend, url, "logged_at" if request.param.endswith("-text") else "timestamp")


@pytest.fixture
def targets(case: Case) -> Iterator[Targets]:
    configured = Targets({"db": case.url})
    yield configured
    configured.dispose()


@pytest.fixture
def catalog(targets: Targets) -> SchemaCatalog:
    return SchemaCatalog(targets, ttl_s=0)


@pytest.fixture
async def runner(targets: Targets, catalog: SchemaCatalog) -> AsyncIterator[MetricActionRunner]:
    metric = MetricActionRunner(targets, catalog)
    yield metric
    await metric.aclose()


def context(key: str = "run-1:key", as_of: date | None = AS_OF) -> RunContext:
    return RunContext("run-1", 1, None, None, {}, key, datetime.now(UTC), as_of=as_of)


def spec(**fields: Any) -> dict[str, Any]:
    return {"kind": "metric", "target": "db", "table": "registration", **fields}


def weight(case: Case, period: str | None, **fields: Any) -> dict[str, Any]:
    return spec(
        column="weight", aggregation="avg", time_column=case.time_column, period=period, **fields
    )


# -- discovery ----------------------------------------------------------------------------------


async def test_discovery_lists_user_tables_only(catalog: SchemaCatalog) -> None:
    """Pacer's own tables and alembic_version are not offered as data."""
    metadata = await catalog.describe("db")
    assert ["Order Items", "registration"] == [table.name for table in metadata.tables]


async def test_discovery_classifies_columns(catalog: SchemaCatalog, case: Case) -> None:
    """Integers and reals are numeric; declared and ISO-text timestamps are time columns;
    types are named as the database reports them."""
    metadata = await catalog.describe("db")
    registration = metadata.table("registration")
    assert registration is not None
    assert case.backend == metadata.dialect
    found = {c.name: (c.numeric, c.time, c.nullable, c.type) for c in registration.columns}
    declared = "TEXT" if case.backend == "sqlite" else "TIMESTAMP WITHOUT TIME ZONE"
    assert (True, False) == found["id"][:2]  # SQLite calls an INTEGER PRIMARY KEY nullable
    assert (True, False, False, "REAL") == found["weight"]
    assert (False, True, False, declared) == found["timestamp"]
    assert ["min", "max", "avg", "sum", "count"] == list(registration.columns[2].aggregations)
    if case.backend == "postgresql":
        assert (False, True, True, "TEXT") == found["logged_at"]
        assert ["timestamp", "logged_at"] == registration.time_columns


async def test_discovery_samples_text_columns(catalog: SchemaCatalog) -> None:
    """Text is a time column only if every sampled value is an ISO date."""
    items = (await catalog.describe("db")).table("Order Items")
    assert items is not None
    assert ["created at"] == items.time_columns
    assert ("count",) == items.columns[2].aggregations


async def test_unknown_target_is_not_found(catalog: SchemaCatalog) -> None:
    """Describing a target that is not configured raises NotFound."""
    with pytest.raises(NotFound):
        await catalog.describe("nope")


async def test_metadata_is_cached_until_the_ttl_passes(targets: Targets, case: Case) -> None:
    """Within the TTL no reflection happens; after it (or a refresh) a new table shows."""
    now = [0.0]
    catalog = SchemaCatalog(targets, ttl_s=30, monotonic=lambda: now[0])
    first = await catalog.describe("db")
    engine = sqlalchemy.create_engine(case.url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE later (id INTEGER)")
    engine.dispose()
    now[0] = 29.0
    assert first is await catalog.describe("db")
    now[0] = 30.0
    assert "later" in [table.name for table in (await catalog.describe("db")).tables]
    catalog.refresh()
    assert first is not catalog.describe_sync("db")


# -- execution ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("period", "columns", "rows"),
    [
        (None, ["average_weight"], [[1510 / 7]]),
        ("today", ["date", "average_weight"], [["2022-12-08", 105.0]]),
        ("yesterday", ["date", "average_weight"], [["2022-12-07", 90.0]]),
        ("last_7_days", ["from", "to", "average_weight"], [["2022-12-02", "2022-12-08", 95.0]]),
        ("last_30_days", ["from", "to", "average_weight"], [["2022-11-09", "2022-12-08", 90.0]]),
        ("previous_iso_week", ["year", "week", "average_weight"], [[2022, 48, 75.0]]),
        ("per_day", ["date", "average_weight"], DAILY),
        (
            "per_week",
            ["year", "week", "average_weight"],
            [[2022, 44, 60.0], [2022, 48, 75.0], [2022, 49, 325.0]],
        ),
        ("per_month", ["month", "average_weight"], [["2022-11", 65.0], ["2022-12", 276.0]]),
    ],
)
async def test_average_weight_per_period(
    runner: MetricActionRunner,
    case: Case,
    period: str | None,
    columns: list[str],
    rows: list[list[Any]],
) -> None:
    """Each period gives the hand-computed averages of the known rows, labelled."""
    runner.validate(weight(case, period))
    result = await runner.execute(weight(case, period), context())
    assert (columns, len(rows)) == (result["columns"], result["row_count"])
    assert [row[:-1] for row in rows] == [row[:-1] for row in result["rows"]]
    assert [row[-1] for row in rows] == pytest.approx([row[-1] for row in result["rows"]])


async def test_count_min_max_sum(runner: MetricActionRunner, case: Case) -> None:
    """The other aggregations, over the last 7 days."""
    found = {}
    for aggregation in ("count", "min", "max", "sum"):
        column = "*" if aggregation == "count" else "weight"
        action = {**weight(case, "last_7_days"), "column": column, "aggregation": aggregation}
        found[aggregation] = (await runner.execute(action, context()))["rows"][0][-1]
    assert {"count": 4, "min": 80.0, "max": 110.0, "sum": 380.0} == found


async def test_result_carries_the_statement_with_placeholders(
    runner: MetricActionRunner, case: Case
) -> None:
    """The stored result shows the SQL run, with bind placeholders, never the bound dates."""
    result = await runner.execute(weight(case, "today", value_name="w"), context())
    assert ["date", "w"] == result["columns"]
    assert "2022-12-08" not in result["statement"]
    assert result["statement"].startswith("SELECT avg(registration.weight)")


async def test_no_as_of_means_today(runner: MetricActionRunner, case: Case) -> None:
    """Without a reference date the period is relative to today's UTC date."""
    result = await runner.execute(weight(case, "today"), context(as_of=None))
    assert [[datetime.now(UTC).date().isoformat(), None]] == result["rows"]


async def test_quoted_identifiers(runner: MetricActionRunner) -> None:
    """A table with a space and columns named like keywords are quoted by the dialect."""
    action = {
        "kind": "metric",
        "target": "db",
        "table": "Order Items",
        "column": "select",
        "aggregation": "sum",
        "time_column": "created at",
        "period": "per_day",
        "group_by": "group",
    }
    runner.validate(action)
    result = await runner.execute(action, context())
    assert ["date", "group", "sum_select"] == result["columns"]
    assert [["2022-12-01", "x", 2.5], ["2022-12-01", "y", 4.0], ["2022-12-02", "x", 1.5]] == result[
        "rows"
    ]


async def test_rows_beyond_max_rows_are_cut(runner: MetricActionRunner, case: Case) -> None:
    """At most ``max_rows`` buckets are kept, and the result says so."""
    result = await runner.execute(weight(case, "per_day", max_rows=2), context())
    assert (2, True) == (result["row_count"], result["truncated"])


def test_query_id_groups_runs_of_one_metric(runner: MetricActionRunner, case: Case) -> None:
    """The fingerprint ignores the bound dates and changes with the metric."""
    today = runner.query_id(weight(case, "today"))
    assert today is not None
    assert today == runner.query_id(weight(case, "yesterday"))
    assert today != runner.query_id(weight(case, "per_day"))
    assert today != runner.query_id(
        spec(aggregation="count", time_column=case.time_column, period="today")
    )
    assert None is runner.query_id(spec(aggregation="avg"))


# -- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        (
            {"table": "registration; DROP TABLE registration", "aggregation": "count"},
            "action.table",
        ),
        ({"table": 'registration" --', "aggregation": "count"}, "action.table"),
        (
            {
                "column": "weight) FROM registration; DROP TABLE registration; --",
                "aggregation": "max",
            },
            "action.column",
        ),
        (
            {"aggregation": "count", "time_column": "1=1 OR timestamp", "period": "today"},
            "action.time_column",
        ),
        ({"aggregation": "count", "group_by": ["id; DELETE FROM registration"]}, "action.group_by"),
        ({"aggregation": "avg", "column": "id", "target": "elsewhere"}, "action.target"),
    ],
)
def test_validation_refuses_names_the_schema_lacks(
    runner: MetricActionRunner, fields: dict[str, Any], field: str
) -> None:
    """Injection attempts in names are unknown names: refused before anything runs."""
    with pytest.raises(InvalidInput) as refused:
        runner.validate(spec(**fields))
    assert field == refused.value.field


async def test_an_unvalidated_injection_fails_as_a_missing_table(
    runner: MetricActionRunner, case: Case
) -> None:
    """Even past validation a name stays one quoted identifier: the run fails, the table stays."""
    action = spec(table="registration; DROP TABLE registration; --", aggregation="count")
    with pytest.raises(ActionFailed) as failure:
        await runner.execute(action, context())
    assert not failure.value.retryable
    assert [[7]] == (await runner.execute(spec(aggregation="count"), context()))["rows"]


def test_validation_refuses_text_arithmetic(runner: MetricActionRunner) -> None:
    """avg of a text column names the aggregation and what is allowed."""
    with pytest.raises(InvalidInput) as refused:
        runner.validate({**spec(aggregation="avg", column="group"), "table": "Order Items"})
    assert ("action.aggregation", "avg is not allowed on text column 'group'; allowed: count") == (
        refused.value.field,
        refused.value.reason,
    )


# -- sinks --------------------------------------------------------------------------------------


async def test_sink_path_posts_to_the_base_url(
    targets: Targets, catalog: SchemaCatalog, case: Case, receiver: Any
) -> None:
    """A sink given as ``/result`` posts each row to this server's base URL, keyed per row."""
    runner = MetricActionRunner(targets, catalog, base_url=receiver.url + "/")
    action = weight(case, "per_month", sink={"url": "/result", "mode": "each_row"})
    try:
        runner.validate(action)
        result = await runner.execute(action, context("k"))
    finally:
        await runner.aclose()
    assert ["/result", "/result"] == [request.path for request in receiver.requests]
    assert {"month": "2022-11", "average_weight": 65.0} == receiver.requests[0].body
    keys = [
        {k.lower(): v for k, v in r.headers.items()}["idempotency-key"] for r in receiver.requests
    ]
    assert ["k:0", "k:1"] == keys
    assert {"mode": "each_row", "statuses": [200, 200]} == result["sink"]


async def test_sql_sink_path_posts_to_the_base_url(targets: Targets, receiver: Any) -> None:
    """The sql action resolves a path sink the same way."""
    runner = SqlActionRunner(targets, base_url=receiver.url)
    action = {
        "kind": "sql",
        "target": "db",
        "statement": "SELECT 1 AS one",
        "sink": {"url": "/result"},
    }
    try:
        runner.validate(action)
        await runner.execute(action, context())
    finally:
        await runner.aclose()
    assert [("/result", {"one": 1})] == [(r.path, r.body) for r in receiver.requests]


async def test_sink_path_without_base_url_fails_for_good(
    runner: MetricActionRunner, case: Case
) -> None:
    """With no base URL configured a path sink cannot be resolved; retrying will not help."""
    with pytest.raises(ActionFailed) as failure:
        await runner.execute(weight(case, "today", sink={"url": "/result"}), context())
    assert not failure.value.retryable


@pytest.mark.parametrize("url", ["result", "//elsewhere.example/result", "ftp://x/y"])
def test_sink_must_be_a_url_or_a_path(runner: MetricActionRunner, case: Case, url: str) -> None:
    """A relative path, a scheme-relative URL or another scheme is refused on the sink's url."""
    with pytest.raises(InvalidInput) as refused:
        runner.validate(weight(case, "today", sink={"url": url}))
    assert "action.sink.url" == refused.value.field

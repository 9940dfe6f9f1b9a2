"""The sql action on a real SQLite file and a real PostgreSQL database, and its HTTP sink."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from test_http_action import Receiver, context, free_port

from pacer.actions.sql import SqlActionRunner
from pacer.actions.targets import Targets
from pacer.domain.errors import ActionFailed, InvalidInput
from pacer.ports import RunContext

SALES = [
    (1, "north", "10.50", date(2024, 1, 1)),
    (2, "south", "20.25", date(2024, 1, 2)),
    (3, "north", "5.00", date(2024, 1, 3)),
]
#: A statement that runs far longer than the test's timeout, on each backend.
SLOW = {
    "sqlite": "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n",
    "postgresql": "SELECT pg_sleep(5)",
}


def _create_sales(url: str) -> None:
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE sales (id INTEGER PRIMARY KEY, region TEXT, amount NUMERIC(10, 2), day DATE)"
        )
        for id_, region, amount, day in SALES:
            conn.execute(
                sqlalchemy.text("INSERT INTO sales VALUES (:id, :region, :amount, :day)"),
                {"id": id_, "region": region, "amount": amount, "day": day.isoformat()},
            )
    engine.dispose()


@dataclass(frozen=True)
class Target:
    backend: str
    url: str


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    """Each test runs on an SQLite file and on a fresh PostgreSQL database holding ``sales``."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/target.db"
    else:
        url = request.getfixturevalue("pg_url")
    _create_sales(url)
    return Target(request.param, url)


@pytest.fixture
def targets(target: Target) -> Iterator[Targets]:
    """The target ``db`` (the backend's database), disposed after the test."""
    configured = Targets({"db": target.url})
    yield configured
    configured.dispose()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real HTTP server standing in for the sink."""
    with Receiver() as recv:
        yield recv


@pytest.fixture
async def runner(targets: Targets) -> AsyncIterator[SqlActionRunner]:
    """A sql runner over ``targets``, its HTTP client closed after the test."""
    sql = SqlActionRunner(targets)
    yield sql
    await sql.aclose()


def sql(statement: str, **fields: Any) -> dict[str, Any]:
    return {"kind": "sql", "target": "db", "statement": statement, **fields}


async def test_returns_columns_and_json_safe_rows(runner: SqlActionRunner) -> None:
    """Rows come back as lists under their column names; decimals and dates as JSON values."""
    result = await runner.execute(sql("SELECT id, amount, day FROM sales ORDER BY id"), context())
    assert result["columns"] == ["id", "amount", "day"]
    assert result["rows"][0] == [1, 10.5, "2024-01-01"]
    assert result["row_count"] == 3
    assert "truncated" not in result


async def test_binds_named_parameters_the_statement_uses(runner: SqlActionRunner) -> None:
    """``:region`` takes the run's parameter; parameters the statement does not name are ignored."""
    spec = sql("SELECT id FROM sales WHERE region = :region ORDER BY id")
    result = await runner.execute(spec, context(region="north", unused=1))
    assert result["rows"] == [[1], [3]]


async def test_colons_inside_quotes_are_not_parameters(runner: SqlActionRunner) -> None:
    """``'12:30'`` and ``'{"a":1}'`` stay text; only bare ``:name`` is a parameter."""
    spec = sql("""SELECT '12:30' AS t, '{"a":1}' AS j, :region AS r -- at 10:15 :x""")
    result = await runner.execute(spec, context(region="north"))
    assert result["rows"] == [["12:30", '{"a":1}', "north"]]


async def test_binds_as_of_from_the_run(runner: SqlActionRunner) -> None:
    """``:as_of`` is the run's reference date, so a job can query a data set ending in the past."""
    spec = sql("SELECT id FROM sales WHERE day < :as_of ORDER BY id")
    ctx = RunContext(**{**context().__dict__, "as_of": date(2024, 1, 3)})
    result = await runner.execute(spec, ctx)
    assert result["rows"] == [[1], [2]]


async def test_as_of_defaults_to_today_in_utc(runner: SqlActionRunner) -> None:
    """Without a reference date, ``:as_of`` is today's UTC date."""
    result = await runner.execute(
        sql("SELECT count(*) AS n FROM sales WHERE day < :as_of"), context()
    )
    assert result["rows"] == [[3]]
    assert datetime.now(UTC).date() > SALES[-1][3]


async def test_missing_parameter_fails_for_good(runner: SqlActionRunner) -> None:
    """A statement naming a parameter the run lacks fails without retrying, naming it."""
    with pytest.raises(ActionFailed) as failure:
        await runner.execute(sql("SELECT id FROM sales WHERE region = :region"), context())
    assert not failure.value.retryable
    assert ":region" in str(failure.value)


async def test_rows_beyond_max_rows_are_cut(runner: SqlActionRunner) -> None:
    """At most ``max_rows`` rows are kept, and the result says it was truncated."""
    result = await runner.execute(sql("SELECT id FROM sales ORDER BY id", max_rows=2), context())
    assert result["rows"] == [[1], [2]]
    assert result["truncated"] is True


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM sales",
        "WITH gone AS (DELETE FROM sales RETURNING *) SELECT * FROM gone",
        "SELECT 1; DELETE FROM sales",
    ],
)
def test_validate_refuses_writes_in_read_only_jobs(runner: SqlActionRunner, statement: str) -> None:
    """A read-only job (the default) may not write, however the write is dressed up."""
    with pytest.raises(InvalidInput) as refused:
        runner.validate(sql(statement))
    assert refused.value.field == "action.statement"
    assert "read-only" in refused.value.reason


def test_validate_names_the_writing_statement(runner: SqlActionRunner) -> None:
    """The refusal says which kind of statement it found."""
    with pytest.raises(InvalidInput, match="found DELETE"):
        runner.validate(sql("DELETE FROM sales"))


def test_validate_accepts_writes_when_not_read_only(runner: SqlActionRunner) -> None:
    """``read_only = false`` lets a job write."""
    runner.validate(sql("DELETE FROM sales WHERE id = :id", read_only=False))


def test_validate_refuses_unknown_target(runner: SqlActionRunner) -> None:
    """A target missing from configuration is refused, listing the known ones."""
    with pytest.raises(InvalidInput) as refused:
        runner.validate({"kind": "sql", "target": "nope", "statement": "SELECT 1"})
    assert refused.value.field == "action.target"
    assert refused.value.reason == "unknown target 'nope'; known: db"


async def test_database_refuses_a_write_smuggled_past_validation(runner: SqlActionRunner) -> None:
    """A read-only run that reaches the database with an UPDATE fails there, for good."""
    with pytest.raises(ActionFailed) as failure:
        await runner.execute(sql("UPDATE sales SET amount = 0"), context())
    assert not failure.value.retryable
    assert "read" in str(failure.value).lower()
    result = await runner.execute(sql("SELECT count(*) FROM sales WHERE amount = 0"), context())
    assert result["rows"] == [[0]]


async def test_write_after_a_read_only_run_works(runner: SqlActionRunner) -> None:
    """Read-only mode does not leak into the pooled connection's next run."""
    await runner.execute(sql("SELECT 1"), context())
    spec = sql("UPDATE sales SET amount = 0 WHERE id = :id", read_only=False)
    result = await runner.execute(spec, context(id=2))
    assert result["row_count"] == 1
    check = await runner.execute(sql("SELECT amount FROM sales WHERE id = 2"), context())
    assert check["rows"] == [[0.0]]


async def test_statement_timeout_is_retryable(runner: SqlActionRunner, target: Target) -> None:
    """A statement running past ``statement_timeout_s`` is stopped and may be retried."""
    spec = sql(SLOW[target.backend], statement_timeout_s=0.2)
    with pytest.raises(ActionFailed) as failure:
        await runner.execute(spec, context())
    assert failure.value.retryable
    assert "statement timeout after 0.2s" in str(failure.value)


async def test_syntax_error_fails_for_good(runner: SqlActionRunner) -> None:
    """A statement the database cannot parse will not parse on retry either."""
    with pytest.raises(ActionFailed) as failure:
        await runner.execute(sql("SELEKT 1"), context())
    assert not failure.value.retryable


async def test_unreachable_database_is_retryable() -> None:
    """A refused connection fails the attempt as retryable."""
    targets = Targets({"db": f"postgresql://postgres@127.0.0.1:{free_port()}/none"})
    runner = SqlActionRunner(targets)
    try:
        with pytest.raises(ActionFailed) as failure:
            await runner.execute(sql("SELECT 1"), context())
    finally:
        await runner.aclose()
        targets.dispose()
    assert failure.value.retryable


def test_query_id_ignores_literal_values(runner: SqlActionRunner) -> None:
    """Runs of one query with different literals share a query id."""
    first = runner.query_id(sql("SELECT * FROM sales WHERE id = 1"))
    assert first == runner.query_id(sql("select *  from sales where id = 2 -- again"))
    assert first != runner.query_id(sql("SELECT * FROM sales WHERE region = 'x'"))


# -- sinks --------------------------------------------------------------------------------------


def with_sink(receiver: Receiver, mode: str) -> dict[str, Any]:
    sink = {"url": f"{receiver.url}/rows", "mode": mode, "headers": {"X-Sink": "yes"}}
    return sql("SELECT id, region FROM sales ORDER BY id", sink=sink)


async def test_sink_first_row_posts_one_object(runner: SqlActionRunner, receiver: Receiver) -> None:
    """``first_row`` posts the first row as an object, keyed by the run's idempotency key."""
    result = await runner.execute(with_sink(receiver, "first_row"), context("k"))
    assert receiver.bodies() == [{"id": 1, "region": "north"}]
    assert receiver.keys() == ["k"]
    assert receiver.requests[0].headers["x-sink"] == "yes"
    assert result["sink"] == {"mode": "first_row", "statuses": [200]}


async def test_sink_each_row_posts_one_object_per_row(
    runner: SqlActionRunner, receiver: Receiver
) -> None:
    """``each_row`` posts every row on its own, each with a key of its own."""
    result = await runner.execute(with_sink(receiver, "each_row"), context("k"))
    assert [body["id"] for body in receiver.bodies()] == [1, 2, 3]
    assert receiver.keys() == ["k:0", "k:1", "k:2"]
    assert result["sink"]["statuses"] == [200, 200, 200]


async def test_sink_rows_posts_one_list(runner: SqlActionRunner, receiver: Receiver) -> None:
    """``rows`` posts all rows as one list of objects."""
    await runner.execute(with_sink(receiver, "rows"), context("k"))
    assert receiver.bodies() == [[{"id": i, "region": r} for i, r, _, _ in SALES]]
    assert receiver.keys() == ["k"]


async def test_sink_failure_is_classified_like_http(
    runner: SqlActionRunner, receiver: Receiver
) -> None:
    """A sink answering 503 midway fails the attempt as retryable, keeping what was posted."""
    receiver.answer(200, 503)
    with pytest.raises(ActionFailed) as failure:
        await runner.execute(with_sink(receiver, "each_row"), context("k"))
    assert failure.value.retryable
    assert failure.value.result["sink"]["statuses"] == [200]


async def test_sink_client_error_is_final(runner: SqlActionRunner, receiver: Receiver) -> None:
    """A sink answering 404 fails the attempt for good."""
    receiver.answer(404)
    with pytest.raises(ActionFailed) as failure:
        await runner.execute(with_sink(receiver, "rows"), context("k"))
    assert not failure.value.retryable


# -- targets ------------------------------------------------------------------------------------


def test_targets_rewrite_plain_postgresql_urls_to_psycopg() -> None:
    """``postgresql://`` URLs get the psycopg driver, which is the one installed."""
    targets = Targets(
        {
            "pg": "postgresql://u@h:5432/d",
            "old": "postgres://u@h/d",
            "lite": "sqlite+aiosqlite:///x.db",
        }
    )
    assert targets.url("pg") == "postgresql+psycopg://u@h:5432/d"
    assert targets.url("old") == "postgresql+psycopg://u@h/d"
    assert targets.url("lite") == "sqlite:///x.db"
    assert targets.names() == ["lite", "old", "pg"]


def test_targets_never_show_passwords() -> None:
    """The repr and the display URL mask the password."""
    targets = Targets({"pg": "postgresql://user:s3cret@h/d"})
    assert "s3cret" not in repr(targets)
    assert "s3cret" not in targets.display_url("pg")
    assert "s3cret" in targets.url("pg")


def test_targets_refuse_a_malformed_url_without_echoing_it() -> None:
    """A URL that does not parse is refused without repeating it (it may hold a password)."""
    with pytest.raises(InvalidInput) as refused:
        Targets({"bad": "s3cret not a url"})
    assert refused.value.field == "targets.bad"
    assert "s3cret" not in str(refused.value)


def test_targets_refuse_backends_without_read_only_and_timeout_support() -> None:
    """Only SQLite and PostgreSQL targets are accepted."""
    with pytest.raises(InvalidInput, match="use sqlite or postgresql"):
        Targets({"my": "mysql://u@h/d"})


def test_targets_cache_engines(targets: Targets) -> None:
    """One engine per target, reused: its pool is what makes runs cheap."""
    assert targets.engine("db") is targets.engine("db")

"""The ``metric`` action: an aggregate of one column, compiled to SQL for the target's dialect.

Users name a table, a column, an aggregation and a period; they never write SQL. The names
are checked against the discovered schema before a job is stored, then reach the statement
only as SQLAlchemy identifiers, which the dialect quotes (``"Order Items"."select"``); period
bounds are bound parameters. The statement has the same shape whatever the column's declared
type: bounds are bound as ISO text of unknown type, which PostgreSQL casts to the column's
type and SQLite compares as text (correct for ISO dates, which is what discovery checked).
That keeps ``query_id`` free of I/O, so the scheduler can compute it at fire time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy
from pydantic import ValidationError
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import NullType

from pacer.actions.discovery import SchemaCatalog
from pacer.actions.http import HttpPoster, check_url
from pacer.actions.statements import post_to_sink, run_statement
from pacer.actions.targets import Targets
from pacer.domain.errors import ActionFailed, InvalidInput
from pacer.domain.fingerprints import query_id
from pacer.domain.metrics import (
    BUCKET_PERIODS,
    MetricAction,
    Period,
    bucket_labels,
    check_metric,
    output_columns,
    period_labels,
    period_range,
)
from pacer.ports import RunContext

__all__ = ["MetricActionRunner", "build_statement"]


class MetricActionRunner:
    """Executes ``metric`` actions on the configured ``Targets``."""

    kind = "metric"

    def __init__(
        self,
        targets: Targets,
        catalog: SchemaCatalog,
        poster: HttpPoster | None = None,
        base_url: str | None = None,
    ) -> None:
        self.targets = targets
        self.catalog = catalog
        self.poster = poster or HttpPoster()
        #: This server's API, for sinks given as a path.
        self.base_url = base_url

    def validate(self, spec: Mapping[str, Any]) -> None:
        """Checks names against the target's schema; reflects (blocking) unless cached."""
        action = MetricAction.model_validate(spec)
        self.targets.url(action.target)
        try:
            metadata = self.catalog.describe_sync(action.target)
        except InvalidInput as exc:
            raise InvalidInput("action.target", exc.reason) from exc
        check_metric(action, metadata)
        if action.sink is not None:
            check_url(action.sink.url, "action.sink.url", allow_path=True)

    def query_id(self, spec: Mapping[str, Any]) -> str | None:
        """The fingerprint of the compiled SQL: runs of one metric share it, whatever the date."""
        try:
            action = MetricAction.model_validate(spec)
            dialect = self.targets.engine(action.target).dialect
        except (ValidationError, InvalidInput):
            return None
        return query_id(str(build_statement(action, dialect.name).compile(dialect=dialect)))

    async def execute(self, spec: Mapping[str, Any], ctx: RunContext) -> Any:
        action = _parse(spec)
        try:
            engine = self.targets.engine(action.target)
        except InvalidInput as exc:
            raise ActionFailed(exc.reason, retryable=False) from exc
        statement = build_statement(action, engine.dialect.name)
        as_of = ctx.as_of or datetime.now(UTC).date()
        bounds = period_range(action.period, as_of) if action.period is not None else None
        raw = await asyncio.to_thread(
            run_statement,
            engine,
            statement,
            _params(bounds),
            read_only=True,
            timeout_s=action.statement_timeout_s,
            max_rows=action.max_rows,
            stream=engine.dialect.name == "postgresql",
        )
        result = _shape(action, raw, bounds)
        result["statement"] = str(statement.compile(dialect=engine.dialect))
        if action.sink is not None:
            result["sink"] = await post_to_sink(
                self.poster, action.sink, self.base_url, result, ctx.idempotency_key
            )
        return result

    async def aclose(self) -> None:
        await self.poster.aclose()


def _parse(spec: Mapping[str, Any]) -> MetricAction:
    try:
        return MetricAction.model_validate(spec)
    except ValidationError as exc:
        raise ActionFailed(f"invalid metric action: {exc}", retryable=False) from exc


def _params(bounds: tuple[date, date] | None) -> dict[str, Any]:
    """ISO text: SQLite compares it with ISO text columns, PostgreSQL casts it to the column's
    type (sqlite3's implicit date adapter is deprecated anyway)."""
    if bounds is None:
        return {}
    return {"period_start": bounds[0].isoformat(), "period_end": bounds[1].isoformat()}


# -- the statement ------------------------------------------------------------------------------


def build_statement(action: MetricAction, dialect: str) -> sqlalchemy.Select[Any]:
    """``SELECT [bucket,] group_by..., agg(column) FROM table [WHERE range] GROUP BY ...``.

    Filter periods bind ``:period_start`` and ``:period_end``; the values are the caller's.
    """
    wanted = {action.column, action.time_column, *action.group_by}
    names = sorted(name for name in wanted if name is not None and name != "*")
    source = sqlalchemy.table(action.table, *(sqlalchemy.column(name) for name in names))
    keys: list[ColumnElement[Any]] = [source.c[name] for name in action.group_by]
    selected: list[ColumnElement[Any]] = list(keys)
    bucket = None
    if action.period in BUCKET_PERIODS and action.time_column is not None:
        bucket = _bucket(action.period, source.c[action.time_column], dialect)
        keys.insert(0, bucket)
        selected.insert(0, bucket.label("bucket"))
    statement = sqlalchemy.select(*selected, _aggregate(action, source).label("value"))
    statement = statement.select_from(source)
    if bucket is not None:
        statement = statement.where(bucket.is_not(None))
    elif action.period is not None and action.time_column is not None:
        moment = source.c[action.time_column]
        statement = statement.where(moment >= _bound("period_start"), moment < _bound("period_end"))
    return statement.group_by(*keys).order_by(*keys) if keys else statement


def _bound(name: str) -> sqlalchemy.BindParameter[Any]:
    """Untyped, so no cast is rendered: PostgreSQL infers the column's type for the ISO text."""
    return sqlalchemy.bindparam(name, type_=NullType())


def _aggregate(action: MetricAction, source: sqlalchemy.TableClause) -> ColumnElement[Any]:
    if action.column == "*":
        return sqlalchemy.func.count()
    aggregate: ColumnElement[Any] = getattr(sqlalchemy.func, action.aggregation)(
        source.c[action.column]
    )
    return aggregate


def _bucket(period: Period, moment: ColumnElement[Any], dialect: str) -> ColumnElement[Any]:
    """The first day of the row's day, ISO week (Monday) or month. The modifiers are our own
    constants, rendered inline so that the SELECT and GROUP BY expressions are identical."""
    if dialect == "postgresql":
        unit = {"per_day": "day", "per_week": "week", "per_month": "month"}[period]
        as_timestamp = sqlalchemy.cast(moment, sqlalchemy.TIMESTAMP)
        return sqlalchemy.func.date_trunc(sqlalchemy.literal_column(f"'{unit}'"), as_timestamp)
    modifiers = {
        "per_day": [],
        "per_week": ["'weekday 0'", "'-6 days'"],  # the next Sunday (or today), back to Monday
        "per_month": ["'start of month'"],
    }[period]
    return sqlalchemy.func.date(moment, *(sqlalchemy.literal_column(m) for m in modifiers))


# -- the output ---------------------------------------------------------------------------------


def _shape(
    action: MetricAction, raw: dict[str, Any], bounds: tuple[date, date] | None
) -> dict[str, Any]:
    """The database's rows under the metric's output columns, labelled by period."""
    rows = [_labelled(action, row, bounds) for row in raw["rows"]]
    shaped: dict[str, Any] = {
        "columns": output_columns(action),
        "rows": rows,
        "row_count": len(rows),
    }
    if raw.get("truncated"):
        shaped["truncated"] = True
    return shaped


def _labelled(action: MetricAction, row: list[Any], bounds: tuple[date, date] | None) -> list[Any]:
    period = action.period
    if period is None:
        return row
    if bounds is not None:
        return [*period_labels(period, *bounds), *row]
    # SQLite answers '2022-12-05', PostgreSQL a timestamp shown as '2022-12-05T00:00:00'.
    return [*bucket_labels(period, date.fromisoformat(str(row[0])[:10])), *row[1:]]

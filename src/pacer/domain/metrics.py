"""Metric jobs: one aggregate of one column, over a period, without writing SQL.

A metric names a table, a column and an aggregation; the ``metric`` action compiles it to SQL
for the target's dialect. Everything here is pure: the schema it is checked against is a
value (``TargetMetadata``) read by an adapter, and "today" is a date passed in, so period
boundaries and output labels are testable without a database or a clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal, get_args

from pydantic import Field, ValidationInfo, field_validator

from pacer.domain.errors import InvalidInput
from pacer.domain.fields import Integer, Number
from pacer.domain.models import Action, HttpSink

__all__ = [
    "AGGREGATIONS",
    "BUCKET_PERIODS",
    "FILTER_PERIODS",
    "PERIODS",
    "Aggregation",
    "ColumnInfo",
    "MetricAction",
    "Period",
    "TableInfo",
    "TargetMetadata",
    "bucket_labels",
    "check_metric",
    "label_columns",
    "output_columns",
    "period_labels",
    "period_range",
]

Aggregation = Literal["min", "max", "avg", "sum", "count"]
Period = Literal[
    "today",
    "yesterday",
    "last_7_days",
    "last_30_days",
    "previous_iso_week",
    "per_day",
    "per_week",
    "per_month",
]
AGGREGATIONS: tuple[Aggregation, ...] = get_args(Aggregation)
PERIODS: tuple[Period, ...] = get_args(Period)
#: Periods that keep the rows of one date range and give one value (per group).
FILTER_PERIODS: tuple[Period, ...] = PERIODS[:5]
#: Periods that split all rows into buckets and give one value per bucket (per group).
BUCKET_PERIODS: tuple[Period, ...] = PERIODS[5:]

#: Days in a ``last_N_days`` period, as_of included.
_LAST_DAYS = {"last_7_days": 7, "last_30_days": 30}
_LABELS: dict[Period, tuple[str, ...]] = {
    "today": ("date",),
    "yesterday": ("date",),
    "last_7_days": ("from", "to"),
    "last_30_days": ("from", "to"),
    "previous_iso_week": ("year", "week"),
    "per_day": ("date",),
    "per_week": ("year", "week"),
    "per_month": ("month",),
}
#: More grouping columns than this is a report, not a metric.
MAX_GROUP_BY = 5


# -- metadata -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnInfo:
    """One column as discovered: ``type`` is what the database reports (``REAL``, ``TEXT``)."""

    name: str
    type: str
    nullable: bool
    numeric: bool
    #: A date or timestamp, declared as such or (SQLite) ISO-8601 text.
    time: bool

    @property
    def aggregations(self) -> tuple[Aggregation, ...]:
        """Arithmetic only on numbers; anything can be counted."""
        return AGGREGATIONS if self.numeric else ("count",)


@dataclass(frozen=True)
class TableInfo:
    name: str
    columns: tuple[ColumnInfo, ...]

    @property
    def time_columns(self) -> list[str]:
        return [column.name for column in self.columns if column.time]

    def column(self, name: str) -> ColumnInfo | None:
        return next((column for column in self.columns if column.name == name), None)


@dataclass(frozen=True)
class TargetMetadata:
    name: str
    dialect: str
    tables: tuple[TableInfo, ...]

    def table(self, name: str) -> TableInfo | None:
        return next((table for table in self.tables if table.name == name), None)


# -- the action ---------------------------------------------------------------------------------


class MetricAction(Action):
    """An aggregate of one column of one table, optionally over a period and per group.

    Names are checked against the target's discovered schema (``check_metric``) before a job
    is stored, and quoted by the dialect when compiled: they never reach SQL as text.
    """

    kind: Literal["metric"] = "metric"
    target: str = Field(min_length=1)
    table: str = Field(min_length=1, max_length=200)
    aggregation: Aggregation
    #: A column name, or ``*`` (count only) for every row.
    column: str = Field(default="*", min_length=1, max_length=200, validate_default=True)
    time_column: str | None = Field(default=None, min_length=1, max_length=200)
    period: Period | None = None
    group_by: list[str] = Field(default_factory=list, max_length=MAX_GROUP_BY)
    #: The key of the aggregate in the output; see ``output_name``.
    value_name: str | None = Field(default=None, min_length=1, max_length=200)
    statement_timeout_s: Number = Field(default=30.0, gt=0, le=86_400)
    max_rows: Integer = Field(default=10_000, ge=1, le=1_000_000)
    sink: HttpSink | None = None

    @field_validator("column")
    @classmethod
    def _star_counts_only(cls, column: str, info: ValidationInfo) -> str:
        aggregation = info.data.get("aggregation")
        if column == "*" and aggregation not in (None, "count"):
            raise ValueError(f"{aggregation} needs a column; '*' goes with count only")
        return column

    @field_validator("period")
    @classmethod
    def _period_needs_time_column(cls, period: Period | None, info: ValidationInfo) -> Any:
        if period is not None and info.data.get("time_column") is None:
            raise ValueError(f"period {period!r} needs a time_column to measure it on")
        return period

    @field_validator("group_by", mode="before")
    @classmethod
    def _one_name_is_a_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @property
    def output_name(self) -> str:
        """``value_name``, else ``count``, ``average_<column>`` or ``<aggregation>_<column>``."""
        if self.value_name is not None:
            return self.value_name
        if self.aggregation == "count":
            return "count"
        prefix = "average" if self.aggregation == "avg" else self.aggregation
        return f"{prefix}_{self.column}"


def check_metric(spec: MetricAction, metadata: TargetMetadata) -> None:
    """Refuse a metric whose names the target does not have, naming the field and listing
    what exists, so the author can fix it from the message alone."""
    table = metadata.table(spec.table)
    if table is None:
        known = _listed(t.name for t in metadata.tables)
        reason = f"unknown table {spec.table!r} in target {metadata.name!r}; known: {known}"
        raise InvalidInput("action.table", reason)
    if spec.column != "*":
        column = _known_column(table, spec.column, "action.column")
        if spec.aggregation not in column.aggregations:
            reason = (
                f"{spec.aggregation} is not allowed on {column.type.lower()} column "
                f"{column.name!r}; allowed: {', '.join(column.aggregations)}"
            )
            raise InvalidInput("action.aggregation", reason)
    if spec.time_column is not None and spec.time_column not in table.time_columns:
        reason = (
            f"{spec.time_column!r} is not a time column of table {table.name!r}; "
            f"time columns: {_listed(table.time_columns)}"
        )
        raise InvalidInput("action.time_column", reason)
    _check_output_names(spec, table)


def _check_output_names(spec: MetricAction, table: TableInfo) -> None:
    for name in spec.group_by:
        _known_column(table, name, "action.group_by")
    if len(set(spec.group_by)) != len(spec.group_by):
        raise InvalidInput("action.group_by", "a column is named twice")
    taken = [*label_columns(spec.period), *spec.group_by]
    if spec.output_name in taken:
        reason = f"{spec.output_name!r} clashes with an output column; pick another value_name"
        raise InvalidInput("action.value_name", reason)


def _known_column(table: TableInfo, name: str, field: str) -> ColumnInfo:
    column = table.column(name)
    if column is None:
        known = _listed(c.name for c in table.columns)
        raise InvalidInput(
            field, f"unknown column {name!r} in table {table.name!r}; known: {known}"
        )
    return column


def _listed(names: Any) -> str:
    return ", ".join(names) or "none"


# -- periods ------------------------------------------------------------------------------------


def period_range(period: Period, as_of: date) -> tuple[date, date] | None:
    """``[start, end)`` of a filter period relative to ``as_of``; None for bucket periods."""
    if period == "today":
        return as_of, as_of + timedelta(days=1)
    if period == "yesterday":
        return as_of - timedelta(days=1), as_of
    if period in _LAST_DAYS:
        return as_of - timedelta(days=_LAST_DAYS[period] - 1), as_of + timedelta(days=1)
    if period == "previous_iso_week":
        monday = as_of - timedelta(days=as_of.weekday())
        return monday - timedelta(days=7), monday
    return None


def label_columns(period: Period | None) -> tuple[str, ...]:
    """The columns that say which period a value belongs to; none without a period."""
    return _LABELS[period] if period is not None else ()


def output_columns(spec: MetricAction) -> list[str]:
    """Period labels, then the group_by columns, then the value."""
    return [*label_columns(spec.period), *spec.group_by, spec.output_name]


def period_labels(period: Period, start: date, end: date) -> list[Any]:
    """The label values of a filter period's range ``[start, end)``."""
    if period in _LAST_DAYS:
        return [start.isoformat(), (end - timedelta(days=1)).isoformat()]
    if period == "previous_iso_week":
        return _iso_week(start)
    return [start.isoformat()]


def bucket_labels(period: Period, bucket: date) -> list[Any]:
    """The label values of a bucket, given the first day of its day, ISO week or month."""
    if period == "per_week":
        return _iso_week(bucket)
    if period == "per_month":
        return [f"{bucket.year:04d}-{bucket.month:02d}"]
    return [bucket.isoformat()]


def _iso_week(day: date) -> list[Any]:
    """ISO year and week: 2021-01-01 is in week 53 of 2020."""
    year, week, _ = day.isocalendar()
    return [year, week]

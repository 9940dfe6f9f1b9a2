"""Metric specs, their check against a schema, period ranges and output labels: pure code."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from pydantic import ValidationError

from pacer.domain.errors import InvalidInput
from pacer.domain.metrics import (
    AGGREGATIONS,
    PERIODS,
    ColumnInfo,
    MetricAction,
    TableInfo,
    TargetMetadata,
    bucket_labels,
    check_metric,
    label_columns,
    output_columns,
    period_labels,
    period_range,
)
from pacer.domain.models import JobSpec

REGISTRATION = TableInfo(
    "registration",
    (
        ColumnInfo("id", "INTEGER", nullable=False, numeric=True, time=False),
        ColumnInfo("timestamp", "TEXT", nullable=False, numeric=False, time=True),
        ColumnInfo("weight", "REAL", nullable=False, numeric=True, time=False),
        ColumnInfo("name", "TEXT", nullable=True, numeric=False, time=False),
    ),
)
METADATA = TargetMetadata("demo", "sqlite", (REGISTRATION, TableInfo("other", ())))


def metric(**fields: Any) -> MetricAction:
    values = {"kind": "metric", "target": "demo", "table": "registration", **fields}
    return MetricAction.model_validate(values)


def refusal(**fields: Any) -> InvalidInput:
    with pytest.raises(InvalidInput) as refused:
        check_metric(metric(**fields), METADATA)
    return refused.value


# -- the spec -----------------------------------------------------------------------------------


def test_constants_list_every_choice_in_order() -> None:
    """Aggregations and periods are listed in the documented order."""
    assert ("min", "max", "avg", "sum", "count") == AGGREGATIONS
    assert (
        "today",
        "yesterday",
        "last_7_days",
        "last_30_days",
        "previous_iso_week",
        "per_day",
        "per_week",
        "per_month",
    ) == PERIODS


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"aggregation": "avg", "column": "weight"}, "average_weight"),
        ({"aggregation": "count"}, "count"),
        ({"aggregation": "count", "column": "name"}, "count"),
        ({"aggregation": "max", "column": "weight"}, "max_weight"),
        ({"aggregation": "sum", "column": "weight", "value_name": "total"}, "total"),
    ],
)
def test_value_name_defaults_by_aggregation(fields: dict[str, Any], expected: str) -> None:
    """avg is ``average_<column>``, count is ``count``, others ``<agg>_<column>``."""
    assert expected == metric(**fields).output_name


def test_a_period_needs_a_time_column() -> None:
    """A period without a time column is refused, naming both."""
    with pytest.raises(ValidationError) as refused:
        metric(aggregation="count", period="today")
    error = refused.value.errors()[0]
    assert ("period",) == error["loc"]
    assert "time_column" in error["msg"]


def test_star_is_for_count_only() -> None:
    """``avg`` of ``*`` (or of no column) is refused on ``column``."""
    with pytest.raises(ValidationError) as refused:
        metric(aggregation="avg")
    assert ("column",) == refused.value.errors()[0]["loc"]


def test_group_by_accepts_one_name_or_a_list() -> None:
    """A single string is a list of one; more than five columns are refused."""
    assert ["name"] == metric(aggregation="count", group_by="name").group_by
    with pytest.raises(ValidationError):
        metric(aggregation="count", group_by=[f"c{i}" for i in range(6)])


def test_extra_keys_are_refused() -> None:
    """Unknown keys are errors (a typo must not silently drop a filter)."""
    with pytest.raises(ValidationError):
        metric(aggregation="count", where="1=1")


def test_job_spec_accepts_a_metric_action() -> None:
    """``metric`` is one of the job action kinds."""
    spec = JobSpec.model_validate(
        {
            "name": "m",
            "action": {"kind": "metric", "target": "demo", "table": "t", "aggregation": "count"},
        }
    )
    assert isinstance(spec.action, MetricAction)


# -- checked against a schema -------------------------------------------------------------------


def test_a_valid_metric_passes() -> None:
    """Known table, numeric column, time column and group: no error."""
    spec = metric(
        aggregation="avg",
        column="weight",
        time_column="timestamp",
        period="per_week",
        group_by=["name"],
    )
    check_metric(spec, METADATA)


def test_unknown_table_lists_the_known_ones() -> None:
    """An unknown table is refused on ``action.table``, listing the tables."""
    refused = refusal(table="nope", aggregation="count")
    assert "action.table" == refused.field
    assert "unknown table 'nope' in target 'demo'; known: registration, other" == refused.reason


def test_unknown_column_lists_the_known_ones() -> None:
    """An unknown column is refused on ``action.column``, listing the table's columns."""
    refused = refusal(aggregation="max", column="height")
    assert "action.column" == refused.field
    assert refused.reason.endswith("known: id, timestamp, weight, name")


def test_arithmetic_on_text_is_refused() -> None:
    """avg of a text column is refused on ``action.aggregation``, saying what is allowed."""
    refused = refusal(aggregation="avg", column="name")
    assert "action.aggregation" == refused.field
    assert "avg is not allowed on text column 'name'; allowed: count" == refused.reason


def test_counting_text_is_allowed() -> None:
    """Any column can be counted."""
    check_metric(metric(aggregation="count", column="name"), METADATA)


def test_time_column_must_hold_times() -> None:
    """A time column that is not one is refused, listing the time columns."""
    refused = refusal(aggregation="count", time_column="weight", period="today")
    assert "action.time_column" == refused.field
    assert refused.reason.endswith("time columns: timestamp")


def test_group_by_must_name_columns() -> None:
    """An unknown grouping column is refused on ``action.group_by``."""
    refused = refusal(aggregation="count", group_by=["name", "city"])
    assert ("action.group_by", True) == (refused.field, "'city'" in refused.reason)


def test_value_name_may_not_clash_with_a_label() -> None:
    """A value named like a label column would overwrite it in the posted objects."""
    refused = refusal(
        aggregation="count", time_column="timestamp", period="per_day", value_name="date"
    )
    assert "action.value_name" == refused.field


# -- periods ------------------------------------------------------------------------------------

THURSDAY = date(2022, 12, 8)


@pytest.mark.parametrize(
    ("period", "expected"),
    [
        ("today", (date(2022, 12, 8), date(2022, 12, 9))),
        ("yesterday", (date(2022, 12, 7), date(2022, 12, 8))),
        ("last_7_days", (date(2022, 12, 2), date(2022, 12, 9))),
        ("last_30_days", (date(2022, 11, 9), date(2022, 12, 9))),
        ("previous_iso_week", (date(2022, 11, 28), date(2022, 12, 5))),
        ("per_day", None),
        ("per_week", None),
        ("per_month", None),
    ],
)
def test_period_ranges_are_half_open(period: Any, expected: Any) -> None:
    """Filter periods are ``[start, end)`` around as_of; bucket periods have no range."""
    assert expected == period_range(period, THURSDAY)


def test_previous_iso_week_from_a_monday() -> None:
    """On a Monday the previous week is the seven days just ended."""
    assert (date(2022, 11, 28), date(2022, 12, 5)) == period_range(
        "previous_iso_week", date(2022, 12, 5)
    )


def test_previous_iso_week_across_the_year_boundary() -> None:
    """From 2021-01-04 the previous ISO week is 2020-W53, which starts on 2020-12-28."""
    start, end = period_range("previous_iso_week", date(2021, 1, 4)) or (None, None)
    assert (date(2020, 12, 28), date(2021, 1, 4)) == (start, end)
    assert [2020, 53] == period_labels("previous_iso_week", date(2020, 12, 28), date(2021, 1, 4))


@pytest.mark.parametrize(
    ("period", "columns", "labels"),
    [
        ("today", ("date",), ["2022-12-08"]),
        ("yesterday", ("date",), ["2022-12-07"]),
        ("last_7_days", ("from", "to"), ["2022-12-02", "2022-12-08"]),
        ("last_30_days", ("from", "to"), ["2022-11-09", "2022-12-08"]),
        ("previous_iso_week", ("year", "week"), [2022, 48]),
    ],
)
def test_filter_period_labels(period: Any, columns: tuple[str, ...], labels: list[Any]) -> None:
    """Each filter period is labelled by its columns; ``to`` is the inclusive last day."""
    start, end = period_range(period, THURSDAY) or (THURSDAY, THURSDAY)
    assert (columns, labels) == (label_columns(period), period_labels(period, start, end))


@pytest.mark.parametrize(
    ("period", "bucket", "columns", "labels"),
    [
        ("per_day", date(2022, 12, 8), ("date",), ["2022-12-08"]),
        ("per_week", date(2022, 12, 5), ("year", "week"), [2022, 49]),
        ("per_week", date(2021, 1, 1), ("year", "week"), [2020, 53]),
        ("per_month", date(2022, 12, 1), ("month",), ["2022-12"]),
    ],
)
def test_bucket_labels(
    period: Any, bucket: date, columns: tuple[str, ...], labels: list[Any]
) -> None:
    """Buckets are labelled by ISO date, ISO year and week, or ``YYYY-MM``."""
    assert (columns, labels) == (label_columns(period), bucket_labels(period, bucket))


def test_output_columns_are_labels_then_groups_then_value() -> None:
    """Period labels come first, then the group_by columns, then the value."""
    spec = metric(
        aggregation="sum",
        column="weight",
        time_column="timestamp",
        period="per_week",
        group_by="name",
    )
    assert ["year", "week", "name", "sum_weight"] == output_columns(spec)
    assert ["count"] == output_columns(metric(aggregation="count"))

"""Converting between table rows and domain records."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import RowMapping

from pacer.domain.models import Job, JobSpec, Run, RunStatus
from pacer.domain.validation import STORED


def aware(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; everything Pacer stores is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def utc(value: datetime) -> datetime:
    """Values bound for SQLite must already be UTC: its DateTime type drops the offset."""
    return value.astimezone(UTC)


def to_job(row: RowMapping) -> Job:
    created, updated = aware(row["created_at"]), aware(row["updated_at"])
    assert created is not None
    assert updated is not None
    # STORED: a job saved before a newer rule of the spec existed still loads.
    spec = JobSpec.model_validate({**row["spec"], "enabled": row["enabled"]}, context=STORED)
    return Job(
        id=row["id"],
        spec=spec,
        source=row["source"],
        next_fire_at=aware(row["next_fire_at"]),
        created_at=created,
        updated_at=updated,
        removed_at=aware(row["removed_at"]),
    )


RUN_FIELDS = [
    "id",
    "job_id",
    "query_id",
    "action",
    "parameters",
    "fire_time",
    "attempt",
    "max_attempts",
    "retry",
    "timeout_s",
    "priority",
    "worker",
    "result",
    "error",
    "idempotency_key",
]
RUN_TIMES = ["scheduled_at", "created_at", "started_at", "finished_at", "lease_until"]


def to_run(row: RowMapping) -> Run:
    values: dict[str, Any] = {name: row[name] for name in RUN_FIELDS}
    values.update({name: aware(row[name]) for name in RUN_TIMES})
    values["fire_time"] = aware(values["fire_time"])
    return Run(status=RunStatus(row["status"]), **values)


def run_values(run: Run) -> dict[str, Any]:
    values: dict[str, Any] = {name: getattr(run, name) for name in RUN_FIELDS}
    for name in RUN_TIMES:
        value = getattr(run, name)
        values[name] = utc(value) if value is not None else None
    if values["fire_time"] is not None:
        values["fire_time"] = utc(values["fire_time"])
    values["status"] = run.status.value
    return values

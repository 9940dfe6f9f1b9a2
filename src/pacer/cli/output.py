"""Printing records: readable rich tables for people, ``--json`` for scripts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from pacer.domain.models import Job, Run


def job_record(job: Job) -> dict[str, Any]:
    """A job as ``jobs list`` and ``show`` print it; like the API, no next run while it is
    disabled (paused, or removed from the jobs folder: ``removed_at``)."""
    return {
        "id": job.id,
        "name": job.name,
        "enabled": job.spec.enabled,
        "removed_at": job.removed_at,
        "action": job.spec.action.kind,
        "schedule": job.spec.schedule.model_dump(mode="json", exclude_none=True)
        if job.spec.schedule
        else None,
        "next_run": job.next_fire_at if job.spec.enabled else None,
        "source": job.source,
    }


def run_record(run: Run) -> dict[str, Any]:
    record = asdict(run) if is_dataclass(run) else dict(run)
    record["status"] = run.status.value
    return record


def emit(
    records: Sequence[dict[str, Any]], columns: Sequence[str], as_json: bool, title: str
) -> None:
    if as_json:
        typer.echo(json.dumps(list(records), default=_jsonable, indent=2))
        return
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for record in records:
        table.add_row(*(_cell(record.get(column)) for column in columns))
    Console().print(table)


def emit_one(record: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(record, default=_jsonable, indent=2))
        return
    table = Table(show_header=False)
    for key, value in record.items():
        table.add_row(key, _cell(value, width=2000))
    Console().print(table)


def _cell(value: Any, width: int = 60) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return _time(value)
    if isinstance(value, float):
        return f"{value:.2f}"  # tables are for people; --json keeps full precision
    text = value if isinstance(value, str) else json.dumps(value, default=_jsonable)
    return text if len(text) <= width else text[: width - 1] + "…"


def _time(value: datetime) -> str:
    """Tables show every time in UTC and say so; a time without a zone is shown as it is,
    since converting it would guess one."""
    if value.tzinfo is None:
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)

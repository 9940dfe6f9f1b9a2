"""``pacer jobs …``, ``pacer runs …``, ``pacer tasks add``: thin commands over the services."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import typer
from pydantic import ValidationError

from pacer.api.schemas import TaskIn
from pacer.bootstrap import Container, build
from pacer.cli.errors import invalid
from pacer.cli.output import emit, emit_one, job_record, run_record
from pacer.domain.errors import InvalidInput, NotFound
from pacer.domain.models import RunStatus
from pacer.domain.moments import in_range
from pacer.ports import RunFilter
from pacer.settings import Settings

T = TypeVar("T")

jobs_app = typer.Typer(
    help="Jobs: list, show, add, pause, resume, trigger, delete.", no_args_is_help=True
)
runs_app = typer.Typer(help="Runs: list, show, retry, cancel.", no_args_is_help=True)
tasks_app = typer.Typer(help="One-off tasks.", no_args_is_help=True)

DatabaseUrl = typer.Option(
    None, "--database-url", envvar="PACER_DATABASE_URL", help="SQLAlchemy URL of the store."
)
Config = typer.Option(
    None,
    "--config",
    help="Configuration file (targets, defaults); without it, pacer.toml here if there is one.",
)
Json = typer.Option(False, "--json", help="Print JSON instead of a table.")


def _zoned(param: typer.CallbackParam, value: datetime | None) -> datetime | None:
    """Times given to the CLI carry their zone, as the HTTP API requires: a naive time would
    be read in some zone the user did not name (this machine's, or the server's)."""
    if value is not None and value.tzinfo is None:
        raise typer.BadParameter(
            f"{value.isoformat()} has no time zone: add Z for UTC or an offset such as +01:00",
            param_hint=param.opts[0],
        )
    if value is not None:
        try:
            in_range(value)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint=param.opts[0]) from None
    return value


ZONED = "With its zone: 2030-01-01T09:00:00Z or 2030-01-01T10:00:00+01:00."
JOB_COLUMNS = ["name", "enabled", "removed_at", "action", "schedule", "next_run", "id"]
RUN_COLUMNS = [
    "id",
    "job_id",
    "status",
    "attempt",
    "scheduled_at",
    "finished_at",
    "query_id",
    "error",
]


def load_settings(
    database_url: str | None, jobs_dir: Path | None, config: Path | None, **extra: Any
) -> Settings:
    """Options over ``PACER_*`` variables over the configuration file. A ``--config`` that is
    not there is a mistake; the default ``pacer.toml`` is optional."""
    if config is not None and not config.is_file():
        raise InvalidInput("--config", f"{config} is not a file")
    overrides: dict[str, Any] = {k: v for k, v in extra.items() if v is not None}
    if config is not None:
        overrides["config_file"] = config
    if database_url:
        overrides["database_url"] = database_url
    if jobs_dir:
        overrides["jobs_dir"] = jobs_dir
    try:
        return Settings(**overrides).with_file()
    except ValidationError as exc:
        raise invalid(exc) from None


def _with(
    database_url: str | None, config: Path | None, use: Callable[[Container], Awaitable[T]]
) -> T:
    settings = load_settings(database_url, None, config)

    async def go() -> T:
        container = await build(settings, sync_jobs=False)
        try:
            return await use(container)
        finally:
            await container.aclose()

    return asyncio.run(go())


@jobs_app.command("list")
def jobs_list(
    database_url: str | None = DatabaseUrl, config: Path | None = Config, as_json: bool = Json
) -> None:
    """All jobs with their schedule and next run."""
    jobs = _with(database_url, config, lambda c: c.store.list_jobs())
    emit([job_record(j) for j in jobs], JOB_COLUMNS, as_json, "jobs")


@jobs_app.command("show")
def jobs_show(
    job: str,
    database_url: str | None = DatabaseUrl,
    config: Path | None = Config,
    as_json: bool = Json,
) -> None:
    """One job (by id or name), with its full spec."""
    found = _with(database_url, config, lambda c: c.jobs.get(job))
    emit_one({**job_record(found), "spec": found.spec.model_dump(mode="json")}, as_json)


@jobs_app.command("add")
def jobs_add(
    file: Path,
    database_url: str | None = DatabaseUrl,
    config: Path | None = Config,
    as_json: bool = Json,
) -> None:
    """Add the jobs of a JSON, TOML or YAML file: one job spec, or a ``jobs`` list.

    Every job is checked (spec, action) before any is written, and all are written in one
    transaction: a name already taken adds none.
    """
    from pacer.definitions import declarations, holds_list, read_data, refuse_duplicates, validate

    data = read_data(file)
    raw = declarations(data, file.name)
    if not raw:
        raise InvalidInput(file.name, "holds no jobs (an empty 'jobs' list)")
    specs = refuse_duplicates([(validate(item, file.name), file.name) for item in raw])

    created = _with(database_url, config, lambda c: c.jobs.create_all(specs, source="cli"))
    if not holds_list(data):
        emit_one(job_record(created[0]), as_json)
    else:
        emit([job_record(job) for job in created], JOB_COLUMNS, as_json, "jobs added")


def _job_action(name: str, doc: str, call: Callable[[Container, str], Awaitable[Any]]) -> None:
    def command(
        job: str,
        database_url: str | None = DatabaseUrl,
        config: Path | None = Config,
        as_json: bool = Json,
    ) -> None:
        result = _with(database_url, config, lambda c: call(c, job))
        if result is None:
            typer.echo(f"{name}: {job}")
        elif hasattr(result, "spec"):
            emit_one(job_record(result), as_json)
        else:
            emit_one(run_record(result), as_json)

    command.__doc__ = doc
    jobs_app.command(name)(command)


_job_action("pause", "Stop scheduling a job (its history stays).", lambda c, j: c.jobs.pause(j))
_job_action("resume", "Schedule a paused job again, from now.", lambda c, j: c.jobs.resume(j))
_job_action("trigger", "Run a job now, outside its schedule.", lambda c, j: c.jobs.trigger(j))
_job_action(
    "delete",
    "Delete a job and its queued runs (finished runs stay).",
    lambda c, j: c.jobs.delete(j),
)


@runs_app.command("list")
def runs_list(
    job: str | None = typer.Option(
        None, help="Job id or name (the id of a deleted job finds its finished runs)."
    ),
    status: list[RunStatus] | None = typer.Option(None, help="Repeatable."),
    query_id: str | None = typer.Option(None, "--query-id"),
    since: datetime | None = typer.Option(
        None, callback=_zoned, help=f"Runs created at or after this time. {ZONED}"
    ),
    until: datetime | None = typer.Option(
        None, callback=_zoned, help=f"Runs created before this time. {ZONED}"
    ),
    limit: int = typer.Option(50, min=1, max=10_000),
    database_url: str | None = DatabaseUrl,
    config: Path | None = Config,
    as_json: bool = Json,
) -> None:
    """The newest runs first, filtered."""

    async def use(c: Container) -> list[Any]:
        flt = RunFilter(
            job_id=await _job_id(c, job),
            status=status or None,
            query_id=query_id,
            since=since,
            until=until,
        )
        return await c.store.list_runs(flt, limit)

    runs = _with(database_url, config, use)
    records = [run_record(r) for r in runs]
    if not as_json:
        records = [{**r, "id": r["id"][:SHORT_ID], "job_id": _short(r["job_id"])} for r in records]
    emit(records, RUN_COLUMNS, as_json, "runs")


#: Characters of a run id a table shows: enough to tell runs apart, and ``runs show`` (retry,
#: cancel) takes any unambiguous prefix, as git and docker do with theirs. A table of whole
#: ids did not fit a terminal, and rich shortened them with an ellipsis (``ee5f37…``), which
#: could not be pasted anywhere.
SHORT_ID = 8
#: A whole id's length (a UUID's text).
ID_LENGTH = 36
RunId = typer.Argument(..., help="A run id, or enough of its start to name one run.")


def _short(value: str | None) -> str | None:
    return None if value is None else value[:SHORT_ID]


async def _run_id(c: Container, given: str) -> str:
    """A run's id from its id or an unambiguous prefix of it."""
    if len(given) >= ID_LENGTH:
        return given
    found = await c.store.run_ids_starting(given, 3)
    if not found:
        raise NotFound("run", given)
    if len(found) > 1:
        some = ", ".join(found[:2]) + (", …" if len(found) > 2 else "")
        raise InvalidInput(
            "run", f"{given!r} starts more than one run id ({some}); give more of it"
        )
    return found[0]


async def _job_id(c: Container, job: str | None) -> str | None:
    """A job's id from its id or name; an unknown value is kept as an id, as the HTTP API
    does (``api/runs.py``), since the finished runs of a deleted job keep its id."""
    if job is None:
        return None
    try:
        return (await c.jobs.get(job)).id
    except NotFound:
        return job


@runs_app.command("show")
def runs_show(
    run_id: str = RunId,
    database_url: str | None = DatabaseUrl,
    config: Path | None = Config,
    as_json: bool = Json,
) -> None:
    """One run with its result and error."""

    async def use(c: Container) -> Any:
        found = await _run_id(c, run_id)
        run = await c.store.get_run(found)
        if run is None:
            raise NotFound("run", run_id)
        return run

    emit_one(run_record(_with(database_url, config, use)), as_json)


@runs_app.command("retry")
def runs_retry(
    run_id: str = RunId,
    database_url: str | None = DatabaseUrl,
    config: Path | None = Config,
    as_json: bool = Json,
) -> None:
    """Queue a finished run again, with a fresh allowance of attempts."""

    async def use(c: Container) -> Any:
        return await c.store.retry_run(await _run_id(c, run_id), c.clock.now())

    emit_one(run_record(_with(database_url, config, use)), as_json)


@runs_app.command("cancel")
def runs_cancel(
    run_id: str = RunId,
    database_url: str | None = DatabaseUrl,
    config: Path | None = Config,
    as_json: bool = Json,
) -> None:
    """Cancel a queued or running run."""

    async def use(c: Container) -> Any:
        return await c.store.cancel_run(await _run_id(c, run_id), c.clock.now())

    emit_one(run_record(_with(database_url, config, use)), as_json)


def _json_object(text: str, name: str, example: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise InvalidInput(name, f"not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise InvalidInput(name, f"expected a JSON object such as {example}")
    return value


@tasks_app.command("add")
def tasks_add(
    action: str = typer.Argument(
        ..., help='The action as JSON, e.g. \'{"kind": "http", "url": "…"}\''
    ),
    due: datetime | None = typer.Option(
        None, callback=_zoned, help=f"When to run (default: now). {ZONED}"
    ),
    idempotency_key: str | None = typer.Option(None, "--idempotency-key"),
    parameters: str | None = typer.Option(
        None, help='The run\'s parameters as a JSON object, e.g. \'{"region": "eu"}\'.'
    ),
    retry: str | None = typer.Option(
        None, help='The retry policy as JSON, e.g. \'{"max_attempts": 5, "backoff_s": 1}\'.'
    ),
    timeout: float | None = typer.Option(None, help="Seconds one attempt may take (300)."),
    priority: int | None = typer.Option(None, help="-1000 to 1000, higher first (0)."),
    database_url: str | None = DatabaseUrl,
    config: Path | None = Config,
    as_json: bool = Json,
) -> None:
    """Queue a one-off task: the same request as ``POST /api/v1/tasks``, checked by the same
    rules."""
    given: dict[str, Any] = {"action": _json_object(action, "action", '{"kind": "http", …}')}
    if due is not None:
        given["due_at"] = due
    if parameters is not None:
        given["parameters"] = _json_object(parameters, "--parameters", '{"region": "eu"}')
    if retry is not None:
        given["retry"] = _json_object(retry, "--retry", '{"max_attempts": 5}')
    if timeout is not None:
        given["timeout_s"] = timeout
    if priority is not None:
        given["priority"] = priority
    try:
        task = TaskIn.model_validate(given)
    except ValidationError as exc:
        raise invalid(exc) from None
    request = task.request(idempotency_key)
    run, _ = _with(database_url, config, lambda c: c.tasks.submit(request))
    emit_one(run_record(run), as_json)

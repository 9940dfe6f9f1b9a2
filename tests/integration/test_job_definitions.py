"""Jobs from decorators and files; bad definitions are refused whole, naming the field."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pacer.bootstrap import Container, build
from pacer.cli.main import app
from pacer.definitions import DECLARED, job, load_jobs_dir
from pacer.domain.errors import Conflict, InvalidInput
from pacer.domain.models import Job, JobSpec
from pacer.ports import JobWrites, RunFilter
from pacer.services.jobs import DEFINITIONS
from support import fast_settings

GOOD = 'name = "good"\nschedule = { cron = "0 13 * * *", tz = "Europe/Amsterdam" }\naction = { kind = "python", function = "pacer.testing:noop" }\n'


def _write(folder: Path, name: str, text: str) -> None:
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(text)


def test_decorator_declares_a_python_job() -> None:
    """``@pacer.job`` registers a JobSpec with a cron schedule in its zone, function unchanged."""

    @job(cron="0 13 * * *", tz="Europe/Amsterdam", name="decorated-example")
    def example() -> int:
        return 1

    spec = DECLARED.pop("decorated-example")
    assert 1 == example()
    assert ("0 13 * * *", "Europe/Amsterdam") == (spec.schedule.cron, spec.schedule.tz)  # type: ignore[union-attr]
    assert spec.action.kind == "python"


def test_toml_and_yaml_files_are_loaded(tmp_path: Path) -> None:
    """A folder may hold TOML and YAML job files, one job each or a ``jobs`` list."""
    _write(tmp_path, "a.toml", GOOD)
    _write(
        tmp_path,
        "b.yaml",
        "jobs:\n  - name: y1\n    schedule: {cron: '@every 2m'}\n    action: {kind: python, function: 'pacer.testing:noop'}\n",
    )
    assert ["good", "y1"] == [spec.name for spec in load_jobs_dir(tmp_path)]


@pytest.mark.parametrize(
    ("schedule", "field"),
    [
        ('{ cron = "61 * * * *" }', "schedule.cron"),
        ('{ cron = "0 13 * * *", tz = "Mars/Olympus" }', "schedule.tz"),
        ("{ interval_s = 0.5 }", "schedule.interval_s"),
        ('{ cron = "@every 0.5s" }', "schedule.cron"),
    ],
)
def test_invalid_schedule_in_a_file_names_file_and_field(
    tmp_path: Path, schedule: str, field: str
) -> None:
    """An invalid cron or time zone is refused with the file and the field named."""
    _write(
        tmp_path,
        "bad.toml",
        GOOD.replace('{ cron = "0 13 * * *", tz = "Europe/Amsterdam" }', schedule),
    )
    with pytest.raises(InvalidInput) as caught:
        load_jobs_dir(tmp_path)
    assert caught.value.field.startswith(f"bad.toml: {field}")


BAD_SPECS = [
    (
        {
            "schedule": {"at": "2020-01-01T00:00:00Z"},
            "action": {"kind": "python", "function": "pacer.testing:noop"},
        },
        "schedule.at",
    ),
    ({"action": {"kind": "sql", "target": "nowhere", "statement": "SELECT 1"}}, "action.target"),
    ({"action": {"kind": "http", "url": "ftp://example.com/x"}}, "action.url"),
]


def test_a_job_file_naming_a_job_like_an_id_is_refused(tmp_path: Path) -> None:
    """A job file whose name has the shape of a job id is refused, naming file and field."""
    _write(tmp_path, "a.toml", GOOD.replace('"good"', '"0b9c3a1e-5f2d-4c6b-9a8e-7d1f2e3c4b5a"'))
    with pytest.raises(InvalidInput) as caught:
        load_jobs_dir(tmp_path)
    assert caught.value.field.endswith(": name")
    assert "shape of a job id" in caught.value.reason


@pytest.mark.parametrize(("body", "field"), BAD_SPECS)
async def test_bad_jobs_are_refused_and_nothing_is_written(
    container: Container, body: dict, field: str
) -> None:
    """A stale one-off, an unknown target or a bad URL: refused naming the field; no job stored."""
    spec = JobSpec.model_validate({"name": "bad", **body})
    with pytest.raises(InvalidInput) as caught:
        await container.jobs.create(spec)
    assert field == caught.value.field
    assert [] == await container.store.list_jobs()


async def test_a_writing_statement_in_a_read_only_job_is_refused(
    database_url: str, tmp_path: Path
) -> None:
    """A DELETE in a read-only sql job is refused; the job is not stored."""
    db = tmp_path / "target.db"
    settings = fast_settings(database_url, targets={"t": f"sqlite:///{db}"})
    container = await build(settings)
    try:
        spec = JobSpec.model_validate(
            {"name": "w", "action": {"kind": "sql", "target": "t", "statement": "DELETE FROM x"}}
        )
        with pytest.raises(InvalidInput) as caught:
            await container.jobs.create(spec)
        assert "action.statement" == caught.value.field
        assert [] == await container.store.list_jobs()
    finally:
        await container.aclose()


async def test_sync_refuses_all_when_one_definition_is_bad(container: Container) -> None:
    """Syncing definitions validates every one before writing any: all or nothing."""
    good = JobSpec.model_validate(
        {"name": "ok", "action": {"kind": "python", "function": "pacer.testing:noop"}}
    )
    stale = JobSpec.model_validate(
        {
            "name": "stale",
            "schedule": {"at": (datetime.now(UTC) - timedelta(days=2)).isoformat()},
            "action": {"kind": "python", "function": "pacer.testing:noop"},
        }
    )
    with pytest.raises(InvalidInput):
        await container.jobs.sync([good, stale], source="definitions")
    assert [] == await container.store.list_jobs()


async def test_pause_resume_and_trigger(container: Container) -> None:
    """A paused job is not due; resume restarts its schedule from now; trigger runs it at once."""
    spec = JobSpec.model_validate(
        {
            "name": "p",
            "schedule": {"cron": "@every 1h"},
            "action": {"kind": "python", "function": "pacer.testing:noop"},
        }
    )
    created = await container.jobs.create(spec)
    paused = await container.jobs.pause(created.id)
    far = datetime.now(UTC) + timedelta(days=1)
    assert [] == await container.store.due_jobs(far, 10)
    resumed = await container.jobs.resume("p")
    assert resumed.spec.enabled
    assert [created.id] == [j.id for j in await container.store.due_jobs(far, 10)]
    run = await container.jobs.trigger("p")
    stored = await container.store.get_run(run.id)
    assert stored is not None
    assert (created.id, None) == (stored.job_id, stored.fire_time)
    assert not paused.spec.enabled


@pytest.fixture
def declared() -> Iterator[None]:
    """Jobs declared by a test's modules are forgotten after it (``build`` adds every one)."""
    before = dict(DECLARED)
    yield
    DECLARED.clear()
    DECLARED.update(before)


PY_JOB = 'import pacer\n\n\n@pacer.job(every="5m")\ndef same() -> None: ...\n'
TOML_SAME = GOOD.replace('name = "good"', 'name = "same"')
YAML_SAME = "  - name: same\n    action: {kind: python, function: 'pacer.testing:noop'}\n"


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            {"a.py": PY_JOB, "b.py": PY_JOB},
            "b.py: name: job 'same' is defined in both a.py and b.py",
        ),
        ({"a.py": PY_JOB, "c.toml": TOML_SAME}, "in both a.py and c.toml"),
        ({"d.yaml": f"jobs:\n{YAML_SAME}{YAML_SAME}"}, "job 'same' is defined twice in d.yaml"),
    ],
)
def test_a_name_defined_twice_is_refused(
    tmp_path: Path, declared: None, files: dict[str, str], message: str
) -> None:
    """Two definitions of one job name (two modules, a module and a file, or one file) are
    refused naming where; neither is silently dropped."""
    for name, text in files.items():
        _write(tmp_path, name, text)
    with pytest.raises(InvalidInput) as caught:
        load_jobs_dir(tmp_path)
    assert message in str(caught.value)


def test_the_scheduler_refuses_to_start_with_a_name_defined_twice(
    tmp_path: Path, declared: None, sqlite_url: str
) -> None:
    """``pacer scheduler`` (and ``up``) stop at start with an error line naming both files."""
    jobs = tmp_path / "jobs"
    _write(jobs, "a.py", PY_JOB)
    _write(jobs, "b.toml", TOML_SAME)
    result = CliRunner().invoke(
        app, ["scheduler", "--jobs-dir", str(jobs), "--database-url", sqlite_url]
    )
    assert 2 == result.exit_code, result.output
    assert "job 'same' is defined in both a.py and b.toml" in result.output


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        ({"cron": "0 * * * *", "every": "5m"}, "give one of cron=, every= or at="),
        ({"cron": "0 * * * *", "at": datetime(2030, 1, 1, tzinfo=UTC)}, "exactly one of"),
        ({"start": datetime(2030, 1, 1, tzinfo=UTC)}, "start= needs a schedule"),
        ({"jitter_s": 5}, "jitter_s= needs a schedule"),
    ],
)
def test_decorator_arguments_that_would_be_dropped_are_refused(
    declared: None, arguments: dict[str, object], reason: str
) -> None:
    """``every=`` beside ``cron=``, or bounds and jitter without a schedule, are refused like
    ``cron=`` beside ``at=``, instead of one silently replacing or losing the other."""
    with pytest.raises(InvalidInput, match=reason):

        @job(name="conflicted", **arguments)  # type: ignore[arg-type]
        def conflicted() -> None: ...

    assert "conflicted" not in DECLARED


def _every_hour(name: str) -> str:
    return GOOD.replace('"good"', f'"{name}"').replace(
        '{ cron = "0 13 * * *", tz = "Europe/Amsterdam" }', '{ cron = "@every 1h" }'
    )


def _state(job: Job) -> tuple[object, ...]:
    """What a sync may change of a job (``updated_at`` aside, which every sync sets)."""
    return (job.id, job.spec, job.source, job.next_fire_at, job.removed_at)


async def _jobs_after_start(database_url: str, jobs_dir: Path | None) -> dict[str, Job]:
    """The stored jobs by name after a start (``pacer up`` or ``scheduler``) with this folder,
    but for those that other tests' modules declared (``build`` writes them too)."""
    container = await build(fast_settings(database_url, jobs_dir=jobs_dir))
    try:
        stored = await container.store.list_jobs()
        return {job.name: job for job in stored if job.name not in DECLARED}
    finally:
        await container.aclose()


async def test_a_job_removed_from_the_folder_is_stopped_and_keeps_its_history(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A start with a jobs folder stops (disables, marks removed) a job whose file left it,
    logging one line; its id and runs stay, jobs made through the API or ``jobs add`` are left
    alone, a start without a folder stops nothing, and the file's return revives the job."""
    folder = tmp_path / "jobs"
    _write(folder, "kept.toml", _every_hour("kept"))
    _write(folder, "gone.toml", _every_hour("gone"))
    container = await build(fast_settings(database_url, jobs_dir=folder))
    try:
        spec = JobSpec.model_validate(
            {"name": "mine", "action": {"kind": "http", "url": "http://127.0.0.1:9/"}}
        )
        await container.jobs.create(spec, source="api")
        await container.jobs.create(spec.model_copy(update={"name": "added"}), source="cli")
        run = await container.jobs.trigger("gone")
    finally:
        await container.aclose()
    before = await _jobs_after_start(database_url, folder)
    (folder / "gone.toml").unlink()
    with caplog.at_level(logging.INFO, logger="pacer"):
        without_folder = await _jobs_after_start(database_url, None)
        after = await _jobs_after_start(database_url, folder)
    stopped = [r.getMessage() for r in caplog.records if "stopped job" in r.getMessage()]
    assert [f"stopped job 'gone' (id {before['gone'].id})"] == [m.split(":")[0] for m in stopped]
    assert {name: _state(job) for name, job in before.items()} == {
        name: _state(job) for name, job in without_folder.items()
    }
    gone = after.pop("gone")
    assert (before["gone"].id, False, True) == (gone.id, gone.spec.enabled, bool(gone.removed_at))
    assert {name: _state(job) for name, job in before.items() if name != "gone"} == {
        name: _state(job) for name, job in after.items()
    }
    container = await build(fast_settings(database_url))
    try:
        history = await container.store.list_runs(RunFilter(job_id=gone.id), 10)
        assert [run.id] == [r.id for r in history]
        far = datetime.now(UTC) + timedelta(days=1)
        assert ["kept"] == [job.name for job in await container.store.due_jobs(far, 10)]
    finally:
        await container.aclose()
    _write(folder, "gone.toml", _every_hour("gone"))
    back = (await _jobs_after_start(database_url, folder))["gone"]
    assert (gone.id, True, None) == (back.id, back.spec.enabled, back.removed_at)
    assert back.next_fire_at is not None


async def test_a_definition_with_the_name_of_an_api_job_is_refused(
    database_url: str, tmp_path: Path
) -> None:
    """A jobs-folder definition named like a job made through the API stops the start with a
    ``Conflict`` on ``name``; the API job is not taken over, and nothing else is written."""
    folder = tmp_path / "jobs"
    _write(folder, "a.toml", _every_hour("first"))
    _write(folder, "b.toml", _every_hour("shared"))
    container = await build(fast_settings(database_url))
    try:
        spec = JobSpec.model_validate(
            {"name": "shared", "action": {"kind": "http", "url": "http://127.0.0.1:9/"}}
        )
        mine = await container.jobs.create(spec, source="api")
    finally:
        await container.aclose()
    with pytest.raises(Conflict) as refused:
        await _jobs_after_start(database_url, folder)
    assert "name" == refused.value.field
    assert "created through api" in refused.value.reason
    assert {"shared": mine} == await _jobs_after_start(database_url, None)


async def test_a_job_deleted_while_a_sync_holds_it_stays_deleted(container: Container) -> None:
    """A DELETE that comes after a start's sync read a job, before it wrote it, takes effect
    after the sync: the job stays deleted, and is not brought back under a new id (the sync
    read, then upserted by name)."""
    spec = JobSpec.model_validate(
        {"name": "defined", "action": {"kind": "python", "function": "pacer.testing:noop"}}
    )
    (job,) = await container.jobs.sync([spec], DEFINITIONS)
    store = container.store
    sync_jobs = store.sync_jobs
    deleting: list[asyncio.Task[bool]] = []

    async def delete_between(
        names: Sequence[str], source: str, plan: Callable[[Sequence[Job]], JobWrites], now: datetime
    ) -> list[Job]:
        def plan_then_delete(existing: Sequence[Job]) -> JobWrites:
            deleting.append(asyncio.create_task(store.delete_job(job.id, now)))
            return plan(existing)

        return await sync_jobs(names, source, plan_then_delete, now)

    store.sync_jobs = delete_between  # type: ignore[method-assign]
    (synced,) = await container.jobs.sync([spec], DEFINITIONS)
    assert (True, job.id) == (await deleting[0], synced.id)
    assert [] == await store.list_jobs()

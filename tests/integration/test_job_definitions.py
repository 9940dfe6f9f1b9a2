"""Jobs from decorators and files; bad definitions are refused whole, naming the field."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pacer.bootstrap import Container, build
from pacer.cli.main import app
from pacer.definitions import DECLARED, job, load_jobs_dir
from pacer.domain.errors import InvalidInput
from pacer.domain.models import JobSpec
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

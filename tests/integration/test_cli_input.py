"""The CLI with a user's mistakes: each is an ``error:`` line and exit code 2, never a traceback,
and nothing it prints gives a database password away."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from pacer.cli import main
from pacer.cli.commands import load_settings
from pacer.cli.main import app

runner = CliRunner()


def test_up_masks_the_database_password(monkeypatch: pytest.MonkeyPatch) -> None:
    """``pacer up`` names its store without the password in it."""
    started: list[Any] = []
    monkeypatch.setattr(main, "_run", lambda *args, **kwargs: started.append(args))
    result = runner.invoke(
        app, ["up", "--database-url", "postgresql+psycopg://postgres:s3cretpw@127.0.0.1/db"]
    )
    assert (0, 1) == (result.exit_code, len(started)), result.output
    assert "s3cretpw" not in result.output
    assert "postgresql+psycopg://postgres:***@127.0.0.1/db" in result.output


def _refused(*args: str, env: dict[str, str] | None = None) -> str:
    """Runs ``pacer *args``; asserts a clean refusal (exit 2, no traceback) and returns it."""
    result = runner.invoke(app, list(args), env=env)
    assert 2 == result.exit_code, (result.output, result.exception)
    assert "Traceback" not in result.output
    assert result.output.startswith("error: ")
    return result.output


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder without a ``pacer.toml``."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_store_that_cannot_be_used_is_an_error_line(folder: Path) -> None:
    """A URL that does not parse, or an SQLite file in a missing folder, is one ``error:``
    line naming the store, never a driver's traceback; no password is echoed."""
    assert "not a valid SQLAlchemy URL" in _refused("jobs", "list", "--database-url", "bogus")
    shown = _refused(
        "jobs", "list", "--database-url", "postgresql+psycopg://u:s3cretpw@host:port/db"
    )
    assert "s3cretpw" not in shown
    missing = folder / "no" / "such" / "folder"
    assert f"the folder {missing} does not exist" in _refused(
        "db", "upgrade", "--database-url", f"sqlite:///{missing}/pacer.db"
    )


def test_a_missing_postgresql_database_is_an_error_line(pg_url: str) -> None:
    """A PostgreSQL database that does not exist is reported as such, password masked (after
    the start-up's retries, as for a server that is restarting)."""
    missing = pg_url.replace(
        "postgresql+psycopg://postgres@", "postgresql+psycopg://postgres:s3cretpw@"
    )
    missing = missing.rsplit("/", 1)[0] + "/pacer_no_such_database"
    shown = _refused("db", "upgrade", "--database-url", missing)
    assert "does not exist" in shown
    assert "s3cretpw" not in shown


def test_an_unknown_schema_revision_is_an_error_line(folder: Path) -> None:
    """A store migrated by a newer Pacer (a revision this code does not know) is refused by
    ``db upgrade`` with the revision named."""
    url = f"sqlite:///{folder}/pacer.db"
    assert 0 == runner.invoke(app, ["db", "upgrade", "--database-url", url]).exit_code
    with sqlite3.connect(folder / "pacer.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'f00dfeed0001'")
    conn.close()
    assert "f00dfeed0001" in _refused("db", "upgrade", "--database-url", url)


def test_configuration_mistakes_are_error_lines(folder: Path, sqlite_url: str) -> None:
    """A malformed or missing ``--config``, a missing jobs folder and out-of-range settings
    (from options or the environment) are ``field: reason`` lines without pydantic's links."""
    bad = folder / "bad.toml"
    bad.write_text("[pacer\n")
    assert f"error: {bad}: not valid TOML" in _refused("jobs", "list", "--config", str(bad))
    assert "--config: /nonexistent.toml is not a file" in _refused(
        "jobs", "list", "--config", "/nonexistent.toml"
    )
    assert "jobs_dir: /nonexistent is not a folder" in _refused(
        "scheduler", "--jobs-dir", "/nonexistent", "--database-url", sqlite_url
    )
    from_env = _refused("jobs", "list", env={"PACER_CONCURRENCY": "0"})
    assert "error: concurrency: Input should be greater than or equal to 1\n" == from_env
    from_option = _refused("up", "--concurrency", "0", "--database-url", sqlite_url)
    assert from_option.startswith("error: concurrency: ")
    assert "pydantic.dev" not in from_option


def test_job_and_task_input_mistakes_are_error_lines(folder: Path, sqlite_url: str) -> None:
    """``jobs add`` with a missing file, a folder, a bad spec or a top-level YAML list, and
    ``tasks add`` with a JSON value that is not an object: one clean line each."""
    assert "error: missing.toml: No such file or directory" in _refused(
        "jobs", "add", "missing.toml", "--database-url", sqlite_url
    )
    assert "Is a directory" in _refused("jobs", "add", str(folder), "--database-url", sqlite_url)
    (folder / "job.toml").write_text(
        'name = "j"\nschedule = { cron = "61 * * * *" }\n'
        'action = { kind = "python", function = "pacer.testing:noop" }\n'
    )
    invalid = _refused("jobs", "add", "job.toml", "--database-url", sqlite_url)
    assert invalid.startswith("error: job.toml: schedule.cron: ")
    assert "pydantic.dev" not in invalid
    (folder / "l.yaml").write_text("- name: a\n")
    listed = _refused("jobs", "add", "l.yaml", "--database-url", sqlite_url)
    assert "error: l.yaml: expected a job table or a 'jobs' list\n" == listed
    assert "action: expected a JSON object" in _refused(
        "tasks", "add", "[1, 2]", "--database-url", sqlite_url
    )


def test_demo_init_refuses_a_pacer_store(tmp_path: Path) -> None:
    """``pacer demo init PATH`` on a Pacer store is an error line and exit code 2."""
    store = tmp_path / "pacer.db"
    assert (
        0 == runner.invoke(app, ["db", "upgrade", "--database-url", f"sqlite:///{store}"]).exit_code
    )
    before = store.read_bytes()
    refused = runner.invoke(app, ["demo", "init", str(store)])
    assert 2 == refused.exit_code, refused.output
    assert "not overwritten" in refused.output
    assert before == store.read_bytes()


def test_sqlite_paths_in_the_config_file_are_relative_to_it(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative SQLite store, target or jobs folder in ``pacer.toml`` is read against the
    file's folder, wherever the command runs; a relative URL from the environment stays
    relative to the working folder."""
    config = folder / "conf" / "pacer.toml"
    config.parent.mkdir()
    config.write_text(
        '[pacer]\ndatabase_url = "sqlite+aiosqlite:///pacer.db"\njobs_dir = "jobs"\n'
        '[targets]\nt = "sqlite+aiosqlite:///data/t.db"\n'
    )
    elsewhere = folder / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    upgraded = runner.invoke(app, ["db", "upgrade", "--config", str(config)])
    assert 0 == upgraded.exit_code, upgraded.output
    assert (True, False) == (
        (folder / "conf" / "pacer.db").is_file(),
        (elsewhere / "pacer.db").exists(),
    )
    settings = load_settings(None, None, config)
    assert f"sqlite+aiosqlite:///{folder}/conf/data/t.db" == settings.targets["t"]
    assert folder / "conf" / "jobs" == settings.jobs_dir
    from_env = runner.invoke(
        app,
        ["db", "upgrade", "--config", str(config)],
        env={"PACER_DATABASE_URL": "sqlite:///own.db"},
    )
    assert 0 == from_env.exit_code, from_env.output
    assert (elsewhere / "own.db").is_file()


def test_the_pace_db_in_the_config_file_is_relative_to_it(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``pace_db`` in ``pacer.toml`` (the embedded pacer's own file) is read against the
    file's folder, as its SQLite store is; from the environment, against the working folder."""
    config = folder / "conf" / "pacer.toml"
    config.parent.mkdir()
    config.write_text('[pacer]\npace_db = "state/pace.db"\n')
    monkeypatch.chdir(folder)
    assert folder / "conf" / "state" / "pace.db" == load_settings(None, None, config).pace_db
    monkeypatch.setenv("PACER_PACE_DB", "own-pace.db")
    assert Path("own-pace.db") == load_settings(None, None, config).pace_db

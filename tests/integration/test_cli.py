"""The ``pacer`` CLI over the same services: jobs, runs, tasks, with tables and ``--json``."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pacer.bootstrap import build
from pacer.cli.main import app
from pacer.domain.models import Job
from pacer.stores.sqlalchemy import SqlStore
from support import fast_settings

runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test runs in a folder without a ``pacer.toml`` (the default, optional config)."""
    monkeypatch.chdir(tmp_path)


def _pacer(url: str, *args: str) -> str:
    result = runner.invoke(app, [*args, "--database-url", url])
    assert 0 == result.exit_code, result.output
    return result.output


def test_jobs_add_list_pause_trigger_and_runs(tmp_path: Path, database_url: str) -> None:
    """Add a job from a file, see it listed, pause it, trigger it, and find its run."""
    url = database_url.replace("+aiosqlite", "")
    spec = tmp_path / "job.toml"
    spec.write_text(
        'name = "cli-job"\nschedule = { cron = "0 13 * * *", tz = "Europe/Amsterdam" }\n'
        'action = { kind = "python", function = "pacer.testing:noop" }\n'
    )
    assert "cli-job" in _pacer(url, "jobs", "add", str(spec))
    listed = json.loads(_pacer(url, "jobs", "list", "--json"))
    assert ["cli-job"] == [job["name"] for job in listed]
    paused = json.loads(_pacer(url, "jobs", "pause", "cli-job", "--json"))
    assert (False, None) == (paused["enabled"], paused["next_run"])  # as the API: none if paused
    triggered = json.loads(_pacer(url, "jobs", "trigger", "cli-job", "--json"))
    runs = json.loads(_pacer(url, "runs", "list", "--job", "cli-job", "--json"))
    assert [triggered["id"]] == [run["id"] for run in runs]
    assert "queued" == json.loads(_pacer(url, "runs", "show", triggered["id"], "--json"))["status"]
    assert (
        "cancelled"
        == json.loads(_pacer(url, "runs", "cancel", triggered["id"], "--json"))["status"]
    )


def test_tasks_add_and_bad_input(database_url: str) -> None:
    """``tasks add`` queues a task; a bad action is refused with the field named, exit code 2."""
    url = database_url
    action = json.dumps({"kind": "http", "url": "http://127.0.0.1:9/hook"})
    task = json.loads(_pacer(url, "tasks", "add", action, "--json"))
    assert (None, "queued") == (task["job_id"], task["status"])
    bad = runner.invoke(
        app,
        [
            "tasks",
            "add",
            '{"kind": "http", "url": "ftp://x"}',
            "--database-url",
            url,
        ],
    )
    assert 2 == bad.exit_code
    assert "action.url" in bad.output
    missing = runner.invoke(app, ["runs", "show", "nope", "--database-url", url])
    assert (2, True) == (missing.exit_code, "not found" in missing.output)


def test_tokens_create_list_revoke(tmp_path: Path, database_url: str) -> None:
    """A created token's secret is printed once, listed without it, and revocable."""
    url = database_url.replace("+aiosqlite", "")
    created = json.loads(
        _pacer(url, "tokens", "create", "--scope", "write", "--name", "ci", "--json")
    )
    assert created["secret"].startswith("pacer_")
    listed = _pacer(url, "tokens", "list", "--json")
    assert created["secret"] not in listed
    assert [("ci", "write")] == [(t["name"], t["scope"]) for t in json.loads(listed)]
    revoked = json.loads(_pacer(url, "tokens", "revoke", created["id"], "--json"))
    assert revoked["revoked_at"] is not None
    plain = runner.invoke(app, ["tokens", "create", "--scope", "read", "--database-url", url])
    assert plain.stdout.strip().startswith("pacer_")


def test_tokens_create_with_an_expiry(database_url: str) -> None:
    """``--expires-in 12h`` sets the expiry twelve hours after creation; a malformed or absurd
    one is refused naming the option, and nothing is created."""
    url = database_url.replace("+aiosqlite", "")
    created = json.loads(
        _pacer(url, "tokens", "create", "--scope", "read", "--expires-in", "12h", "--json")
    )
    lifetime = datetime.fromisoformat(created["expires_at"]) - datetime.fromisoformat(
        created["created_at"]
    )
    assert timedelta(hours=12) == lifetime
    for bad in ("12x", "0s", "99999999d"):
        refused = runner.invoke(
            app,
            [
                "tokens",
                "create",
                "--scope",
                "read",
                "--expires-in",
                bad,
                "--database-url",
                url,
            ],
        )
        assert 2 == refused.exit_code, refused.output
        assert "--expires-in" in refused.output
    listed = json.loads(_pacer(url, "tokens", "list", "--json"))
    assert [created["id"]] == [t["id"] for t in listed]


def test_times_carry_their_zone(database_url: str) -> None:
    """A ``--due`` or ``--since`` without a zone is refused naming the option (as the HTTP API
    refuses it); with one it is honoured, and tables print times in UTC, saying so."""
    url = database_url
    action = json.dumps({"kind": "python", "function": "pacer.testing:noop"})
    for option, args in (("--due", ("tasks", "add", action)), ("--since", ("runs", "list"))):
        naive = runner.invoke(app, [*args, option, "2030-01-01T09:00:00", "--database-url", url])
        assert 2 == naive.exit_code, naive.output
        assert "has no time zone" in naive.output
    task = json.loads(
        _pacer(url, "tasks", "add", action, "--due", "2030-01-01T10:00:00+01:00", "--json")
    )
    assert datetime(2030, 1, 1, 9, tzinfo=UTC) == datetime.fromisoformat(task["scheduled_at"])
    shown = _pacer(url, "runs", "show", task["id"])
    assert "2030-01-01 09:00:00 UTC" in shown
    since = datetime(2030, 1, 1, tzinfo=UTC).isoformat()
    assert [] == json.loads(_pacer(url, "runs", "list", "--since", since, "--json"))


def test_jobs_add_adds_every_job_of_a_list(tmp_path: Path, database_url: str) -> None:
    """A ``[[jobs]]`` file adds each of its jobs (``--json`` lists them); an empty list, or a
    name already taken by any of them, is refused and nothing is added."""
    url = database_url
    action = 'action = { kind = "python", function = "pacer.testing:noop" }\n'
    jobs = tmp_path / "jobs.toml"
    jobs.write_text(f'[[jobs]]\nname = "first"\n{action}\n[[jobs]]\nname = "second"\n{action}')
    added = json.loads(_pacer(url, "jobs", "add", str(jobs), "--json"))
    assert ["first", "second"] == [job["name"] for job in added]
    listed = json.loads(_pacer(url, "jobs", "list", "--json"))
    assert ["first", "second"] == sorted(job["name"] for job in listed)
    again = tmp_path / "again.toml"
    again.write_text(f'[[jobs]]\nname = "third"\n{action}\n[[jobs]]\nname = "first"\n{action}')
    empty = tmp_path / "empty.toml"
    empty.write_text("jobs = []\n")
    for file, reason in ((again, "'first' already exists"), (empty, "holds no jobs")):
        refused = runner.invoke(app, ["jobs", "add", str(file), "--database-url", url])
        assert 2 == refused.exit_code, refused.output
        assert reason in refused.output
    listed = json.loads(_pacer(url, "jobs", "list", "--json"))
    assert ["first", "second"] == sorted(job["name"] for job in listed)


def test_jobs_add_writes_all_of_a_file_or_none(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``jobs add`` writes a file's jobs in one transaction: a name found taken only when the
    second job is written (another client took it after any check) adds neither job."""
    url = database_url
    action = 'action = { kind = "python", function = "pacer.testing:noop" }\n'
    taken = tmp_path / "taken.toml"
    taken.write_text(f'name = "second"\n{action}')
    _pacer(url, "jobs", "add", str(taken))
    both = tmp_path / "both.toml"
    both.write_text(f'[[jobs]]\nname = "first"\n{action}\n[[jobs]]\nname = "second"\n{action}')

    async def no_jobs(self: SqlStore) -> list[Job]:
        return []

    with monkeypatch.context() as patched:
        patched.setattr(SqlStore, "list_jobs", no_jobs)  # every name looks free until written
        refused = runner.invoke(app, ["jobs", "add", str(both), "--database-url", url])
    assert 2 == refused.exit_code, refused.output
    assert "a job named 'second' already exists" in refused.output
    listed = json.loads(_pacer(url, "jobs", "list", "--json"))
    assert ["second"] == [job["name"] for job in listed]


def test_jobs_list_shows_a_job_removed_from_the_jobs_folder(
    tmp_path: Path, database_url: str
) -> None:
    """``jobs list`` shows when a job left the jobs folder (``removed_at``), disabled and
    without a next run, in ``--json`` and in the table."""
    folder = tmp_path / "jobs"
    folder.mkdir()
    (folder / "gone.toml").write_text(
        'name = "gone"\nschedule = { cron = "@every 1h" }\n'
        'action = { kind = "python", function = "pacer.testing:noop" }\n'
    )

    async def start() -> None:
        await (await build(fast_settings(database_url, jobs_dir=folder))).aclose()

    asyncio.run(start())
    (folder / "gone.toml").unlink()
    asyncio.run(start())
    (listed,) = json.loads(_pacer(database_url, "jobs", "list", "--json"))
    assert (False, None) == (listed["enabled"], listed["next_run"])
    assert datetime.fromisoformat(listed["removed_at"]).tzinfo is not None
    assert "removed_at" in _pacer(database_url, "jobs", "list")


def test_runs_of_a_deleted_job_are_listed_by_its_id(tmp_path: Path, database_url: str) -> None:
    """``runs list --job`` with a deleted job's id lists its finished runs, as the API does; a
    value that matches nothing lists nothing."""
    url = database_url
    spec = tmp_path / "job.toml"
    spec.write_text(
        'name = "gone"\naction = { kind = "python", function = "pacer.testing:noop" }\n'
    )
    job = json.loads(_pacer(url, "jobs", "add", str(spec), "--json"))
    run = json.loads(_pacer(url, "jobs", "trigger", "gone", "--json"))
    _pacer(url, "runs", "cancel", run["id"])
    _pacer(url, "jobs", "delete", "gone")
    runs = json.loads(_pacer(url, "runs", "list", "--job", job["id"], "--json"))
    assert [(run["id"], "cancelled")] == [(r["id"], r["status"]) for r in runs]
    assert [] == json.loads(_pacer(url, "runs", "list", "--job", "no-such-job", "--json"))


def test_tables_show_short_run_ids_that_commands_take(database_url: str) -> None:
    """A table shows a run id's first characters, whole (rich used to cut the full id with an
    ellipsis on a narrow terminal), and show, cancel and retry take any prefix naming one
    run; one naming several is refused, and ``%`` is a character, not a wildcard."""
    action = json.dumps({"kind": "http", "url": "http://127.0.0.1:9/hook"})
    first = json.loads(_pacer(database_url, "tasks", "add", action, "--json"))["id"]
    json.loads(_pacer(database_url, "tasks", "add", action, "--json"))
    assert first[:8] in _pacer(database_url, "runs", "list")
    shown = json.loads(_pacer(database_url, "runs", "show", first[:8], "--json"))
    assert first == shown["id"]
    cancelled = json.loads(_pacer(database_url, "runs", "cancel", first[:8], "--json"))
    assert (first, "cancelled") == (cancelled["id"], cancelled["status"])
    retried = json.loads(_pacer(database_url, "runs", "retry", first[:8], "--json"))
    assert (first, "queued") == (retried["id"], retried["status"])
    for prefix, error in (("", "more than one run"), ("%", "not found")):
        result = runner.invoke(app, ["runs", "show", prefix, "--database-url", database_url])
        assert 2 == result.exit_code
        assert error in result.output


def test_tasks_add_takes_what_the_api_takes(database_url: str) -> None:
    """Parameters, retry policy, timeout and priority, checked by the API's own rules; a
    value out of range is refused with the field named and nothing queued."""
    action = json.dumps({"kind": "http", "url": "http://127.0.0.1:9/hook"})
    options = ["--parameters", '{"region": "eu"}', "--retry", '{"max_attempts": 5}']
    options += ["--timeout", "12.5", "--priority", "7"]
    task = json.loads(_pacer(database_url, "tasks", "add", action, *options, "--json"))
    assert ({"region": "eu"}, 5, 12.5, 7) == (
        task["parameters"],
        task["retry"]["max_attempts"],
        task["timeout_s"],
        task["priority"],
    )
    for option, value, field in (
        ("--priority", "5000", "priority"),
        ("--timeout", "0", "timeout_s"),
        ("--retry", '{"max_attempts": 0}', "retry.max_attempts"),
        ("--parameters", "[1]", "--parameters"),
        ("--due", "9999-12-31T23:59:59-05:00", "--due"),
    ):
        result = runner.invoke(
            app, ["tasks", "add", action, option, value, "--database-url", database_url]
        )
        assert 2 == result.exit_code, result.output
        assert field in result.output
    assert 1 == len(json.loads(_pacer(database_url, "runs", "list", "--json")))


def test_runs_list_until(database_url: str) -> None:
    action = json.dumps({"kind": "http", "url": "http://127.0.0.1:9/hook"})
    task = json.loads(_pacer(database_url, "tasks", "add", action, "--json"))
    before = json.loads(
        _pacer(database_url, "runs", "list", "--until", "2020-01-01T00:00:00Z", "--json")
    )
    after = json.loads(
        _pacer(database_url, "runs", "list", "--until", "2999-01-01T00:00:00Z", "--json")
    )
    assert ([], [task["id"]]) == (before, [run["id"] for run in after])

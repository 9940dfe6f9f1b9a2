"""``pacer``: run the roles, migrate, and inspect jobs and runs."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

import typer

from pacer.cli import processes
from pacer.cli.commands import Config, jobs_app, load_settings, runs_app, tasks_app
from pacer.cli.errors import PacerGroup
from pacer.cli.monitor import monitor_app
from pacer.cli.tokens import tokens_app
from pacer.settings import Settings
from pacer.stores.sqlalchemy.dialects import masked_url

app = typer.Typer(
    cls=PacerGroup,
    help="Pacer: a durable scheduler and executor for database work.",
    no_args_is_help=True,
)
db_app = typer.Typer(help="The store's schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
demo_app = typer.Typer(help="The demo's data set.", no_args_is_help=True)
app.add_typer(demo_app, name="demo")
app.add_typer(jobs_app, name="jobs")
app.add_typer(runs_app, name="runs")
app.add_typer(tasks_app, name="tasks")
app.add_typer(tokens_app, name="tokens")
app.add_typer(monitor_app, name="monitor")

DatabaseUrl = typer.Option(
    None, "--database-url", envvar="PACER_DATABASE_URL", help="SQLAlchemy URL of the store."
)
JobsDir = typer.Option(None, "--jobs-dir", help="Folder of job definitions (*.py, *.toml, *.yaml).")


def settings_from(
    database_url: str | None, jobs_dir: Path | None, config: Path | None, **extra: Any
) -> Settings:
    """A long-running role's settings (``load_settings``), with logging set up by them."""
    settings = load_settings(database_url, jobs_dir, config, **extra)
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return settings


def _run(settings: Settings, roles: list[processes.Role], *, sync_jobs: bool) -> None:
    asyncio.run(processes.run_roles(settings, roles, sync_jobs=sync_jobs))


@app.command()
def up(
    database_url: str | None = DatabaseUrl,
    jobs_dir: Path | None = JobsDir,
    config: Path | None = Config,
    host: str | None = typer.Option(None, help="Address of the HTTP API."),
    port: int | None = typer.Option(None, help="Port of the HTTP API."),
    concurrency: int | None = typer.Option(None, help="Runs executed at once."),
    pace: bool = typer.Option(
        False, "--pace", help="Also run the pacer embedded (keeps resources near 70 %)."
    ),
) -> None:
    """Start everything in one process: HTTP API, scheduler and workers."""
    settings = settings_from(
        database_url, jobs_dir, config, host=host, port=port, concurrency=concurrency
    )
    typer.echo(
        f"pacer up: store {masked_url(settings.database_url)}, "
        f"API http://{settings.host}:{settings.port}"
    )
    _run(settings, processes.PACED if pace else processes.ALL_IN_ONE, sync_jobs=True)


@app.command()
def worker(
    database_url: str | None = DatabaseUrl,
    jobs_dir: Path | None = JobsDir,
    config: Path | None = Config,
    concurrency: int | None = typer.Option(None, help="Runs executed at once."),
    batch: int | None = typer.Option(None, help="Runs claimed per round trip."),
) -> None:
    """Execute runs (many workers may share one PostgreSQL store)."""
    settings = settings_from(database_url, jobs_dir, config, concurrency=concurrency, batch=batch)
    _run(settings, processes.WORKER, sync_jobs=False)


@app.command()
def scheduler(
    database_url: str | None = DatabaseUrl,
    jobs_dir: Path | None = JobsDir,
    config: Path | None = Config,
) -> None:
    """Turn schedule fires into runs (any number may run at once)."""
    settings = settings_from(database_url, jobs_dir, config)
    _run(settings, processes.SCHEDULER, sync_jobs=True)


@db_app.command("upgrade")
def db_upgrade(database_url: str | None = DatabaseUrl, config: Path | None = Config) -> None:
    """Apply the migrations (also done at every start)."""
    from pacer.bootstrap import migrate_store

    settings = settings_from(database_url, None, config)
    asyncio.run(migrate_store(settings.database_url))
    typer.echo("schema is up to date")


@demo_app.command("init")
def demo_init(
    path: Path = typer.Argument(Path("data/registrations.db"), help="SQLite file to write."),
) -> None:
    """Write the registration data set (1,002 rows up to 2022-12-22) unless it is there.

    Any other file at PATH (another database, a Pacer store, a file of another kind) is left
    alone and the command fails.
    """
    from pacer.demo import ROWS, write_registrations

    written = write_registrations(path)
    state = "written" if written else "already there"
    typer.echo(f"{path}: registration data set ({ROWS} rows) {state}")


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())

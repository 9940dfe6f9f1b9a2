"""``pacer monitor …``: follow a Pacer server into a local file, and read what it recorded.

The monitor is a separate client: it reaches the server only over HTTP, so these commands import
``pacer.monitor`` and nothing of the server's stores or services.
"""

from __future__ import annotations

import logging
import math
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import typer

from pacer.cli.output import emit
from pacer.domain.pacer import PacerConfig
from pacer.domain.resources import RESOURCES
from pacer.monitor.client import FatalError
from pacer.monitor.follower import FollowSettings
from pacer.monitor.runner import run as run_follower
from pacer.monitor.store import MonitorStore

monitor_app = typer.Typer(
    help="The monitoring client: follow a server's executions into a local store.",
    no_args_is_help=True,
)
# ``pacer monitor --pace`` (a later issue) will become a callback option of this sub-app.

Db = typer.Option(
    Path("monitor.db"), "--db", envvar="PACER_MONITOR_DB", help="The monitor's SQLite file."
)
Json = typer.Option(False, "--json", help="Print JSON instead of a table.")
QUERY_COLUMNS = ["query_id", "executions", "failures", "p50_ms", "p95_ms", "max_ms", "last_seen"]
EXECUTION_COLUMNS = [
    "run_id",
    "attempt",
    "outcome",
    "status",
    "started_at",
    "finished_at",
    "duration_ms",
    "worker",
    "error",
]

DECISION_COLUMNS = [
    "decided_at",
    "run_id",
    "query_id",
    "due_at",
    "start_at",
    "delay_ms",
    "cost",
    "forecast",
]


@monitor_app.command("run")
def run(
    url: str = typer.Option(..., "--url", envvar="PACER_MONITOR_URL", help="The server's URL."),
    token: str = typer.Option(
        ..., "--token", envvar="PACER_MONITOR_TOKEN", help="A read-scope API token."
    ),
    db: Path = Db,
    name: str = typer.Option(
        f"monitor-{socket.gethostname()}", "--name", help="Consumer name the server keeps for us."
    ),
    transport: str = typer.Option(
        "auto", "--transport", help="auto (stream, falling back to long poll), stream or poll."
    ),
    keepalive: float = typer.Option(
        10.0, "--keepalive", help="The server's keepalive interval; twice it is a dead stream."
    ),
    poll_wait: float = typer.Option(25.0, "--poll-wait", help="Seconds a long poll waits."),
    resources_interval: float = typer.Option(
        5.0, "--resources-interval", help="Seconds between resource samples (0: none)."
    ),
    pace: bool = typer.Option(
        False, "--pace", help="Also delay queued executions to keep resources near --target."
    ),
    target: float = typer.Option(70.0, "--target", help="Target window average, percent."),
    window: float = typer.Option(30.0, "--window", help="The server's window length, s."),
    max_delay: float = typer.Option(60.0, "--max-delay", help="Longest delay, s."),
    max_delay_for: list[str] = typer.Option(
        [],
        "--max-delay-for",
        help="QUERY_ID=SECONDS: a longest delay for one query id (repeatable).",
    ),
) -> None:
    """Follow the server's execution log into --db until SIGTERM or Ctrl-C (with --pace,
    also pace the queued executions; needs a write-scope token)."""
    if transport not in ("auto", "stream", "poll"):
        raise typer.BadParameter("must be auto, stream or poll", param_hint="--transport")
    parsed = urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        # Refused now: a URL that can never answer was retried for ever as a transient error.
        raise typer.BadParameter(
            "must be an http:// or https:// URL with a host", param_hint="--url"
        )
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request is noise
    settings = FollowSettings(
        name=name, transport=transport, poll_wait=poll_wait, resources_interval=resources_interval
    )
    by_query = max_delays(max_delay_for)
    typer.echo(f"pacer monitor: {url} -> {db} as consumer {name!r}", err=True)
    try:
        config = PacerConfig(
            target=target, window_s=window, max_delay_s=max_delay, max_delay_by_query=by_query
        )
        run_follower(url, token, db, settings, keepalive=keepalive, pace=config if pace else None)
    except FatalError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def max_delays(values: list[str]) -> dict[str, float]:
    """``QUERY_ID=SECONDS`` pairs as a mapping; a malformed one is a usage error."""
    delays: dict[str, float] = {}
    for value in values:
        query_id, _, text = value.rpartition("=")
        try:
            seconds = float(text)
        except ValueError:
            seconds = math.nan
        if not query_id or not 0 < seconds < math.inf:
            raise typer.BadParameter(
                f"{value!r}: expected QUERY_ID=SECONDS, seconds > 0", param_hint="--max-delay-for"
            )
        delays[query_id] = seconds
    return delays


@monitor_app.command("queries")
def queries(db: Path = Db, as_json: bool = Json) -> None:
    """Per query id: executions, failures, duration p50/p95/max and when it was last seen."""
    with _opened(db) as store:
        emit(store.queries(), QUERY_COLUMNS, as_json, "queries")


@monitor_app.command("executions")
def executions(
    query: str = typer.Option(..., "--query", help="The query id."),
    limit: int = typer.Option(50, "--limit", min=1, help="Newest executions to show."),
    db: Path = Db,
    as_json: bool = Json,
) -> None:
    """The attempts of one query, newest first."""
    with _opened(db) as store:
        records = [asdict(execution) for execution in store.executions(query, limit)]
    emit(records, EXECUTION_COLUMNS, as_json, f"executions of {query}")


@monitor_app.command("gaps")
def gaps(db: Path = Db, as_json: bool = Json) -> None:
    """Ranges of events the server pruned before the monitor read them."""
    with _opened(db) as store:
        records = store.gaps()
    emit(records, ["from_position", "to_position", "count", "detected_at"], as_json, "gaps")


@monitor_app.command("decisions")
def decisions(
    query: str | None = typer.Option(None, "--query", help="Only this query id's."),
    limit: int = typer.Option(50, "--limit", min=1, help="Newest decisions to show."),
    db: Path = Db,
    as_json: bool = Json,
) -> None:
    """The pacer's decisions, newest first: when each execution was due, the start chosen,
    the delay, the cost it was planned at and the forecast of the window it landed in."""
    with _opened(db) as store:
        records = store.decisions(query, limit)
    if not as_json:
        records = [_brief(record) for record in records]
    emit(records, DECISION_COLUMNS, as_json, "pacer decisions")


def _brief(record: dict[str, Any]) -> dict[str, Any]:
    """A decision as one table row: costs and forecasts as cpu/io/memory triples."""
    triple = "{:.1f}/{:.1f}/{:.1f}".format
    return {
        **record,
        "cost": triple(*(record[f"cost_{r}"] for r in RESOURCES)),
        "forecast": triple(*(record[f"forecast_{r}"] for r in RESOURCES)),
        "delay_ms": round(record["delay_ms"]),
    }


@contextmanager
def _opened(db: Path) -> Iterator[MonitorStore]:
    """The store of an existing file (reading must not create an empty one by mistake)."""
    if not db.exists():
        typer.echo(f"error: {db} does not exist (run `pacer monitor run` first)", err=True)
        raise typer.Exit(2)
    store = MonitorStore(db)
    try:
        yield store
    finally:
        store.close()


if __name__ == "__main__":  # ``python -m pacer.cli.monitor``, until ``pacer monitor`` is wired
    monitor_app()

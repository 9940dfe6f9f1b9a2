"""``pacer monitor queries|executions|gaps|decisions`` over a recorded store (tables and
``--json``), and the options of ``pacer monitor run --pace`` and ``pacer up --pace``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from pacer.cli.monitor import monitor_app
from pacer.cli.processes import pace_config
from pacer.domain.pacer import PacerConfig
from pacer.monitor.events import Event, Missed
from pacer.monitor.pacing import PacingLoop
from pacer.monitor.store import MonitorStore
from pacer.settings import Settings

runner = CliRunner()


def _recorded(tmp_path: Path) -> Path:
    db = tmp_path / "monitor.db"
    store = MonitorStore(db)
    times = {"started_at": "2025-01-01T00:00:00+00:00", "finished_at": "2025-01-01T00:00:01+00:00"}
    events = [
        Event(p, kind, f"r{p}", 1, query_id="q1", duration_ms=float(p), **times)
        for p, kind in [(1, "succeeded"), (2, "failed"), (3, "succeeded")]
    ]
    store.apply(events, 3, [Missed(4, 9, 6)])
    store.close()
    return db


def _monitor(*args: str) -> str:
    result = runner.invoke(monitor_app, list(args))
    assert 0 == result.exit_code, result.output
    return result.output


def test_queries_executions_and_gaps_as_json(tmp_path: Path) -> None:
    """The read model as JSON: per-query figures, one query's attempts newest first, the gaps."""
    db = str(_recorded(tmp_path))
    (query,) = json.loads(_monitor("queries", "--db", db, "--json"))
    assert ("q1", 3, 1, 2.0, 3.0, 3.0) == (
        query["query_id"],
        query["executions"],
        query["failures"],
        query["p50_ms"],
        query["p95_ms"],
        query["max_ms"],
    )
    executions = json.loads(_monitor("executions", "--query", "q1", "--db", db, "--json"))
    assert ["r3", "r2", "r1"] == [e["run_id"] for e in executions]
    (gap,) = json.loads(_monitor("gaps", "--db", db, "--json"))
    assert (4, 9, 6) == (gap["from_position"], gap["to_position"], gap["count"])


def test_tables_for_people(tmp_path: Path) -> None:
    """Without ``--json`` the commands print titled tables."""
    db = str(_recorded(tmp_path))
    assert "queries" in _monitor("queries", "--db", db)
    assert "failed" in _monitor("executions", "--query", "q1", "--limit", "2", "--db", db)


def test_reading_a_missing_file_is_an_error(tmp_path: Path) -> None:
    """Reading commands refuse a file that does not exist instead of creating an empty one."""
    result = runner.invoke(monitor_app, ["queries", "--db", str(tmp_path / "none.db")])
    assert (2, False) == (result.exit_code, (tmp_path / "none.db").exists())


def test_run_passes_per_query_maximum_delays_to_the_pacer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--max-delay-for QUERY=SECONDS`` (repeatable) reaches the pacer's configuration."""
    seen: dict[str, Any] = {}
    monkeypatch.setattr(
        "pacer.cli.monitor.run_follower", lambda *args, **kwargs: seen.update(kwargs)
    )
    args = ["run", "--url", "http://x", "--token", "t", "--db", str(tmp_path / "m.db"), "--pace"]
    _monitor(*args, "--max-delay", "90", "--max-delay-for", "q1=2", "--max-delay-for", "a=b=0.5")
    config = seen["pace"]
    assert ({"q1": 2.0, "a=b": 0.5}, 2.0, 90.0) == (
        dict(config.max_delay_by_query),
        config.max_delay_for("q1"),
        config.max_delay_for("other"),
    )


@pytest.mark.parametrize("value", ["q1", "=2", "q1=0", "q1=-1", "q1=soon", "q1=nan"])
def test_a_malformed_per_query_maximum_is_a_usage_error(tmp_path: Path, value: str) -> None:
    """A per-query maximum must be QUERY_ID=SECONDS with seconds > 0."""
    args = ["run", "--url", "http://x", "--token", "t", "--db", str(tmp_path / "m.db")]
    result = runner.invoke(monitor_app, [*args, "--pace", "--max-delay-for", value])
    assert 2 == result.exit_code


@pytest.mark.parametrize("url", ["notaurl", "ftp://host/x", "http://", "127.0.0.1:8000"])
def test_a_url_that_cannot_answer_is_a_usage_error(tmp_path: Path, url: str) -> None:
    """Refused at once, where it was retried for ever as a transient error."""
    args = ["run", "--url", url, "--token", "t", "--db", str(tmp_path / "m.db")]
    result = runner.invoke(monitor_app, args)
    assert 2 == result.exit_code
    assert "--url" in result.output


def test_pacer_up_reads_per_query_maximum_delays_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``PACER_PACE_MAX_DELAY_BY_QUERY`` (JSON) configures the embedded pacer."""
    monkeypatch.setenv("PACER_PACE_MAX_DELAY_BY_QUERY", '{"q1": 2, "q2": 300}')
    config = pace_config(Settings(pace_max_delay_s=45))
    assert (2.0, 300.0, 45.0) == tuple(config.max_delay_for(q) for q in ("q1", "q2", "q3"))
    monkeypatch.setenv("PACER_PACE_MAX_DELAY_BY_QUERY", '{"q1": 0}')
    with pytest.raises(ValidationError):
        Settings()


class NoServer:
    """A client that accepts every delay (the pacer's only call in a step)."""

    async def delay(self, run_id: str, delay_ms: float) -> bool:
        return True


def test_decisions_lists_what_the_pacing_loop_decided(tmp_path: Path) -> None:
    """Each queued execution the pacer acts on is recorded with the acted position and shown
    by ``pacer monitor decisions`` (newest first, --json and a table)."""
    db = tmp_path / "monitor.db"
    store = MonitorStore(db)
    due = "2026-01-01T00:00:00+00:00"
    store.apply(
        [Event(p, "queued", f"r{p}", 0, query_id="q1", scheduled_at=due) for p in (1, 2)], 2
    )
    loop = PacingLoop(MonitorStore(db), NoServer(), PacerConfig())  # type: ignore[arg-type]
    asyncio.run(loop.step())
    store.close()
    decided = json.loads(_monitor("decisions", "--db", str(db), "--json"))
    due_at = "2026-01-01T00:00:00.000+00:00"
    assert [("r2", "q1", 2, due_at), ("r1", "q1", 2, due_at)] == [
        (d["run_id"], d["query_id"], d["position"], d["due_at"]) for d in decided
    ]
    assert {"cost_cpu", "forecast_memory", "start_at", "delay_ms", "decided_at"} <= set(decided[0])
    assert "pacer decisions" in _monitor("decisions", "--db", str(db), "--query", "q1")

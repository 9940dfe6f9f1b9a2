"""The monitor's local store: idempotent batches, atomic commits, and the read model's figures."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pacer.domain.pacer import Decision
from pacer.domain.pacing import Cost
from pacer.monitor.events import Event, Missed, Resources
from pacer.monitor.executions import percentile
from pacer.monitor.store import DECISION_KEEP_S, MonitorStore


def _event(position: int, kind: str, run: str, attempt: int, **fields: Any) -> Event:
    status = {"started": "running", "retrying": "retrying", "delayed": "queued"}.get(kind, kind)
    return Event(position, kind, run, attempt, status=status, at=f"T{position:04}", **fields)


def _finished(position: int, kind: str, run: str, attempt: int, ms: float, **fields: Any) -> Event:
    times = {"started_at": f"S{position:04}", "finished_at": f"F{position:04}"}
    return _event(position, kind, run, attempt, duration_ms=ms, **times, **fields)


def history() -> list[Event]:
    """Two runs of q1 (one retried, then cancelled while waiting) and one of q2."""
    q1, q2 = {"query_id": "q1", "job_id": "j1"}, {"query_id": "q2", "job_id": None}
    return [
        _event(1, "queued", "r1", 0, scheduled_at="S0", **q1),
        _event(2, "started", "r1", 1, started_at="S0002", worker="w1", **q1),
        _event(3, "queued", "r2", 0, **q2),
        _finished(5, "retrying", "r1", 1, 40.0, error="boom", **q1),
        _event(6, "started", "r2", 1, started_at="S0006", worker="w2", **q2),
        _event(7, "started", "r1", 2, started_at="S0007", worker="w1", **q1),
        _finished(8, "succeeded", "r2", 1, 10.0, **q2),
        _finished(9, "retrying", "r1", 2, 20.0, error="again", **q1),
        _finished(11, "cancelled", "r1", 2, 20.0, **q1),
        _event(12, "queued", "r3", 0, **q1),
        _event(13, "started", "r3", 1, started_at="S0013", **q1),
        _finished(14, "succeeded", "r3", 1, 30.0, **q1),
    ]


def snapshot(store: MonitorStore) -> tuple[Any, ...]:
    return store.position(), store.events(), store.attempts()


@pytest.fixture
def store(tmp_path: Path) -> MonitorStore:
    """A fresh store file."""
    return MonitorStore(tmp_path / "monitor.db")


def reference() -> tuple[Any, ...]:
    store = MonitorStore(":memory:")
    store.apply(history(), 14)
    return snapshot(store)


def test_replaying_a_batch_changes_nothing(store: MonitorStore) -> None:
    """The same batch applied twice leaves exactly the rows of applying it once."""
    store.apply(history(), 14)
    store.apply(history(), 14)
    assert reference() == snapshot(store)


def test_overlapping_batches_give_the_same_tables(store: MonitorStore) -> None:
    """Batches that overlap (redelivery after a reconnect) converge on the same tables."""
    events = history()
    for start, end in [(0, 6), (3, 9), (2, 12)]:
        store.apply(events[start:end], events[end - 1].position)
    assert reference() == snapshot(store)


@settings(max_examples=60, deadline=None)
@given(st.permutations(history()), st.integers(min_value=1, max_value=5))
def test_any_order_and_batching_gives_the_same_tables(events: list[Event], size: int) -> None:
    """Events applied in any order and any batch sizes (attempts out of order) converge."""
    store = MonitorStore(":memory:")
    for start in range(0, len(events), size):
        batch = events[start : start + size]
        store.apply(batch, max(e.position for e in batch))
    assert reference() == snapshot(store)


def test_the_position_never_moves_back(store: MonitorStore) -> None:
    """An old batch replayed after a newer one keeps the newer position."""
    store.apply(history()[6:], 14)
    assert 14 == store.apply(history()[:6], 6)


def test_a_crash_mid_batch_leaves_neither_rows_nor_position(
    store: MonitorStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exception after the events are inserted rolls back events and position together."""
    store.apply(history()[:3], 3)

    def crash(attempts: object) -> None:
        raise RuntimeError("killed mid-batch")

    monkeypatch.setattr(store, "_refresh_executions", crash)
    with pytest.raises(RuntimeError):
        store.apply(history()[3:], 14)
    assert (3, [1, 2, 3]) == (store.position(), [e.position for e in store.events()])
    reopened = MonitorStore(store.path)
    assert (3, 3) == (reopened.position(), len(reopened.events()))


def test_an_attempt_keeps_its_failure_when_the_run_is_cancelled_later(
    store: MonitorStore,
) -> None:
    """A retrying attempt is a failure even if the run is cancelled while it waits."""
    store.apply(history(), 14)
    attempts = {(e.run_id, e.attempt): e for e in store.executions()}
    assert ("failed", "again", "cancelled") == (
        attempts["r1", 2].outcome,
        attempts["r1", 2].error,
        attempts["r1", 2].status,
    )
    assert ("succeeded", "w2", 10.0) == (
        attempts["r2", 1].outcome,
        attempts["r2", 1].worker,
        attempts["r2", 1].duration_ms,
    )


def test_per_query_figures(store: MonitorStore) -> None:
    """Per query: finished attempts, failures, nearest-rank p50/p95, max and last seen."""
    store.apply(history(), 14)
    expected = [
        {
            "query_id": "q1",
            "executions": 3,
            "failures": 2,
            "last_seen": "F0014",
            "p50_ms": 30.0,
            "p95_ms": 40.0,
            "max_ms": 40.0,
        },
        {
            "query_id": "q2",
            "executions": 1,
            "failures": 0,
            "last_seen": "F0008",
            "p50_ms": 10.0,
            "p95_ms": 10.0,
            "max_ms": 10.0,
        },
    ]
    assert expected == store.queries()


def test_percentiles_are_observed_durations() -> None:
    """p50 and p95 of 1..100 are 50 and 95; of one value, that value; of none, None."""
    values = [float(v) for v in range(1, 101)]
    assert (50.0, 95.0, 7.0, None) == (
        percentile(values, 50),
        percentile(values, 95),
        percentile([7.0], 95),
        percentile([], 50),
    )


def test_executions_of_a_query_newest_first(store: MonitorStore) -> None:
    """One query's attempts come newest first, limited on request."""
    store.apply(history(), 14)
    newest = store.executions("q1", limit=2)
    assert [("r3", 1), ("r1", 2)] == [(e.run_id, e.attempt) for e in newest]


def test_gaps_and_resources_are_kept_once(store: MonitorStore) -> None:
    """A gap reported again (and reaching further) is one row; a resource window is kept once."""
    store.apply([], 10, [Missed(3, 8, 6)])
    store.apply([], 20, [Missed(3, 12, 9)])
    window = Resources(1_700_000_000_000, (1.0, 0.5, 2.0, None, None, None, 3.0, 2.0, 4.0))
    assert (True, False) == (store.record_resources(window), store.record_resources(window))
    assert [(3, 12, 9)] == [
        (g["from_position"], g["to_position"], g["count"]) for g in store.gaps()
    ]
    assert [1_700_000_000_000] == [r["timestamp"] for r in store.resources()]


def test_resources_after_a_window_are_only_the_later_ones(store: MonitorStore) -> None:
    """The pacing loop asks only for windows closed after the last one it learnt from."""
    for end in (1_000, 2_000, 3_000):
        store.record_resources(Resources(end, (1.0, 0.5, 2.0, 1.0, 1.0, 1.0, 3.0, 2.0, 4.0)))
    assert [2_000, 3_000] == [r["timestamp"] for r in store.resources(after=1_000)]
    assert [] == store.resources(after=3_000)


def _decision(run_id: str, decided_at: float, delay_s: float = 1.5) -> Decision:
    return Decision(
        run_id,
        "q1",
        decided_at,
        decided_at + delay_s,
        delay_s,
        Cost(10, 5, 3),
        (60, 50, 40),
        decided_at,
    )


def test_decisions_are_appended_with_the_acted_position_and_listed_newest_first(
    tmp_path: Path,
) -> None:
    """Each save appends its decisions, stamped with the position acted up to."""
    store = MonitorStore(tmp_path / "m.db")
    store.save_pacer(5, {"durations": {}}, [_decision("r1", 1e9), _decision("r2", 1e9 + 1)])
    store.save_pacer(9, {"durations": {}}, [_decision("r1", 1e9 + 2, 0.0)])
    rows = store.decisions()
    assert [("r1", 9, 0.0), ("r2", 5, 1500.0), ("r1", 5, 1500.0)] == [
        (row["run_id"], row["position"], row["delay_ms"]) for row in rows
    ]
    assert (10.0, 60.0, "2001-09-09T01:46:41.000+00:00") == (
        rows[1]["cost_cpu"],
        rows[1]["forecast_cpu"],
        rows[1]["due_at"],
    )
    assert ["r1"] == [row["run_id"] for row in store.decisions("q1", limit=1)]


def test_decisions_and_the_position_commit_together(tmp_path: Path) -> None:
    """A batch whose decisions cannot be written leaves the saved position where it was."""
    store = MonitorStore(tmp_path / "m.db")
    store.save_pacer(5, {"durations": {"q1": 1.0}}, [_decision("r1", 1e9)])
    broken = replace(_decision("r2", 1e9 + 1), run_id=None)  # type: ignore[arg-type]
    with pytest.raises(sqlite3.IntegrityError):
        store.save_pacer(9, {"durations": {}}, [broken])
    assert ((5, {"durations": {"q1": 1.0}}), ["r1"]) == (
        store.pacer(),
        [row["run_id"] for row in store.decisions()],
    )


def test_decisions_older_than_the_retention_are_pruned(tmp_path: Path) -> None:
    """Saving keeps only the decisions within DECISION_KEEP_S of the newest one."""
    store = MonitorStore(tmp_path / "m.db")
    store.save_pacer(1, {}, [_decision("old", 1e9), _decision("kept", 1e9 + 10)])
    store.save_pacer(2, {}, [_decision("new", 1e9 + 5 + DECISION_KEEP_S)])
    assert ["new", "kept"] == [row["run_id"] for row in store.decisions()]

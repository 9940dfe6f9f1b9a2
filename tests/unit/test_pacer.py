"""The pacer's bookkeeping: commitments follow real starts and finishes, and its state
survives a restart."""

from __future__ import annotations

import pytest

from pacer.domain.estimation import Cost as Estimate
from pacer.domain.pacer import Pacer, PacerConfig, shrunk
from pacer.domain.resources import RESOURCES, ResourceWindow, Stats
from pacer.sim.virtual import Execution


def test_state_round_trip_restores_durations_and_commitments() -> None:
    """A restarted pacer plans around the executions its predecessor had placed."""
    first = Pacer(PacerConfig(window_s=10))
    first.finished("old", "q", 0.0, 2.0)
    first.decide("r1", "q", due=100.0, now=100.0)
    second = Pacer(PacerConfig(window_s=10))
    second.restore(first.to_state())
    assert first.durations == second.durations
    assert first.plan.average(10) == second.plan.average(10)
    assert set(first.committed) == set(second.committed)


def test_a_finish_teaches_the_duration_and_frees_the_plan() -> None:
    """An execution that ends early gives its planned load back at once."""
    pacer = Pacer(PacerConfig(window_s=10, unknown_duration_s=8.0))
    pacer.decide("r1", "q", due=0.0, now=0.0)
    before = pacer.plan.average(0)
    pacer.finished("r1", "q", 0.0, 1.0)
    after = pacer.plan.average(0)
    assert 1.0 == pacer.durations["q"]
    assert all(a <= b for a, b in zip(after, before, strict=True))
    assert "r1" not in pacer.committed


def history() -> tuple[list[ResourceWindow], list[Execution]]:
    """Eight 10 s windows in which q ran for varying shares: baseline 10, q costs 20."""
    windows, spans = [], []
    for k, busy in enumerate([0.0, 5.0, 10.0, 2.0, 8.0, 0.0, 10.0, 4.0]):
        average = 10.0 + 20.0 * busy / 10
        stats = {r: Stats(average, average, average) for r in RESOURCES}
        windows.append(ResourceWindow(start=10.0 * k, end=10.0 * (k + 1), **stats))
        if busy:
            spans.append(Execution("q", 10.0 * k, 10.0 * k, 10.0 * k + busy))
    return windows, spans


def test_nothing_is_delayed_before_the_first_window_and_commitments_follow_the_estimates() -> None:
    """Before any window the pacer cannot tell costs apart and plans nothing; once it learns,
    the executions it already placed are re-planned at the learnt cost."""
    pacer = Pacer(PacerConfig(window_s=10, unknown_duration_s=5.0))
    assert 0.0 == pacer.decide("r1", "q", due=100.0, now=90.0)
    assert (0.0, 0.0, 0.0) == pacer.plan.average(10)
    pacer.learn(*history())
    assert pytest.approx(20.0, rel=0.05) == pacer.cost("q").cpu
    assert pacer.cost("q") == pacer.committed["r1"][2]
    forecast = pacer.plan.average(10)[0] - pacer.plan.baseline.cpu
    assert pytest.approx(pacer.cost("q").cpu * 5.0 / 10.0) == forecast


def test_a_barely_measured_cost_is_planned_near_the_typical_one() -> None:
    """An estimate with an enormous error is drawn to the prior; a precise one stays put."""
    prior = Estimate(8.0, 8.0)
    assert pytest.approx(8.0, rel=0.01) == shrunk(Estimate(900.0, 5000.0), prior).value
    assert pytest.approx(5.0, rel=0.01) == shrunk(Estimate(5.0, 0.1), prior).value
    assert shrunk(Estimate(900.0, 5000.0), prior).uncertainty < 8.0


def test_a_query_with_its_own_maximum_is_never_held_longer_while_others_wait_more() -> None:
    """Under the same load, executions of a query bounded at 2 s start within 2 s, while
    the others queued around them are held far longer."""
    config = PacerConfig(window_s=10, unknown_duration_s=5.0, max_delay_by_query={"urgent": 2})
    pacer = Pacer(config)
    pacer.learn(*history())
    delays: dict[str, list[float]] = {"q": [], "urgent": []}
    for i in range(60):
        query_id = "urgent" if i % 6 == 5 else "q"
        delays[query_id].append(pacer.decide(f"r{i}", query_id, due=100.0, now=100.0))
    assert 10 == len(delays["urgent"])
    assert max(delays["urgent"]) <= 2.0
    assert max(delays["q"]) > 2.0 * 10
    assert 60.0 == config.max_delay_for("q")

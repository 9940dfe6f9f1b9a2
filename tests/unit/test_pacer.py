"""The pacer's bookkeeping: commitments follow real starts and finishes, and its state
survives a restart."""

from __future__ import annotations

from pacer.domain.pacer import Pacer, PacerConfig


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

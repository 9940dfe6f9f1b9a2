"""The pacer's placement: earliest start that keeps each window's average under the target."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pacer.domain.pacing import Cost, PacingPlan, order_for_placement


def test_an_empty_plan_starts_at_once() -> None:
    """Nothing committed: no delay."""
    plan = PacingPlan(target=70, window_s=30, baseline=Cost(cpu=20))
    placed = plan.place(earliest=5.0, duration=1.0, cost=Cost(cpu=30), max_delay_s=60)
    assert (5.0, 0.0, True) == (placed.start, placed.delayed_s, placed.fits)


def test_a_full_window_pushes_the_start_just_far_enough() -> None:
    """With 10 point-seconds left in the window, a 2 s execution costing 20 points starts
    0.5 s before the window ends: 10 in this window, 30 in the next (which has room)."""
    plan = PacingPlan(target=70, window_s=30, baseline=Cost())
    plan.add(0.0, 30.0, Cost(cpu=70 - 10 / 30))
    placed = plan.place(earliest=1.0, duration=2.0, cost=Cost(cpu=20), max_delay_s=60)
    assert 29.5 == placed.start
    assert all(avg <= 70 + 1e-9 for k in (0, 1) for avg in plan.average(k))


def test_every_resource_constrains_the_start() -> None:
    """IO being full delays an execution even when the CPU has room."""
    plan = PacingPlan(target=70, window_s=10, baseline=Cost(cpu=10, io=60))
    placed = plan.place(earliest=0.0, duration=5.0, cost=Cost(cpu=5, io=30), max_delay_s=60)
    assert placed.delayed_s > 0
    assert all(avg <= 70 + 1e-9 for k in range(8) for avg in plan.average(k))


def test_overload_starts_at_the_maximum_delay_so_nothing_starves() -> None:
    """When no start fits (the baseline alone is over the target), the execution starts at
    its maximum delay, marked as not fitting."""
    plan = PacingPlan(target=70, window_s=30, baseline=Cost(cpu=80))
    placed = plan.place(earliest=0.0, duration=1.0, cost=Cost(cpu=5), max_delay_s=12)
    assert (12.0, False) == (placed.start, placed.fits)


def test_removing_an_execution_frees_its_room() -> None:
    """Load taken back (a cancelled or finished execution) is room again."""
    plan = PacingPlan(target=70, window_s=30)
    plan.add(0.0, 30.0, Cost(cpu=70))
    plan.remove(0.0, 30.0, Cost(cpu=70))
    assert 0.0 == plan.place(0.0, 1.0, Cost(cpu=50), 60).start


def test_short_and_high_priority_first() -> None:
    """Executions queued together are placed by priority, then by duration."""
    items = [(0, 5.0, "long"), (0, 0.1, "short"), (5, 9.0, "urgent")]
    assert ["urgent", "short", "long"] == [i[2] for i in order_for_placement(items)]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(0, 120),  # queued at
            st.floats(0.001, 45),  # duration (some longer than a window)
            st.floats(0, 40),  # cpu cost
            st.floats(0, 40),  # io cost
        ),
        max_size=40,
    )
)
def test_placements_that_fit_never_push_a_window_over_the_target(
    executions: list[tuple[float, float, float, float]],
) -> None:
    """Whatever arrives, after each placement that fits, every window is at or under target."""
    plan = PacingPlan(target=70, window_s=30, baseline=Cost(cpu=10, io=5))
    for queued, duration, cpu, io in sorted(executions):
        placed = plan.place(queued, duration, Cost(cpu=cpu, io=io), max_delay_s=3_600)
        if not placed.fits:
            continue
        touched = range(plan.window_of(placed.start), plan.window_of(placed.start + duration) + 1)
        for k in touched:
            assert all(avg <= 70 + 1e-6 for avg in plan.average(k)), (k, plan.average(k))

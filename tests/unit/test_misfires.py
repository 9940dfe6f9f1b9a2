"""Misfire planning: which due fires run, which are recorded as skipped, and capped planning."""

# House style is `assert expected == actual` (see STYLE.md); SIM300 wants the reverse.

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pacer.domain.misfires import FirePlan, PlannedFire, plan_fires
from pacer.domain.models import MisfirePolicy
from pacer.domain.schedules import ScheduleSpec

Policy = Literal["skip", "latest", "all"]
MINUTELY = ScheduleSpec(interval_s=60)
T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def ran(plan: FirePlan) -> list[datetime]:
    return [fire.fire_time for fire in plan.fires if fire.run]


def skipped(plan: FirePlan) -> list[datetime]:
    return [fire.fire_time for fire in plan.fires if not fire.run]


def policy(name: Policy, grace_s: float = 60, backfill_limit: int = 100) -> MisfirePolicy:
    return MisfirePolicy(policy=name, grace_s=grace_s, backfill_limit=backfill_limit)


def plan_in_pieces(
    spec: ScheduleSpec, first: datetime, now: datetime, misfire: MisfirePolicy, cap: int
) -> tuple[list[PlannedFire], datetime | None]:
    """Plan like the scheduler does: call again from ``next_fire_at`` until done."""
    fires: list[PlannedFire] = []
    cursor: datetime | None = first
    while cursor is not None:
        plan = plan_fires(spec, cursor, now, misfire, cap=cap)
        fires += plan.fires
        cursor = plan.next_fire_at
        if plan.done:
            return fires, cursor
    return fires, None


@pytest.mark.parametrize("name", ["skip", "latest", "all"])
def test_on_time_fires_always_run(name: Policy) -> None:
    """Fires within the grace period run whatever the policy."""
    plan = plan_fires(MINUTELY, T0, T0 + minutes(1.5), policy(name, grace_s=120))
    assert [T0, T0 + minutes(1)] == ran(plan)
    assert [] == skipped(plan)


def test_skip_records_every_missed_fire_as_skipped() -> None:
    """Policy ``skip``: missed fires are skipped, with a note; the on-time fire runs."""
    plan = plan_fires(MINUTELY, T0, T0 + minutes(10.5), policy("skip"))
    assert [T0 + minutes(n) for n in range(10)] == skipped(plan)
    assert [T0 + minutes(10)] == ran(plan)
    assert "missed by 10m30s; misfire policy 'skip'" == plan.fires[0].note


def test_latest_runs_the_newest_missed_fire_when_none_is_on_time() -> None:
    """Policy ``latest`` with no on-time fire: the newest missed fire runs, the rest skip."""
    plan = plan_fires(MINUTELY, T0, T0 + minutes(5.5), policy("latest", grace_s=10))
    assert [T0 + minutes(5)] == ran(plan)
    assert [T0 + minutes(n) for n in range(5)] == skipped(plan)


def test_latest_skips_every_missed_fire_when_one_is_on_time() -> None:
    """Policy ``latest`` with an on-time fire: only the on-time fire runs."""
    plan = plan_fires(MINUTELY, T0, T0 + minutes(5.5), policy("latest", grace_s=60))
    assert [T0 + minutes(5)] == ran(plan)
    assert [T0 + minutes(n) for n in range(5)] == skipped(plan)


def test_all_backfills_the_newest_missed_fires_up_to_the_limit() -> None:
    """Policy ``all``: the newest ``backfill_limit`` missed fires run, older ones skip."""
    plan = plan_fires(MINUTELY, T0, T0 + minutes(9.5), policy("all", backfill_limit=3))
    assert [T0 + minutes(n) for n in range(6, 10)] == ran(plan)
    assert [T0 + minutes(n) for n in range(6)] == skipped(plan)
    assert "missed by 9m30s; misfire policy 'all' runs only the newest 3" == plan.fires[0].note


def test_grace_boundary_is_inclusive() -> None:
    """A fire exactly ``grace_s`` late is on time; a microsecond later it is missed."""
    on_time = plan_fires(MINUTELY, T0, T0 + minutes(1), policy("skip", grace_s=60))
    late = plan_fires(
        MINUTELY, T0, T0 + minutes(1) + timedelta.resolution, policy("skip", grace_s=60)
    )
    assert [T0, T0 + minutes(1)] == ran(on_time)
    assert [T0] == skipped(late)


def test_nothing_due_plans_nothing() -> None:
    """Called before the next fire, the plan is empty, done, and keeps the next fire."""
    assert FirePlan([], T0, done=True) == plan_fires(MINUTELY, T0, T0 - minutes(1), policy("all"))


def test_full_plan_points_at_the_first_fire_after_now() -> None:
    """After planning every due fire, ``next_fire_at`` is the first fire after ``now``."""
    plan = plan_fires(MINUTELY, T0, T0 + minutes(2.5), policy("all"))
    assert (T0 + minutes(3), True) == (plan.next_fire_at, plan.done)


def test_exhausted_one_off_has_no_next_fire() -> None:
    """A one-off plans its single fire and then has no next fire."""
    spec = ScheduleSpec(at=T0)
    plan = plan_fires(spec, T0, T0 + minutes(5), policy("latest"))
    assert ([T0], None, True) == (ran(plan), plan.next_fire_at, plan.done)


def test_cap_cuts_the_plan_and_points_at_the_next_unplanned_fire() -> None:
    """With more due fires than ``cap``, the plan stops at ``cap`` and is not done."""
    plan = plan_fires(MINUTELY, T0, T0 + minutes(30), policy("skip"), cap=10)
    assert 10 == len(plan.fires)
    assert (T0 + minutes(10), False) == (plan.next_fire_at, plan.done)


@pytest.mark.parametrize("due", [3, 4, 5])
def test_latest_looks_one_fire_past_the_cap(due: int) -> None:
    """With ``cap`` 4, the newest missed fire runs whether or not it falls in the first call."""
    spec = ScheduleSpec(interval_s=60, start=T0, end=T0 + minutes(due - 1))
    fires, _ = plan_in_pieces(spec, T0, T0 + minutes(60), policy("latest"), cap=4)
    assert [T0 + minutes(due - 1)] == [fire.fire_time for fire in fires if fire.run]
    assert due == len(fires)


@pytest.mark.parametrize("name", ["skip", "latest", "all"])
@pytest.mark.parametrize("cap", [1, 2, 7, 50])
def test_capped_calls_plan_the_same_as_one_call(name: Policy, cap: int) -> None:
    """Planning a backlog in many capped calls gives exactly the one-call plan."""
    spec = ScheduleSpec(cron="*/5 * * * *", tz="Europe/Amsterdam")
    first, now = datetime(2026, 10, 24, 22, tzinfo=UTC), datetime(2026, 10, 25, 3, 2, tzinfo=UTC)
    misfire = policy(name, grace_s=600, backfill_limit=9)
    whole = plan_fires(spec, first, now, misfire, cap=10_000)
    assert (whole.fires, whole.next_fire_at) == plan_in_pieces(spec, first, now, misfire, cap)


def test_every_due_fire_is_planned_exactly_once() -> None:
    """No due fire is dropped or doubled, however the plan is split."""
    fires, next_fire = plan_in_pieces(MINUTELY, T0, T0 + minutes(500), policy("all"), cap=33)
    assert [T0 + minutes(n) for n in range(501)] == [fire.fire_time for fire in fires]
    assert T0 + minutes(501) == next_fire


def test_skip_notes_say_how_late_and_which_policy() -> None:
    """Every skipped fire has a note; long outages read in hours and minutes."""
    plan = plan_fires(MINUTELY, T0, T0 + timedelta(hours=3, minutes=12), policy("latest"), cap=5)
    assert "missed by 3h12m; misfire policy 'latest' runs only the newest due fire" == (
        plan.fires[0].note
    )
    assert all(fire.note for fire in plan.fires if not fire.run)


@settings(max_examples=80, deadline=None)
@given(
    name=st.sampled_from(["skip", "latest", "all"]),
    grace_min=st.integers(min_value=0, max_value=40),
    backfill_limit=st.integers(min_value=1, max_value=30),
    cap=st.integers(min_value=1, max_value=40),
    due=st.integers(min_value=1, max_value=120),
    extra_s=st.integers(min_value=0, max_value=59),
)
def test_capped_planning_is_consistent_for_any_backlog(
    name: Policy, grace_min: int, backfill_limit: int, cap: int, due: int, extra_s: int
) -> None:
    """For any backlog, cap and policy, capped calls equal one call and obey the policy."""
    now = T0 + minutes(due - 1) + timedelta(seconds=extra_s)
    misfire = policy(name, grace_s=grace_min * 60, backfill_limit=backfill_limit)
    whole = plan_fires(MINUTELY, T0, now, misfire, cap=10_000)
    assert (whole.fires, whole.next_fire_at) == plan_in_pieces(MINUTELY, T0, now, misfire, cap)
    missed = [f for f in whole.fires if now - f.fire_time > timedelta(minutes=grace_min)]
    on_time = len(whole.fires) - len(missed)
    expected_missed_runs = {
        "skip": 0,
        "latest": 1 if missed and not on_time else 0,
        "all": min(len(missed), backfill_limit),
    }[name]
    assert expected_missed_runs + on_time == len(ran(whole))
    assert [] == [f for f in missed[len(missed) - expected_missed_runs :] if not f.run]

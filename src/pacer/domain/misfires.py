"""Misfires: which due fires run and which are recorded as skipped.

Every due fire is planned exactly once, as a run or as a skipped run, so the history shows what
was missed instead of silently dropping it. Each fire's fate depends only on the fire, ``now``,
the schedule and the policy, never on how the work was split into capped calls: planning a
backlog in many small calls gives the same plan as one big call.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pacer.domain.models import MisfirePolicy
from pacer.domain.schedules import ScheduleSpec, fire_times, next_fire_after


@dataclass(frozen=True)
class PlannedFire:
    """One fire and its fate; ``fire_time`` is the fire's identity, jitter or not."""

    fire_time: datetime
    run: bool
    note: str | None


@dataclass(frozen=True)
class FirePlan:
    """Planned fires (ascending) and where the schedule stands afterwards.

    ``done`` is False when ``cap`` cut the plan short; the caller then plans again from
    ``next_fire_at``, which is still due.
    """

    fires: list[PlannedFire]
    next_fire_at: datetime | None
    done: bool


def plan_fires(
    spec: ScheduleSpec,
    next_fire_at: datetime,
    now: datetime,
    misfire: MisfirePolicy,
    cap: int = 1000,
) -> FirePlan:
    """Plan the due fires ``[next_fire_at, now]``, at most ``cap`` of them.

    One due fire past the cap is looked up too: whether a missed fire is the newest one (policy
    ``latest``) depends on whether any due fire follows it, even one a later call will plan.
    """
    if next_fire_at > now:
        return FirePlan([], next_fire_at, done=True)
    cap = max(cap, 1)
    due = [next_fire_at, *fire_times(spec, next_fire_at, now, cap)]
    planned, rest = due[:cap], due[cap:]
    fates = _Fates(spec, now, misfire, due)
    fires = [fates.plan(index) for index in range(len(planned))]
    if rest:
        return FirePlan(fires, rest[0], done=False)
    return FirePlan(fires, next_fire_after(spec, planned[-1]), done=True)


class _Fates:
    """Decides each due fire's fate from the fire itself and what follows it up to ``now``."""

    def __init__(
        self, spec: ScheduleSpec, now: datetime, misfire: MisfirePolicy, due: list[datetime]
    ) -> None:
        self.now = now
        self.misfire = misfire
        self.due = due
        self.missed_before = now - timedelta(seconds=misfire.grace_s)
        self.missed = [fire for fire in due if fire < self.missed_before]
        self.missed_beyond = 0
        if misfire.policy == "all" and self.missed:
            self.missed_beyond = self._count_missed_after(spec, self.missed[-1])

    def _count_missed_after(self, spec: ScheduleSpec, fire: datetime) -> int:
        """Missed fires past those in hand, counted only as far as ``backfill_limit`` needs."""
        limit = self.misfire.backfill_limit
        return len(fire_times(spec, fire, self.missed_before - timedelta.resolution, limit))

    def plan(self, index: int) -> PlannedFire:
        fire = self.due[index]
        if fire >= self.missed_before or self._runs_although_missed(index):
            return PlannedFire(fire, run=True, note=None)
        return PlannedFire(fire, run=False, note=self._note(fire))

    def _runs_although_missed(self, index: int) -> bool:
        if self.misfire.policy == "latest":
            return index == len(self.due) - 1
        if self.misfire.policy == "all":
            missed_after = len(self.missed) - index - 1 + self.missed_beyond
            return missed_after < self.misfire.backfill_limit
        return False

    def _note(self, fire: datetime) -> str:
        reason = (
            f"missed by {_duration_text(self.now - fire)}; misfire policy {self.misfire.policy!r}"
        )
        if self.misfire.policy == "all":
            reason += f" runs only the newest {self.misfire.backfill_limit}"
        elif self.misfire.policy == "latest":
            reason += " runs only the newest due fire"
        return reason


def _duration_text(span: timedelta) -> str:
    """The two largest units, like ``3h12m``: precise enough to recognise an outage."""
    if span < timedelta(seconds=1):
        return f"{span // timedelta(milliseconds=1)}ms"
    seconds = int(span.total_seconds())
    units = [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)]
    parts: list[str] = []
    for name, size in units:
        amount, seconds = divmod(seconds, size)
        if amount and len(parts) < 2:
            parts.append(f"{amount}{name}")
        elif parts:
            break
    return "".join(parts)

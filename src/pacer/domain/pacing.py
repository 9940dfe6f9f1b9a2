"""The pacer's decision: when may a queued execution start so that no resource's *window
average* goes above the target, at the least added latency?

The database reports utilization as fixed windows (30 s by default): what must stay under the
target is each window's average, not the instantaneous load. So the plan is kept as the load
already committed to each window (percentage-point-seconds per resource, from the running and
already scheduled executions' estimated costs and remaining durations), and a new execution
of cost ``c`` and duration ``d`` started at ``s`` adds ``c * overlap(window, [s, s + d))``
to each window it touches.

For an execution shorter than a window the earliest feasible start in a window is solved
exactly rather than searched: with ``room_k`` the point-seconds left in window ``k`` (ending
at ``E``) and ``room_k1`` in the next, a start ``s`` fits when ``c * (E - s) <= room_k`` (or
all of it fits in ``k``) and ``c * (s + d - E) <= room_k1``; both are bounds on ``s``, per
resource. *Rejected:* scanning candidate starts in small steps (hundreds of checks per
execution, too slow for hours of traffic on the virtual clock) and delaying to whole window
boundaries only (up to a window of needless latency). Executions longer than a window are
tried at the window boundaries.

Window averages alone let every postponed execution start at the same window boundary, a
herd that saturates the database for the first seconds of the window (and, on the simulated
database, hides work behind the 100 % cap). So an optional ``ceiling`` also bounds the
planned instantaneous load, kept per ``slot_s`` slot: a start whose slots would go above it
moves past the first such slot. *Rejected:* spreading starts at random within the window
(still herds by chance, and adds latency when the window is empty).

An execution never waits past its maximum delay: then it starts anyway, so nothing starves
even when the demand is above the target (the overloaded case, where no start fits).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

RESOURCES = ("cpu", "io", "memory")


@dataclass(frozen=True)
class Cost:
    """Percentage points of each resource an execution uses while it runs."""

    cpu: float = 0.0
    io: float = 0.0
    memory: float = 0.0

    def values(self) -> tuple[float, float, float]:
        return (self.cpu, self.io, self.memory)


@dataclass(frozen=True)
class Placement:
    start: float
    delayed_s: float
    #: False when no start within the maximum delay fits and the execution starts at its limit.
    fits: bool


@dataclass
class PacingPlan:
    """Committed load per window; times are seconds on any monotonic clock (epoch or virtual)."""

    target: float = 70.0
    window_s: float = 30.0
    baseline: Cost = field(default_factory=Cost)
    #: point-seconds committed per window index, per resource.
    load: dict[int, list[float]] = field(default_factory=lambda: defaultdict(lambda: [0.0] * 3))
    #: Highest planned instantaneous load (baseline included) per resource; None: no ceiling.
    ceiling: float | None = None
    slot_s: float = 1.0
    #: mean planned load (points) per slot index, per resource, when there is a ceiling.
    slots: dict[int, list[float]] = field(default_factory=lambda: defaultdict(lambda: [0.0] * 3))

    def window_of(self, t: float) -> int:
        return math.floor(t / self.window_s)

    def room(self, k: int) -> list[float]:
        """Point-seconds each resource may still take in window ``k`` under the target."""
        used = self.load[k]
        base = self.baseline.values()
        return [(self.target - b) * self.window_s - u for b, u in zip(base, used, strict=True)]

    def add(self, start: float, duration: float, cost: Cost) -> None:
        """Commit an execution's expected load to the windows it overlaps."""
        self._commit(start, duration, cost, 1.0)

    def remove(self, start: float, duration: float, cost: Cost) -> None:
        """Take an execution's load back (it finished early, was cancelled, or re-planned)."""
        self._commit(start, duration, cost, -1.0)

    def _commit(self, start: float, duration: float, cost: Cost, sign: float) -> None:
        for k, overlap in self._overlaps(start, duration):
            row = self.load[k]
            for i, c in enumerate(cost.values()):
                row[i] += sign * c * overlap
        if self.ceiling is None:
            return
        for j, overlap in self._overlaps(start, duration, self.slot_s):
            row = self.slots[j]
            for i, c in enumerate(cost.values()):
                row[i] += sign * c * overlap / self.slot_s

    def forget_before(self, t: float) -> None:
        """Drop windows that have closed: the plan only looks forward."""
        for k in [k for k in self.load if k < self.window_of(t)]:
            del self.load[k]
        for j in [j for j in self.slots if j < math.floor(t / self.slot_s)]:
            del self.slots[j]

    def average(self, k: int) -> tuple[float, float, float]:
        """The forecast average utilization of window ``k``, per resource."""
        used = self.load.get(k, [0.0] * 3)
        base = self.baseline.values()
        return tuple(b + u / self.window_s for b, u in zip(base, used, strict=True))  # type: ignore[return-value]

    def place(self, earliest: float, duration: float, cost: Cost, max_delay_s: float) -> Placement:
        """The earliest start at or after ``earliest`` that keeps every window at or under the
        target, within ``max_delay_s``; the execution's load is committed to the plan."""
        duration = max(duration, 0.0)
        latest = earliest + max_delay_s
        start = self._earliest_fit(earliest, latest, duration, cost)
        fits = start is not None
        chosen = start if start is not None else latest
        self.add(chosen, duration, cost)
        return Placement(chosen, chosen - earliest, fits)

    def _earliest_fit(
        self, earliest: float, latest: float, duration: float, cost: Cost
    ) -> float | None:
        lower = earliest
        while lower <= latest:
            start = self._window_fit(lower, latest, duration, cost)
            if start is None:
                return None
            blocked = self._first_slot_over(start, duration, cost)
            if blocked is None:
                return start
            lower = (blocked + 1) * self.slot_s
        return None

    def _first_slot_over(self, start: float, duration: float, cost: Cost) -> int | None:
        """The first slot the execution would take above the ceiling (None: all fit). An
        execution that alone goes above the ceiling is held to its own cost instead."""
        if self.ceiling is None:
            return None
        base = self.baseline.values()
        for j, overlap in self._overlaps(start, duration, self.slot_s):
            used = self.slots.get(j)
            if used is None:
                continue
            for b, u, c in zip(base, used, cost.values(), strict=True):
                if c > 0 and b + u + c * overlap / self.slot_s > max(self.ceiling, b + c) + 1e-9:
                    return j
        return None

    def _window_fit(
        self, earliest: float, latest: float, duration: float, cost: Cost
    ) -> float | None:
        k = self.window_of(earliest)
        while k * self.window_s <= latest:
            lower = max(earliest, k * self.window_s)
            if duration < self.window_s:
                start = self._fit_short(k, lower, duration, cost)
            else:
                start = lower if self._fits(lower, duration, cost) else None
            if start is not None and start <= latest:
                return start
            k += 1
        return None

    def _fit_short(self, k: int, lower: float, duration: float, cost: Cost) -> float | None:
        """Solve the bounds on ``s`` within window ``k`` (see the module docstring)."""
        end = (k + 1) * self.window_s
        low, high = lower, end
        here, after = self.room(k), self.room(k + 1)
        for c, room_here, room_after in zip(cost.values(), here, after, strict=True):
            if c <= 0:
                continue
            if room_here < 0 or room_after < 0:
                return None
            if c * duration > room_here:  # only part of it may fall in this window
                low = max(low, end - room_here / c)
            high = min(high, end - duration + room_after / c)
        if low > high or low >= end:
            return None
        return low

    def _fits(self, start: float, duration: float, cost: Cost) -> bool:
        for k, overlap in self._overlaps(start, duration):
            for c, room in zip(cost.values(), self.room(k), strict=True):
                if c * overlap > room + 1e-9:
                    return False
        return True

    def _overlaps(
        self, start: float, duration: float, length: float | None = None
    ) -> list[tuple[int, float]]:
        """``(index, seconds)`` of each window (or slot of ``length``) the span overlaps."""
        length = length or self.window_s
        end = start + duration
        found: list[tuple[int, float]] = []
        k = math.floor(start / length)
        while k * length < end or (duration == 0 and not found):
            lo, hi = max(start, k * length), min(end, (k + 1) * length)
            if hi > lo:
                found.append((k, hi - lo))
            elif duration == 0:
                break
            k += 1
        return found


def order_for_placement(items: list[tuple[int, float, str]]) -> list[tuple[int, float, str]]:
    """Executions queued together are placed high priority first, then shortest first: a
    short query delayed costs its caller as much latency as a long one, for less load."""
    return sorted(items, key=lambda item: (-item[0], item[1], item[2]))

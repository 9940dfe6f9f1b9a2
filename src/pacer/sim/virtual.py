"""The virtual clock: hours of a scenario's traffic in seconds, through a pacing hook.

A discrete-event engine. Every execution is queued at its arrival and starts when due, which
is 100 ms later (the ad-hoc delay) unless the ``policy`` postpones it, the way the pacer calls
``POST /delay``. The policy is asked when an execution is queued, and again each time a
postponed execution comes due, so a pacer can keep holding work while the database is busy;
returning 0 lets it start. Resource windows close every ``window_s`` and are computed from
fine samples of the simulated database, and each finished execution is recorded: exactly what
the real server gives the monitor, so the estimator and the pacer see no simulator internals.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pacer.domain.resources import ResourceWindow, aggregate
from pacer.sim.model import Running, SimDatabase
from pacer.sim.scenarios import Scenario
from pacer.sim.workload import Arrival

__all__ = ["ADHOC_DELAY_S", "Engine", "Execution", "Pending", "Policy", "SimResult", "simulate"]

#: Ad-hoc work runs this long after it is queued unless it is delayed.
ADHOC_DELAY_S = 0.1

# Event kinds, in the order they are handled at one instant: a window closing first, so a
# policy asked at that instant already sees it.
_WINDOW, _ARRIVAL, _DUE = 0, 1, 2


@dataclass(frozen=True)
class Execution:
    """One execution as the server reports it: query id, queued, start and finish."""

    query_id: str
    queued: float
    start: float
    end: float

    @property
    def wait_s(self) -> float:
        return self.start - self.queued


@dataclass(frozen=True)
class Pending:
    """An execution waiting to start: the policy sees its query id, never its duration."""

    query_id: str
    queued: float
    due: float
    delays: int = 0


@dataclass
class Engine:
    """What the policy may look at: the state the server and the monitor expose."""

    now: float = 0.0
    windows: list[ResourceWindow] = field(default_factory=list)
    finished: list[Execution] = field(default_factory=list)
    running: list[Execution] = field(default_factory=list)
    queued: dict[int, Pending] = field(default_factory=dict)


#: Given the execution about to be queued (or coming due after a postponement) and the engine,
#: the extra delay in milliseconds; 0 lets it start at its due time.
Policy = Callable[[Pending, Engine], float]
WindowHook = Callable[[ResourceWindow, Engine], None]


@dataclass(frozen=True)
class SimResult:
    """Every execution (in start order) and every closed window of one simulated run."""

    executions: list[Execution]
    windows: list[ResourceWindow]


def simulate(
    scenario: Scenario,
    hours: float,
    policy: Policy | None = None,
    on_window: WindowHook | None = None,
    step_s: float = 0.1,
) -> SimResult:
    """Run ``hours`` of the scenario on the virtual clock and return what was observed."""
    start = scenario.epoch
    end = start + hours * 3600
    run = _Run(scenario, scenario.database(), policy, on_window, step_s)
    return run.play(scenario.arrivals(start, end), start, end)


class _Run:
    """One play of a scenario: the event heap and the executions the database is running."""

    def __init__(
        self,
        scenario: Scenario,
        database: SimDatabase,
        policy: Policy | None,
        on_window: WindowHook | None,
        step_s: float,
    ) -> None:
        self.scenario = scenario
        self.database = database
        self.policy = policy
        self.on_window = on_window
        self.step_s = step_s
        self.engine = Engine()
        self.events: list[tuple[float, int, int, int]] = []
        self.durations: dict[int, float] = {}
        self.started: list[Execution] = []
        self.live: list[Execution] = []
        self.ending: list[tuple[float, int, Execution]] = []

    def play(self, arrivals: Sequence[Arrival], start: float, end: float) -> SimResult:
        self.engine.now = start
        for key, arrival in enumerate(arrivals):
            self.durations[key] = arrival.duration_s
            pending = Pending(arrival.query_id, arrival.at, arrival.at + ADHOC_DELAY_S)
            heapq.heappush(self.events, (arrival.at, _ARRIVAL, key, 0))
            self.engine.queued[key] = pending
        closes = start + self.scenario.window_s
        while closes <= end + 1e-9:
            heapq.heappush(self.events, (closes, _WINDOW, -1, 0))
            closes += self.scenario.window_s
        while self.events:
            at, kind, key, _ = heapq.heappop(self.events)
            self._advance(at)
            if kind == _WINDOW:
                self._close_window(at)
            elif at >= end:
                continue
            elif kind == _ARRIVAL:
                self._ask(key)
            else:
                self._due(key)
        return SimResult(sorted(self.started, key=lambda item: item.start), self.engine.windows)

    def _ask(self, key: int) -> None:
        """Ask the policy how much longer this execution should wait, and schedule it."""
        pending = self.engine.queued[key]
        extra_ms = self.policy(pending, self.engine) if self.policy else 0.0
        if extra_ms > 0:
            pending = Pending(
                pending.query_id, pending.queued, pending.due + extra_ms / 1000, pending.delays + 1
            )
            self.engine.queued[key] = pending
        heapq.heappush(self.events, (max(pending.due, self.engine.now), _DUE, key, pending.delays))

    def _due(self, key: int) -> None:
        pending = self.engine.queued[key]
        if pending.delays > 0 and self.policy and self._asked_again(key, pending):
            return
        del self.engine.queued[key]
        now = self.engine.now
        execution = Execution(pending.query_id, pending.queued, now, now + self.durations[key])
        self.started.append(execution)
        self.live.append(execution)
        self.engine.running.append(execution)
        heapq.heappush(self.ending, (execution.end, key, execution))

    def _asked_again(self, key: int, pending: Pending) -> bool:
        """Whether the policy postpones a postponed execution once more, now it is due."""
        extra_ms = self.policy(pending, self.engine) if self.policy else 0.0
        if extra_ms <= 0:
            return False
        self.engine.queued[key] = Pending(
            pending.query_id, pending.queued, self.engine.now + extra_ms / 1000, pending.delays + 1
        )
        heapq.heappush(
            self.events, (self.engine.now + extra_ms / 1000, _DUE, key, pending.delays + 1)
        )
        return True

    def _advance(self, at: float) -> None:
        """Move the clock, and the executions that ended by then to the finished list."""
        self.engine.now = at
        while self.ending and self.ending[0][0] <= at:
            _, _, execution = heapq.heappop(self.ending)
            self.engine.running.remove(execution)
            self.engine.finished.append(execution)

    def _close_window(self, closes: float) -> None:
        opens = closes - self.scenario.window_s
        running = [
            Running(self.scenario.query(item.query_id), item.start, item.end)
            for item in self.live
            if item.end > opens
        ]
        samples = self.database.samples(running, opens, closes, self.step_s)
        window = aggregate(samples, opens, closes)
        self.engine.windows.append(window)
        self.live = [item for item in self.live if item.end > closes]
        if self.on_window:
            self.on_window(window, self.engine)

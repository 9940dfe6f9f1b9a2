"""The pacer: learns each query's cost and duration from what the monitor captures, and
decides how long to delay each newly queued execution.

It is the same object on the virtual clock (``bench/pacing.py``, hours in seconds) and in
``pacer monitor --pace`` against a real server, so what the benchmark measures is what runs.
Costs come from ``CostEstimator`` (window averages against exposure); durations are an
exponentially weighted mean per query; placement is ``PacingPlan``. Its state is a plain
dict (``to_state``/``from_state``), so a restarted pacer resumes with what it had learnt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pacer.domain.estimation import CostEstimator, Span
from pacer.domain.pacing import Cost, PacingPlan
from pacer.domain.resources import RESOURCES, ResourceWindow

#: Weight of the newest duration in the running mean: recent enough to follow drift.
DURATION_WEIGHT = 0.1


@dataclass(frozen=True)
class PacerConfig:
    target: float = 70.0
    window_s: float = 30.0
    #: No execution waits longer than this (nothing starves, even when overloaded).
    max_delay_s: float = 60.0
    #: Assumed duration of a query never seen finish.
    unknown_duration_s: float = 1.0
    #: Costs are taken at their estimate plus this many standard errors: a little caution
    #: while the estimate is young, none once it has settled.
    caution: float = 0.5
    #: Highest planned instantaneous load: stops postponed work herding at a window boundary.
    ceiling: float | None = 100.0


@dataclass
class Pacer:
    config: PacerConfig = field(default_factory=PacerConfig)
    estimator: CostEstimator = field(default_factory=CostEstimator)
    durations: dict[str, float] = field(default_factory=dict)
    plan: PacingPlan = field(init=False)
    #: run id -> (planned start, duration, cost) still committed to the plan.
    committed: dict[str, tuple[float, float, Cost]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.plan = PacingPlan(
            self.config.target, self.config.window_s, ceiling=self.config.ceiling
        )

    def learn(self, windows: Sequence[ResourceWindow], executions: Sequence[Span]) -> None:
        """Feed closed windows and the executions around them; refreshes the baseline."""
        self.estimator.update(windows, executions)
        if self.estimator.query_ids:
            baseline = [self.estimator.baseline(r).value for r in RESOURCES]
            self.plan.baseline = Cost(*baseline)

    def finished(self, run_id: str, query_id: str | None, started: float, ended: float) -> None:
        """An execution ended: learn its duration and take back the load it no longer uses."""
        if query_id is not None:
            seen = ended - started
            old = self.durations.get(query_id)
            self.durations[query_id] = seen if old is None else old + DURATION_WEIGHT * (seen - old)
        planned = self.committed.pop(run_id, None)
        if planned is not None:
            start, duration, cost = planned
            self.plan.remove(start, duration, cost)
            self.plan.add(started, max(0.0, ended - started), cost)

    def started(self, run_id: str, at: float) -> None:
        """An execution started (perhaps not when planned): move its load to the real start."""
        planned = self.committed.get(run_id)
        if planned is not None and abs(planned[0] - at) > 1e-3:
            start, duration, cost = planned
            self.plan.remove(start, duration, cost)
            self.plan.add(at, duration, cost)
            self.committed[run_id] = (at, duration, cost)

    def decide(self, run_id: str, query_id: str | None, due: float, now: float) -> float:
        """Seconds to delay an execution due at ``due`` (0: let it start as scheduled)."""
        self.plan.forget_before(now - self.config.window_s)
        duration = self.durations.get(query_id or "", self.config.unknown_duration_s)
        cost = self.cost(query_id)
        placed = self.plan.place(due, duration, cost, self.config.max_delay_s)
        self.committed[run_id] = (placed.start, duration, cost)
        return placed.delayed_s

    def cost(self, query_id: str | None) -> Cost:
        estimate = self.estimator.estimate(query_id or "")
        values = [
            max(0.0, c.value + self.config.caution * c.uncertainty)
            for c in (estimate.cost(r) for r in RESOURCES)
        ]
        return Cost(*values)

    def to_state(self) -> dict[str, Any]:
        return {
            "durations": dict(self.durations),
            "committed": {k: [s, d, list(c.values())] for k, (s, d, c) in self.committed.items()},
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Durations and open commitments back from ``to_state``; the estimator relearns from
        the captured windows and executions (it skips windows it has already seen)."""
        self.durations = {str(k): float(v) for k, v in state.get("durations", {}).items()}
        for run_id, (start, duration, values) in state.get("committed", {}).items():
            cost = Cost(*values)
            self.committed[run_id] = (start, duration, cost)
            self.plan.add(start, duration, cost)

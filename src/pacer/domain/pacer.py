"""The pacer: learns each query's cost and duration from what the monitor captures, and
decides how long to delay each newly queued execution.

It is the same object on the virtual clock (``bench/pacing.py``, hours in seconds) and in
``pacer monitor --pace`` against a real server, so what the benchmark measures is what runs.
Costs come from ``CostEstimator`` (window averages against exposure); durations are an
exponentially weighted mean per query; placement is ``PacingPlan``. Its state is a plain
dict (``to_state``/``from_state``), so a restarted pacer resumes with what it had learnt.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pacer.domain.estimation import Cost as Estimate
from pacer.domain.estimation import CostEstimator, Span
from pacer.domain.pacing import Cost, PacingPlan
from pacer.domain.resources import RESOURCES, ResourceWindow

#: Weight of the newest duration in the running mean: recent enough to follow drift.
DURATION_WEIGHT = 0.1
#: Decisions kept for the audit until taken: a pacer nobody audits (the benchmark) stays small.
AUDIT_BOUND = 20_000


@dataclass(frozen=True)
class PacerConfig:
    target: float = 70.0
    window_s: float = 30.0
    #: No execution waits longer than this (nothing starves, even when overloaded).
    max_delay_s: float = 60.0
    #: A shorter (or longer) maximum delay for some query ids: work whose caller is waiting
    #: is bounded tighter than a nightly export.
    max_delay_by_query: Mapping[str, float] = field(default_factory=dict)
    #: Assumed duration of a query never seen finish.
    unknown_duration_s: float = 1.0
    #: Costs are taken at their estimate plus this many standard errors: a little caution
    #: while the estimate is young, none once it has settled.
    caution: float = 0.5
    #: Highest planned instantaneous load: stops postponed work herding at a window boundary.
    ceiling: float | None = 100.0

    def max_delay_for(self, query_id: str | None) -> float:
        """The longest this query's executions may be held."""
        if query_id is None:
            return self.max_delay_s
        return self.max_delay_by_query.get(query_id, self.max_delay_s)


@dataclass(frozen=True)
class Decision:
    """One execution placed: what was decided, when, and the figures it was decided on."""

    run_id: str
    query_id: str | None
    due: float
    start: float
    delay_s: float
    #: The cost planned for it (estimate, drawn to the prior, plus caution).
    cost: Cost
    #: The forecast average of the window its start lands in, itself included.
    forecast: tuple[float, float, float]
    decided_at: float


@dataclass
class Pacer:
    config: PacerConfig = field(default_factory=PacerConfig)
    estimator: CostEstimator = field(default_factory=CostEstimator)
    durations: dict[str, float] = field(default_factory=dict)
    plan: PacingPlan = field(init=False)
    #: run id -> (planned start, duration, cost) still committed to the plan.
    committed: dict[str, tuple[float, float, Cost]] = field(default_factory=dict)
    #: run id -> query id of each commitment, so its cost follows the estimates.
    queries: dict[str, str | None] = field(default_factory=dict)
    #: Decisions not yet taken by ``take_decisions`` (the newest ``AUDIT_BOUND``).
    decisions: deque[Decision] = field(default_factory=lambda: deque(maxlen=AUDIT_BOUND))
    #: Planned cost per query id, until the estimator learns again.
    _costs: dict[str | None, Cost] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.plan = PacingPlan(
            self.config.target, self.config.window_s, ceiling=self.config.ceiling
        )

    def learn(self, windows: Sequence[ResourceWindow], executions: Sequence[Span]) -> None:
        """Feed closed windows and the executions around them; refreshes the baseline."""
        if not self.estimator.update(windows, executions):
            return
        self._costs.clear()
        if self.estimator.query_ids:
            baseline = [self.estimator.baseline(r).value for r in RESOURCES]
            self.plan.baseline = Cost(*baseline)
        self._recost(self.estimator.reference or 0.0)

    def _recost(self, now: float) -> None:
        """Commitments still ahead are re-planned at the new estimates: a cost guessed while
        little was known would otherwise hold its room in the plan until the execution ends."""
        for run_id, (start, duration, old) in self.committed.items():
            if run_id not in self.queries or start + duration <= now:
                continue
            new = self.cost(self.queries[run_id])
            if new != old:
                self.plan.remove(start, duration, old)
                self.plan.add(start, duration, new)
                self.committed[run_id] = (start, duration, new)

    def finished(self, run_id: str, query_id: str | None, started: float, ended: float) -> None:
        """An execution ended: learn its duration and take back the load it no longer uses."""
        if query_id is not None:
            seen = ended - started
            old = self.durations.get(query_id)
            self.durations[query_id] = seen if old is None else old + DURATION_WEIGHT * (seen - old)
        planned = self.committed.pop(run_id, None)
        self.queries.pop(run_id, None)
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
        placed = self.plan.place(due, duration, cost, self.config.max_delay_for(query_id))
        self.committed[run_id] = (placed.start, duration, cost)
        self.queries[run_id] = query_id
        forecast = self.plan.average(self.plan.window_of(placed.start))
        self.decisions.append(
            Decision(run_id, query_id, due, placed.start, placed.delayed_s, cost, forecast, now)
        )
        return placed.delayed_s

    def take_decisions(self) -> list[Decision]:
        """The decisions made since the last call, oldest first (for the audit)."""
        taken = list(self.decisions)
        self.decisions.clear()
        return taken

    def cost(self, query_id: str | None) -> Cost:
        """The cost planned for one execution: its estimate drawn towards the typical query's
        by how little the windows have told about it yet, plus ``caution`` standard errors."""
        if query_id not in self._costs:
            self._costs[query_id] = self._planned(query_id)
        return self._costs[query_id]

    def _planned(self, query_id: str | None) -> Cost:
        if self.estimator.reference is None:
            # No window has closed yet: no cost can be told apart from another, and the wide
            # prior (the cap, taken with caution: 50 points each) held the whole first
            # window's work and spilled it into the next ones. Work runs as it would unpaced
            # until the first window speaks; its commitments are re-costed then.
            return Cost()
        estimate = self.estimator.estimate(query_id or "")
        values = []
        for resource in RESOURCES:
            cost = estimate.cost(resource)
            if estimate.known:
                cost = shrunk(cost, self.estimator.prior(resource))
            values.append(max(0.0, cost.value + self.config.caution * cost.uncertainty))
        return Cost(*values)

    def to_state(self) -> dict[str, Any]:
        return {
            "durations": dict(self.durations),
            "committed": {k: [s, d, list(c.values())] for k, (s, d, c) in self.committed.items()},
            "queries": dict(self.queries),
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Durations and open commitments back from ``to_state``; the estimator relearns from
        the captured windows and executions (it skips windows it has already seen)."""
        self.durations = {str(k): float(v) for k, v in state.get("durations", {}).items()}
        for run_id, (start, duration, values) in state.get("committed", {}).items():
            cost = Cost(*values)
            self.committed[run_id] = (start, duration, cost)
            self.plan.add(start, duration, cost)
        self.queries = {
            str(run_id): query_id
            for run_id, query_id in state.get("queries", {}).items()
            if run_id in self.committed
        }


def shrunk(estimate: Estimate, prior: Estimate) -> Estimate:
    """The precision-weighted mean of an estimate and the prior (both taken as Gaussian).

    A query seen in a handful of windows, or whose exposure is always tiny, is barely told
    apart from the others: its own estimate can sit anywhere with an enormous standard error,
    and taken with ``caution`` it claimed hundreds of points and held everything behind it.
    Drawn towards the typical query's cost, it is planned like one until its windows speak;
    a well-measured estimate (small error) is left as it is.
    """
    if estimate.uncertainty <= 0 or prior.uncertainty <= 0:
        return estimate if estimate.uncertainty <= prior.uncertainty else prior
    own, other = estimate.uncertainty**-2, prior.uncertainty**-2
    value = (own * estimate.value + other * prior.value) / (own + other)
    return Estimate(value, (own + other) ** -0.5)

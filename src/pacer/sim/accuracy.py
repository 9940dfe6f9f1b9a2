"""How close cost estimates are to a scenario's hidden true costs.

Shared by the tests and ``bench/estimation.py`` so the asserted figure and the published one
are computed the same way: per resource, the mean absolute percentage error over the queries
that carry at least 2 % of that resource's load (a query that barely moves a resource cannot
be measured on it, and would not matter to the pacer if it could).
"""

from __future__ import annotations

from dataclasses import dataclass

from pacer.domain.estimation import CostEstimator
from pacer.domain.resources import RESOURCES, Resource
from pacer.sim.scenarios import Scenario
from pacer.sim.virtual import SimResult, simulate

__all__ = ["Accuracy", "accuracy", "estimate_scenario", "replay"]


@dataclass(frozen=True)
class Accuracy:
    """One resource's error: the mean over the queries that count, and the worst of them."""

    resource: Resource
    mape: float
    worst_query: str
    worst: float
    errors: dict[str, float]


def replay(result: SimResult, estimator: CostEstimator, batch: int = 10) -> None:
    """Feed the windows to the estimator ``batch`` at a time, as a monitor polling would."""
    executions = result.executions
    for first in range(0, len(result.windows), batch):
        windows = result.windows[first : first + batch]
        opens, closes = windows[0].start, windows[-1].end
        overlapping = [item for item in executions if item.start < closes and item.end > opens]
        estimator.update(windows, overlapping)


def accuracy(
    scenario: Scenario, estimator: CostEstimator, hours: float, share: float = 0.02
) -> dict[Resource, Accuracy]:
    """Each resource's error against the true costs at ``hours`` (where drift has taken them)."""
    load, truth = scenario.load(hours), scenario.true_costs(hours)
    report: dict[Resource, Accuracy] = {}
    for resource in RESOURCES:
        total = sum(shares[resource] for shares in load.values())
        errors = {
            query_id: abs(
                estimator.estimate(query_id).cost(resource).value - truth[query_id][resource]
            )
            / truth[query_id][resource]
            for query_id, shares in load.items()
            if shares[resource] >= share * total
        }
        worst = max(errors, key=errors.__getitem__)
        mape = sum(errors.values()) / len(errors)
        report[resource] = Accuracy(resource, mape, worst, errors[worst], errors)
    return report


def estimate_scenario(
    scenario: Scenario, hours: float = 2.0, estimator: CostEstimator | None = None
) -> tuple[CostEstimator, dict[Resource, Accuracy]]:
    """Simulate ``hours`` without pacing, estimate from what was observed, and score it."""
    estimator = estimator or CostEstimator()
    replay(simulate(scenario, hours), estimator)
    return estimator, accuracy(scenario, estimator, hours)

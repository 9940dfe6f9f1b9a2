"""Query types with hidden true costs, and a database whose utilization follows from them.

Utilization per resource is ``baseline + Σ cost of each running execution``, clipped to
[0, 100] after Gaussian noise: a saturated resource reads exactly 100, as a real CPU gauge
does, which is what lets the estimator recognize a censored window from its maximum.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from pacer.domain.resources import RESOURCES, Resource, Sample

__all__ = ["Duration", "QueryType", "Running", "SimDatabase"]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Duration:
    """A lognormal duration with this mean (seconds) and log-space sigma; sigma 0 is fixed."""

    mean_s: float
    sigma: float = 0.0

    def draw(self, rng: np.random.Generator, count: int) -> FloatArray:
        if self.sigma == 0:
            return np.full(count, self.mean_s)
        # The lognormal's mean is exp(mu + sigma²/2): pick mu so the mean is the one asked for.
        mu = math.log(self.mean_s) - self.sigma**2 / 2
        return rng.lognormal(mu, self.sigma, count)


@dataclass(frozen=True)
class QueryType:
    """One query with its true costs: percentage points of each resource while it runs.

    ``drift_per_hour`` makes it heavier with time (0.25 adds a quarter of its initial costs
    per hour), the way a table that grows makes a scan heavier.
    """

    query_id: str
    cpu: float
    io: float
    memory: float
    duration: Duration
    drift_per_hour: float = 0.0

    def cost(self, resource: Resource, hours: float) -> float:
        """The true cost after ``hours`` of simulated time."""
        base: float = getattr(self, resource)
        return base * self.multiplier(hours)

    def multiplier(self, hours: float) -> float:
        return 1.0 + self.drift_per_hour * hours

    def costs(self, hours: float) -> dict[Resource, float]:
        return {resource: self.cost(resource, hours) for resource in RESOURCES}


@dataclass(frozen=True)
class Running:
    """An execution the database is running: what it is and when it started."""

    query: QueryType
    start: float
    end: float


@dataclass
class SimDatabase:
    """The database's utilization, from the executions it runs.

    ``wander`` is a slow random walk of background activity (autovacuum, checkpoints) added to
    the baseline: it is what makes a fitted intercept necessary and exact recovery impossible.
    """

    baseline: Mapping[Resource, float]
    noise: float = 2.0
    seed: int = 0
    wander: float = 0.0
    epoch: float = 0.0
    cap: float = 100.0
    _rng: np.random.Generator = field(init=False, repr=False)
    _offsets: dict[Resource, float] = field(init=False, default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)

    def hours(self, at: float) -> float:
        return (at - self.epoch) / 3600

    def utilization(self, running: Iterable[Running], at: float) -> dict[Resource, float]:
        """Noiseless demand at one instant, capped: what the executions running ask for."""
        active = [item for item in running if item.start <= at < item.end]
        return {
            resource: min(
                self.cap,
                self.baseline[resource]
                + sum(item.query.cost(resource, self.hours(item.start)) for item in active),
            )
            for resource in RESOURCES
        }

    def sample(self, running: Iterable[Running], at: float) -> Sample:
        """One noisy reading at one instant (the real-time clock samples this way)."""
        demand = self.utilization(running, at)
        values = {resource: self._read(np.array([demand[resource]]))[0] for resource in RESOURCES}
        return Sample(at=at, **values)

    def samples(
        self, running: Sequence[Running], start: float, end: float, step: float
    ) -> list[Sample]:
        """Readings of every interval of ``step`` seconds in ``(start, end]``.

        Each reading is the average over its interval, as a gauge computed from counters is,
        so an execution of half a millisecond still moves the interval it ran in.
        """
        count = round((end - start) / step)
        edges: FloatArray = start + step * np.arange(count + 1, dtype=np.float64)
        overlap = _overlaps(running, edges) / step
        columns: dict[Resource, FloatArray] = {}
        for resource in RESOURCES:
            costs = np.array(
                [item.query.cost(resource, self.hours(item.start)) for item in running]
            )
            demand = self.baseline[resource] + (costs @ overlap if len(running) else 0.0)
            columns[resource] = self._read(demand + self._drift(resource, count, step))
        return [
            Sample(
                float(edges[i + 1]),
                float(columns["cpu"][i]),
                float(columns["io"][i]),
                float(columns["memory"][i]),
            )
            for i in range(count)
        ]

    def _read(self, demand: FloatArray) -> FloatArray:
        noisy = demand + self._rng.normal(0.0, self.noise, demand.shape)
        return np.clip(noisy, 0.0, self.cap)

    def _drift(self, resource: Resource, count: int, step: float) -> FloatArray:
        """The background wander over ``count`` intervals: a mean-reverting walk (10 min scale)."""
        if self.wander == 0:
            return np.zeros(count)
        keep = math.exp(-step / 600)
        shocks = self._rng.normal(0.0, self.wander * math.sqrt(1 - keep**2), count)
        offset = self._offsets.get(resource, 0.0)
        path = np.empty(count)
        for i in range(count):
            offset = keep * offset + shocks[i]
            path[i] = offset
        self._offsets[resource] = offset
        return path


def _overlaps(running: Sequence[Running], edges: FloatArray) -> FloatArray:
    """Seconds each execution ran inside each interval between consecutive edges."""
    overlap = np.zeros((len(running), len(edges) - 1))
    for row, item in enumerate(running):
        lower = np.maximum(edges[:-1], item.start)
        upper = np.minimum(edges[1:], item.end)
        overlap[row] = np.clip(upper - lower, 0.0, None)
    return overlap

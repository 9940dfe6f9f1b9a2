"""Named scenarios: one seed, one query mix, one set of generators each.

The demo, the tests and the benchmarks use these by name, so a figure in BENCHMARKS.md and a
test's threshold refer to the same traffic. ``docs/SCENARIOS.md`` describes each one; the
numbers there come from ``Scenario.demand``, which computes them from the mix below.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from pacer.domain.resources import RESOURCES, Resource
from pacer.sim.model import Duration, QueryType, SimDatabase
from pacer.sim.workload import Arrival, ArrivalGenerator, Bursts, DailyWave, Poisson, Rare, arrivals

__all__ = ["EPOCH", "SCENARIOS", "STANDARD", "Scenario", "scenario"]

#: 2026-01-01T00:00:00Z: every scenario starts at midnight UTC of this day.
EPOCH = 1_767_225_600.0


@dataclass(frozen=True)
class Scenario:
    """A reproducible workload on a simulated database."""

    name: str
    description: str
    seed: int
    queries: tuple[QueryType, ...]
    generators: tuple[ArrivalGenerator, ...]
    baseline: Mapping[Resource, float] = field(
        default_factory=lambda: {"cpu": 12.0, "io": 10.0, "memory": 22.0}
    )
    noise: float = 2.0
    wander: float = 0.2
    window_s: float = 30.0
    epoch: float = EPOCH

    def query(self, query_id: str) -> QueryType:
        return self._by_id()[query_id]

    def arrivals(self, start: float, end: float) -> list[Arrival]:
        return arrivals(self.generators, self._by_id(), start, end, self.seed)

    def database(self) -> SimDatabase:
        return SimDatabase(
            dict(self.baseline), self.noise, self.seed + 1, self.wander, epoch=self.epoch
        )

    def true_costs(self, hours: float) -> dict[str, dict[Resource, float]]:
        """Each query's true costs after ``hours``: what the estimator tries to recover."""
        return {query.query_id: query.costs(hours) for query in self.queries}

    def demand(self, hours: float = 0.0) -> dict[Resource, float]:
        """Mean utilization the traffic asks for at ``hours`` (before the cap), in percent."""
        load = self.load(hours)
        return {
            resource: self.baseline[resource] + sum(load[q][resource] for q in load)
            for resource in RESOURCES
        }

    def load(self, hours: float = 0.0) -> dict[str, dict[Resource, float]]:
        """Each query's mean share of each resource: rate * mean duration * cost."""
        concurrency: dict[str, float] = {}
        for generator in self.generators:
            rate = _mean_rate(generator)
            query = self.query(generator.query_id)
            concurrency[query.query_id] = (
                concurrency.get(query.query_id, 0.0) + rate * query.duration.mean_s
            )
        return {
            query_id: {r: share * self.query(query_id).cost(r, hours) for r in RESOURCES}
            for query_id, share in concurrency.items()
        }

    def _by_id(self) -> dict[str, QueryType]:
        return {query.query_id: query for query in self.queries}


def _mean_rate(generator: ArrivalGenerator) -> float:
    if isinstance(generator, Poisson):
        return generator.rate_per_s
    if isinstance(generator, Rare):
        return 1.0 / generator.every_s
    if isinstance(generator, Bursts):
        busy = generator.length_s / generator.every_s
        return generator.base_rate + busy * generator.burst_rate
    if isinstance(generator, DailyWave):
        return generator.mean_rate
    raise TypeError(f"unknown generator {generator!r}")


QUERIES = (
    QueryType("lookup", 5.0, 3.0, 1.0, Duration(0.05, 0.5)),
    QueryType("orders", 10.0, 5.0, 3.0, Duration(0.3, 0.6)),
    QueryType("search", 6.0, 10.0, 2.0, Duration(0.8, 0.7)),
    QueryType("report", 15.0, 18.0, 8.0, Duration(4.0, 0.4)),
    QueryType("export", 6.0, 20.0, 5.0, Duration(10.0, 0.3)),
    QueryType("analytics", 20.0, 10.0, 15.0, Duration(20.0, 0.5)),
    QueryType("maintenance", 4.0, 6.0, 18.0, Duration(2.0, 0.3)),
    QueryType("audit", 22.0, 18.0, 12.0, Duration(30.0, 0.2)),
    QueryType("ping", 2.0, 0.5, 0.5, Duration(0.0005)),
)

#: Mean arrivals per second of each query in the steady mix.
RATES = {
    "lookup": 3.0,
    "orders": 2.0,
    "search": 0.8,
    "report": 0.15,
    "export": 0.03,
    "analytics": 0.015,
    "maintenance": 0.1,
    "ping": 2.0,
}
AUDIT_EVERY_S = 900.0


def _steady(scale: float = 1.0) -> tuple[ArrivalGenerator, ...]:
    generators: list[ArrivalGenerator] = [Poisson(q, rate * scale) for q, rate in RATES.items()]
    return (*generators, Rare("audit", AUDIT_EVERY_S))


def _bursty() -> tuple[ArrivalGenerator, ...]:
    calm = {q: rate for q, rate in RATES.items() if q not in ("orders", "report")}
    return (
        *(Poisson(q, rate) for q, rate in calm.items()),
        Rare("audit", AUDIT_EVERY_S),
        Bursts("orders", base_rate=1.5, burst_rate=20.0, every_s=600.0, length_s=60.0),
        Bursts("report", base_rate=0.07, burst_rate=1.0, every_s=600.0, length_s=45.0),
    )


def _daily() -> tuple[ArrivalGenerator, ...]:
    # One "day" per simulated hour, peaking mid-hour, so 2 hours hold 2 full waves.
    return (
        *(
            DailyWave(q, rate, 0.7, day_s=3600.0, peak_s=EPOCH + 1800.0)
            for q, rate in RATES.items()
        ),
        Rare("audit", AUDIT_EVERY_S),
    )


def _drifting() -> tuple[QueryType, ...]:
    heavier = {"report": 0.5, "orders": 0.25}
    return tuple(replace(q, drift_per_hour=heavier.get(q.query_id, 0.0)) for q in QUERIES)


SCENARIOS: dict[str, Scenario] = {
    scenario.name: scenario
    for scenario in (
        Scenario(
            "steady",
            "Poisson traffic of the whole mix, about 40 % on each resource.",
            11,
            QUERIES,
            _steady(),
        ),
        Scenario(
            "bursty",
            "Steady mix with bursts of orders and reports; the mean stays under 70 %.",
            12,
            QUERIES,
            _bursty(),
        ),
        Scenario(
            "daily",
            "The mix on a daily wave compressed to one hour: troughs near 20 %, peaks near 60 %.",
            13,
            QUERIES,
            _daily(),
        ),
        Scenario(
            "drift",
            "Steady mix where report grows 50 % and orders 25 % heavier per hour.",
            14,
            _drifting(),
            _steady(),
        ),
        Scenario(
            "overloaded",
            "The mix at 2.2 times its steady rates: demand above the 70 % target.",
            15,
            QUERIES,
            _steady(2.2),
        ),
    )
}

#: The scenarios every estimator and pacer figure is reported on.
STANDARD = tuple(SCENARIOS)


def scenario(name: str) -> Scenario:
    """The scenario of that name (KeyError lists the known names)."""
    try:
        return SCENARIOS[name]
    except KeyError:
        raise KeyError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}") from None

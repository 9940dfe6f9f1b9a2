"""The simulated database running in real time inside a server: the ``sim`` action registers
each execution here while it runs, and the ``sim`` sampler reads utilization from it.

One object shared by the two adapters, so what the sampler reports is exactly what the
executions the server really ran would cost, with the scenario's hidden true costs.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from pacer.domain.resources import Sample
from pacer.sim.model import QueryType, Running, SimDatabase
from pacer.sim.scenarios import Scenario


@dataclass
class LiveSim:
    scenario: Scenario
    database: SimDatabase = field(init=False)
    _running: list[Running] = field(default_factory=list, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _rng: np.random.Generator = field(init=False)
    _last_at: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.database = self.scenario.database()
        self._rng = np.random.default_rng(self.scenario.seed + 2)

    def query(self, query_id: str) -> QueryType:
        return self.scenario.query(query_id)

    def duration(self, query: QueryType) -> float:
        """A duration drawn from the query type's distribution."""
        with self._lock:
            return float(query.duration.draw(self._rng, 1)[0])

    def started(self, query: QueryType, start: float, end: float) -> Running:
        item = Running(query, start, end)
        with self._lock:
            self._running.append(item)
        return item

    def sample(self, at: float) -> Sample:
        """The average utilization since the previous sample (sub-ms executions count)."""
        with self._lock:
            last = self._last_at if self._last_at is not None else at - 1.0
            self._last_at = at
            seen = [r for r in self._running if r.end > last and r.start < at]
            self._running = [r for r in self._running if r.end > at]
        if at <= last:
            return self.database.sample(seen, at)
        return self.database.samples(seen, last, at, at - last)[-1]

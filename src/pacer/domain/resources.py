"""Resource windows: what the database reports of its CPU, IO and memory use.

The database does not report each instant; it reports closed windows (30 s by default) with
the average, minimum and maximum of each resource, in percent. The cost estimator and the pacer
work from these windows alone, so the simulated database must produce exactly the same shape
as the real ``GET /resources``, which is why aggregation lives here and not in the simulator.

Times are epoch seconds as floats: the estimator does its arithmetic on arrays of them, and an
adapter converts a ``datetime`` once at the edge rather than every window many times over.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pacer.domain.errors import InvalidInput

__all__ = [
    "RESOURCES",
    "Resource",
    "ResourceWindow",
    "Sample",
    "Stats",
    "aggregate",
]

Resource = Literal["cpu", "io", "memory"]
RESOURCES: tuple[Resource, ...] = ("cpu", "io", "memory")


@dataclass(frozen=True)
class Stats:
    """Average, minimum and maximum of one resource over one window, in percent."""

    average: float
    min: float
    max: float

    def to_contract(self) -> dict[str, float]:
        return {"average": self.average, "min": self.min, "max": self.max}

    @classmethod
    def from_contract(cls, data: Mapping[str, Any]) -> Stats:
        return cls(float(data["average"]), float(data["min"]), float(data["max"]))


@dataclass(frozen=True)
class Sample:
    """The utilization of each resource over one short sampling interval ending at ``at``."""

    at: float
    cpu: float
    io: float
    memory: float


@dataclass(frozen=True)
class ResourceWindow:
    """One closed window ``[start, end)`` of resource use."""

    start: float
    end: float
    cpu: Stats
    io: Stats
    memory: Stats

    @property
    def length(self) -> float:
        return self.end - self.start

    @property
    def timestamp_ms(self) -> int:
        """The epoch milliseconds of the update, which is when the window closed."""
        return round(self.end * 1000)

    def stats(self, resource: Resource) -> Stats:
        stats: Stats = getattr(self, resource)
        return stats

    def to_contract(self) -> dict[str, Any]:
        """Exactly the JSON body of ``GET /resources``."""
        body: dict[str, Any] = {name: self.stats(name).to_contract() for name in RESOURCES}
        body["timestamp"] = self.timestamp_ms
        return body

    @classmethod
    def from_contract(cls, data: Mapping[str, Any], length_s: float = 30.0) -> ResourceWindow:
        """The window a ``GET /resources`` body describes; its length is configuration."""
        end = int(data["timestamp"]) / 1000
        return cls(
            start=end - length_s,
            end=end,
            cpu=Stats.from_contract(data["cpu"]),
            io=Stats.from_contract(data["io"]),
            memory=Stats.from_contract(data["memory"]),
        )


def aggregate(samples: Sequence[Sample], start: float, end: float) -> ResourceWindow:
    """The window ``[start, end)`` summarizing the samples taken in it (``start < at <= end``).

    A sample stamped ``at`` covers the interval ending at ``at``, so the one stamped exactly
    ``end`` still belongs to this window and the one stamped ``start`` to the previous one.
    """
    inside = [sample for sample in samples if start < sample.at <= end]
    if not inside:
        raise InvalidInput("samples", f"no sample in the window ({start}, {end}]")
    return ResourceWindow(
        start=start,
        end=end,
        cpu=_stats([sample.cpu for sample in inside]),
        io=_stats([sample.io for sample in inside]),
        memory=_stats([sample.memory for sample in inside]),
    )


def _stats(values: Sequence[float]) -> Stats:
    return Stats(average=sum(values) / len(values), min=min(values), max=max(values))

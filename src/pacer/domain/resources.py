"""Resource windows: what the database reports of its CPU, IO and memory use.

The database does not report each instant; it reports closed windows (30 s by default) with
the average, minimum and maximum of each resource, in percent. The cost estimator and the pacer
work from these windows alone, so the simulated database must produce exactly the same shape
as the real ``GET /resources``, which is why aggregation lives here and not in the simulator.

Exposure (how many executions of each query ran, on average, in each window) is here too: it
is what links the windows to the executions, and the simulator and the estimator both use it.

Times are epoch seconds as floats: the estimator does its arithmetic on arrays of them, and an
adapter converts a ``datetime`` once at the edge rather than every window many times over.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from pacer.domain.errors import InvalidInput

__all__ = [
    "RESOURCES",
    "Exposure",
    "Interval",
    "Resource",
    "ResourceWindow",
    "Sample",
    "Span",
    "Stats",
    "Window",
    "aggregate",
    "exposure",
]

Resource = Literal["cpu", "io", "memory"]
RESOURCES: tuple[Resource, ...] = ("cpu", "io", "memory")
FloatArray = NDArray[np.float64]


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


class Span(Protocol):
    """An execution as the monitor knows it: ``end`` is None while it runs."""

    @property
    def query_id(self) -> str | None: ...

    @property
    def start(self) -> float: ...

    @property
    def end(self) -> float | None: ...


@dataclass(frozen=True)
class Exposure:
    """Average concurrency of each query id (columns) in each window (rows)."""

    query_ids: tuple[str, ...]
    matrix: FloatArray


class Interval(Protocol):
    """Anything with a start and an end: a resource window, or a slice of one."""

    @property
    def start(self) -> float: ...

    @property
    def end(self) -> float: ...


@dataclass(frozen=True)
class Window:
    """A bare interval: a slice of a resource window, say."""

    start: float
    end: float


def exposure(executions: Sequence[Span], windows: Sequence[Interval]) -> Exposure:
    """How many executions of each query ran, on average, during each window.

    Windows must be in time order and must not overlap. An execution still running is
    counted up to the end of each window it overlaps.
    """
    spans = [item for item in executions if item.query_id is not None]
    query_ids = tuple(sorted({str(item.query_id) for item in spans}))
    matrix = np.zeros((len(windows), len(query_ids)))
    if not windows or not spans:
        return Exposure(query_ids, matrix)
    column = {query_id: index for index, query_id in enumerate(query_ids)}
    starts = np.array([window.start for window in windows])
    ends = np.array([window.end for window in windows])
    begun = np.array([item.start for item in spans])
    ended = np.array([math.inf if item.end is None else item.end for item in spans])
    columns = np.array([column[str(item.query_id)] for item in spans])
    first = np.searchsorted(ends, begun, side="right")
    last = np.searchsorted(starts, ended, side="left")
    # Most executions fall inside one window: those are added in one vectorized step.
    single = last == first + 1
    rows = first[single]
    seconds = np.minimum(ended[single], ends[rows]) - np.maximum(begun[single], starts[rows])
    np.add.at(matrix, (rows, columns[single]), np.clip(seconds, 0.0, None))
    for index in np.where(last > first + 1)[0]:
        span = slice(first[index], last[index])
        inside = np.minimum(ends[span], ended[index]) - np.maximum(starts[span], begun[index])
        matrix[span, columns[index]] += np.clip(inside, 0.0, None)
    return Exposure(query_ids, matrix / (ends - starts)[:, None])


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

"""Reproducible traffic: arrival generators, and the arrivals a set of them makes.

Each generator gets its own random stream spawned from the scenario's seed, so adding a
generator to a scenario does not reshuffle the others' traffic, and durations are drawn with
the arrivals (not when an execution starts), so two pacing policies replayed on one scenario
face exactly the same work: a fair comparison with common random numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from pacer.sim.model import FloatArray, QueryType

__all__ = ["Arrival", "ArrivalGenerator", "Bursts", "DailyWave", "Poisson", "Rare", "arrivals"]


@dataclass(frozen=True)
class Arrival:
    """One query queued at ``at``, which will run for ``duration_s`` once it starts."""

    at: float
    query_id: str
    duration_s: float


class ArrivalGenerator(Protocol):
    """Arrival times of one query id; ``times`` must be deterministic for a given ``rng``."""

    @property
    def query_id(self) -> str: ...

    def times(self, start: float, end: float, rng: np.random.Generator) -> FloatArray: ...


@dataclass(frozen=True)
class Poisson:
    """Steady traffic: independent arrivals at ``rate_per_s`` on average."""

    query_id: str
    rate_per_s: float

    def times(self, start: float, end: float, rng: np.random.Generator) -> FloatArray:
        return _poisson(start, end, self.rate_per_s, rng)


@dataclass(frozen=True)
class Rare:
    """A query seen about once every ``every_s`` seconds: the one the estimator knows least."""

    query_id: str
    every_s: float

    def times(self, start: float, end: float, rng: np.random.Generator) -> FloatArray:
        return _poisson(start, end, 1.0 / self.every_s, rng)


@dataclass(frozen=True)
class Bursts:
    """Quiet traffic at ``base_rate`` with bursts at ``burst_rate`` lasting ``length_s``.

    Bursts begin at random, ``every_s`` apart on average (a Poisson process of bursts), like
    a report run by hand or a batch upstream finishing.
    """

    query_id: str
    base_rate: float
    burst_rate: float
    every_s: float
    length_s: float

    def times(self, start: float, end: float, rng: np.random.Generator) -> FloatArray:
        parts = [_poisson(start, end, self.base_rate, rng)]
        for begin in _poisson(start, end, 1.0 / self.every_s, rng):
            parts.append(_poisson(begin, min(end, begin + self.length_s), self.burst_rate, rng))
        return np.sort(np.concatenate(parts))


@dataclass(frozen=True)
class DailyWave:
    """Poisson traffic whose rate follows a sinusoid over a day (which may be compressed).

    The rate is ``mean_rate * (1 + amplitude * cos(2π (t - peak_s) / day_s))``, drawn by
    thinning a Poisson process at the peak rate.
    """

    query_id: str
    mean_rate: float
    amplitude: float
    day_s: float = 86_400.0
    peak_s: float = 50_400.0

    def rate(self, at: float) -> float:
        phase = 2 * math.pi * ((at - self.peak_s) % self.day_s) / self.day_s
        return self.mean_rate * (1 + self.amplitude * math.cos(phase))

    def times(self, start: float, end: float, rng: np.random.Generator) -> FloatArray:
        peak = self.mean_rate * (1 + self.amplitude)
        candidates = _poisson(start, end, peak, rng)
        phases = 2 * np.pi * ((candidates - self.peak_s) % self.day_s) / self.day_s
        keep = rng.random(len(candidates)) * peak < self.mean_rate * (
            1 + self.amplitude * np.cos(phases)
        )
        return candidates[keep]


def arrivals(
    generators: Sequence[ArrivalGenerator],
    queries: Mapping[str, QueryType],
    start: float,
    end: float,
    seed: int,
) -> list[Arrival]:
    """Every arrival of every generator in ``[start, end)``, in time order."""
    streams = np.random.SeedSequence(seed).spawn(len(generators))
    made: list[Arrival] = []
    for generator, stream in zip(generators, streams, strict=True):
        rng = np.random.default_rng(stream)
        times = generator.times(start, end, rng)
        durations = queries[generator.query_id].duration.draw(rng, len(times))
        made.extend(
            Arrival(float(at), generator.query_id, float(duration))
            for at, duration in zip(times, durations, strict=True)
        )
    made.sort(key=lambda arrival: (arrival.at, arrival.query_id))
    return made


def _poisson(start: float, end: float, rate: float, rng: np.random.Generator) -> FloatArray:
    """Arrival times of a Poisson process: a Poisson count, placed uniformly and sorted."""
    if rate <= 0 or end <= start:
        return np.empty(0)
    count = rng.poisson(rate * (end - start))
    return np.sort(rng.uniform(start, end, count))

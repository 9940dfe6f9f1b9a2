"""Per-query cost estimates from execution history and resource windows.

The database reports only closed windows of total utilization; the monitor knows when each
execution started and finished. A window's average is then, to a good approximation,

    average = baseline + sum over queries q of cost_q * exposure_q

where ``exposure_q`` is the average number of executions of ``q`` running during the window
(seconds of ``q`` inside the window / window length). Costs are percentage points of a resource
while one execution runs; fitting them is a linear regression with non-negative coefficients,
solved per resource.

Choices, and what was rejected:
- **Exponentially forgotten sufficient statistics** (``XᵀWX``, ``XᵀWy``) updated window by
  window, rather than refitting all history: the state is small (p² numbers per resource),
  serializable, and old windows fade with a half-life so a query that changes is followed.
- **A linear trend per cost, free only where the data show one**, so a query that grows
  steadily heavier is estimated where it is now, not where it was on average over the memory
  (forgetting alone lags by about 1.4 half lives). A trend whose t-statistic is under
  ``trend_evidence`` (2.5) is held near zero by a heavy ridge: free trends on every cost let a
  steady query's level at the end of the memory swing with the noise (``lookup`` 15-30 % off).
- **The baseline is a random walk** (``baseline_walk`` points per √hour), applied as the
  information filter's prediction step on the same statistics: background work moves it by a
  fraction of a point over minutes, which a constant baseline left in the residuals.
- **Window maxima and minima as extra equations**, linearized at the current fit
  (``domain/extremes.py``), once there are ``MATURITY`` windows per unknown: the extreme
  100 ms sample either caught a short execution or not, which tells a short steady query
  from the baseline far better than averages that barely move.
- **Non-negativity by an exact active-set solve** (Lawson-Hanson on the normal equations) on
  the current level, not by clipping, which would bias every other coefficient.
- **Saturated windows are corrected, not dropped**: a window whose maximum reached the cap
  was clipped at some instant, so its average understates the demand. Dropping them left an
  overloaded database with no data at all; instead the clipped excess is predicted from the
  current estimates and the executions' exact times, and added back. Before any estimate
  exists a saturated window is taken as it reads (a demand at least that high) at a small
  weight (``BOOTSTRAP_WEIGHT``): leaving it out, as at first, left a database saturated from
  its first window with no data at all, and a pacer planning from nothing never lifted the
  saturation; at full weight its low reading lingered for a half-life in the estimates. The
  window maximum is what tells a saturated window apart. The correction is predicted from the
  estimates, so a window that lost much to the cap weighs less (``correction_error``).
- **Uncertainties never below a window's sampling noise**: with fewer windows than unknowns
  the fit is exact and its residual zero, which claimed certainty exactly when nothing was
  known yet.
- A Kalman filter with a random walk per cost was rejected: it needs a process noise per
  query that nobody can set, and it gives the same answer as forgetting least squares for one
  well-chosen value. Only the baseline walks (one setting, the background's wander); drift in
  a cost is the trend's job, gated by evidence. Change detection per query (a CUSUM on the
  residuals, forgetting only after a change) was not needed: with the trend gated and the
  baseline walking, a longer memory did not help (a 1.5 h half-life did slightly worse).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pacer.domain.extremes import expected_maximum
from pacer.domain.regression import Moments, fit_trended, nonnegative_quadratic
from pacer.domain.resources import (
    RESOURCES,
    Exposure,
    FloatArray,
    Resource,
    ResourceWindow,
    Span,
    Window,
    exposure,
)

__all__ = [
    "Cost",
    "CostEstimator",
    "Estimate",
    "Exposure",
    "Span",
    "exposure",
    "nonnegative_quadratic",
]


@dataclass(frozen=True)
class Cost:
    """A cost in percentage points while one execution runs, with its standard error."""

    value: float
    uncertainty: float


@dataclass(frozen=True)
class Estimate:
    """One query's costs; ``known`` is False for a query never seen (the prior is given)."""

    query_id: str
    cpu: Cost
    io: Cost
    memory: Cost
    known: bool

    def cost(self, resource: Resource) -> Cost:
        cost: Cost = getattr(self, resource)
        return cost


#: Weight of a saturated window read before any estimate could correct it: enough to start
#: from, little enough that the corrected windows after it soon outweigh its low reading.
BOOTSTRAP_WEIGHT = 0.05

#: Windows per unknown before the extremes are used: each is linearized at the fit of its time,
#: and a fit from too few windows (bursty's first minutes put ``lookup`` at 84 points) left
#: equations that pulled towards it for hours.
MATURITY = 2.0

_SETTINGS = (
    "half_life_s",
    "trend_ridge",
    "cap",
    "sample_s",
    "noise",
    "baseline_walk",
    "trend_evidence",
    "flat_trend_ridge",
    "correction_error",
)


class CostEstimator:
    """Online non-negative estimates of each query's CPU, IO and memory cost.

    Feed it closed windows and the executions that overlap them with ``update``; windows it
    has already seen are ignored, so replaying after a restart is harmless.
    """

    def __init__(
        self,
        half_life_s: float = 3600.0,
        trend_ridge: float = 0.01,
        cap: float = 100.0,
        sample_s: float = 0.1,
        noise: float = 2.0,
        baseline_walk: float = 0.7,
        trend_evidence: float = 2.5,
        flat_trend_ridge: float = 1.0,
        correction_error: float = 0.1,
    ) -> None:
        self.half_life_s = half_life_s
        self.trend_ridge = trend_ridge
        self.cap = cap
        self.sample_s = sample_s
        self.noise = noise
        #: How fast the baseline may wander, in points per square root of an hour.
        self.baseline_walk = baseline_walk
        #: The t-statistic a trend needs before it is fitted freely (``trend_ridge``) rather
        #: than held near zero (``flat_trend_ridge``).
        self.trend_evidence = trend_evidence
        self.flat_trend_ridge = flat_trend_ridge
        #: The relative error assumed of a saturation correction (it is predicted from the
        #: estimates): a window that lost much to the cap weighs less.
        self.correction_error = correction_error
        self.query_ids: list[str] = []
        #: Forgotten exposure of each query (the prior's weights).
        self.ran = np.zeros(0)
        self.reference: float | None = None
        #: Length of the windows learnt from (the server's setting, seen in its windows).
        self.window_length = 30.0
        self.moments = {resource: Moments(np.zeros((2, 2)), np.zeros(2)) for resource in RESOURCES}
        self._solved: dict[Resource, tuple[FloatArray, FloatArray]] = {}
        self._priors: dict[Resource, Cost] = {}

    def update(self, windows: Sequence[ResourceWindow], executions: Sequence[Span]) -> int:
        """Learn from the windows closed after the last one seen; returns how many were new."""
        fresh = sorted(
            (w for w in windows if self.reference is None or w.end > self.reference),
            key=lambda window: window.end,
        )
        if not fresh:
            return 0
        seen = exposure(executions, fresh)
        fits = self._fits()
        self._grow(seen.query_ids)
        columns = [self.query_ids.index(query_id) for query_id in seen.query_ids]
        for row, window in enumerate(fresh):
            levels = np.zeros(len(self.query_ids) + 1)
            levels[0] = 1.0
            levels[[1 + column for column in columns]] = seen.matrix[row]
            fine = self._fine(window, executions) if fits is not None else None
            self._learn(window, levels, self._clipped(window, fine, fits))
            if fine is not None and fits is not None:
                self._learn_extremes(window, fine, fits)
        self._solved.clear()
        self._priors.clear()
        return len(fresh)

    def estimate(self, query_id: str) -> Estimate:
        """The query's current costs, or the prior for a query never seen."""
        if query_id not in self.query_ids:
            return Estimate(
                query_id, self.prior("cpu"), self.prior("io"), self.prior("memory"), False
            )
        index = 1 + self.query_ids.index(query_id)
        cpu, io, memory = (self._cost(resource, index) for resource in RESOURCES)
        return Estimate(query_id, cpu, io, memory, known=True)

    def baseline(self, resource: Resource) -> Cost:
        """Utilization with nothing of ours running (the fitted intercept)."""
        return self._cost(resource, 0)

    def prior(self, resource: Resource) -> Cost:
        """For an unseen query: the typical known cost, uncertain by the spread or itself."""
        if resource not in self._priors:
            self._priors[resource] = self._prior(resource)
        return self._priors[resource]

    def _prior(self, resource: Resource) -> Cost:
        # The typical cost of one running execution: the known costs weighted by how much of
        # each ran. *Rejected:* the median of the known costs, which is 0 for the first
        # minutes: with fewer windows than queries the non-negative fit leaves most costs at
        # 0 (at most one non-zero per window), so every query was planned too light just
        # while the estimates were youngest. The weighted mean is the load the windows
        # showed divided by the concurrency that made it, right from the first window.
        size = len(self.query_ids)
        if not size:
            return Cost(0.0, self.cap)
        values = self._solve(resource)[0][1:]
        ran = np.maximum(self.ran, 0.0)
        weights = ran / ran.sum() if ran.sum() > 0 else np.full(size, 1 / size)
        typical = float(weights @ values)
        spread = float(np.sqrt(weights @ (values - typical) ** 2))
        return Cost(typical, max(typical, spread))

    def to_dict(self) -> dict[str, Any]:
        """The whole state as JSON-ready data, so a restarted pacer resumes where it stopped."""
        moments = {
            resource: [m.gram.tolist(), m.moment.tolist(), m.squares, m.weight]
            for resource, m in self.moments.items()
        }
        settings = {name: getattr(self, name) for name in _SETTINGS}
        return {
            "settings": settings,
            "query_ids": list(self.query_ids),
            "reference": self.reference,
            "window_length": self.window_length,
            "moments": moments,
            "ran": self.ran.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CostEstimator:
        """The estimator ``to_dict`` described."""
        estimator = cls(**data["settings"])
        estimator.query_ids = list(data["query_ids"])
        estimator.reference = data["reference"]
        estimator.window_length = float(data.get("window_length", estimator.window_length))
        for resource, (gram, moment, squares, weight) in data["moments"].items():
            estimator.moments[resource] = Moments(
                np.array(gram, float), np.array(moment, float), squares, weight
            )
        size = len(estimator.query_ids)
        # A state saved before ``ran`` existed: the baseline's cross moments were the exposures.
        fallback = estimator.moments["cpu"].gram[0, 1 : 1 + size].tolist()
        estimator.ran = np.array(data.get("ran", fallback), float)
        return estimator

    def _fits(self) -> dict[Resource, FloatArray] | None:
        """The current levels of every resource; None before any data."""
        if self.moments["cpu"].weight == 0:
            return None
        return {resource: self._solve(resource)[0] for resource in RESOURCES}

    def _clipped(
        self,
        window: ResourceWindow,
        fine: FloatArray | None,
        fits: Mapping[Resource, FloatArray] | None,
    ) -> dict[Resource, float | None]:
        """How much each resource's average lost to the cap; None where it cannot be told yet.

        A saturated window still carries information: with the current estimates and the
        executions' exact times we predict each sample's demand, and the expected excess above
        the cap (under Gaussian noise) is added back to the average. Before any estimate
        exists it cannot be told (None): the window is then learnt as it reads, at a small
        weight.
        """
        losses: dict[Resource, float | None] = {}
        for resource in RESOURCES:
            if window.stats(resource).max < self.cap:
                losses[resource] = 0.0
            elif fits is None or fine is None:
                losses[resource] = None
            else:
                fit = fits[resource]  # queries new in this update count 0 until fitted
                losses[resource] = self._excess(fine[:, : len(fit)] @ fit)
        return losses

    def _fine(self, window: ResourceWindow, executions: Sequence[Span]) -> FloatArray:
        """Concurrency of baseline and each known query in each sampling interval."""
        count = max(1, round(window.length / self.sample_s))
        edges = np.linspace(window.start, window.end, count + 1)
        slices = [Window(float(a), float(b)) for a, b in itertools.pairwise(edges)]
        overlapping = [
            item
            for item in executions
            if item.start < window.end and (item.end is None or item.end > window.start)
        ]
        seen = exposure(overlapping, slices)
        fine = np.zeros((count, len(self.query_ids) + 1))
        fine[:, 0] = 1.0
        for column, query_id in enumerate(seen.query_ids):
            if query_id in self.query_ids:
                fine[:, 1 + self.query_ids.index(query_id)] = seen.matrix[:, column]
        return fine

    def _excess(self, demand: FloatArray) -> float:
        """Mean of E[max(0, demand + noise - cap)] over the samples (Gaussian noise)."""
        gaps = (demand - self.cap) / self.noise
        near = gaps[gaps > -6.0]  # further below the cap the excess is under 1e-9 points
        tail = np.array([0.5 * math.erfc(-gap / math.sqrt(2)) for gap in near])
        normal = np.exp(-(near**2) / 2) / math.sqrt(2 * math.pi)
        return float(np.sum(self.noise * (near * tail + normal)) / len(gaps))

    def _learn(
        self, window: ResourceWindow, levels: FloatArray, clipped: Mapping[Resource, float | None]
    ) -> None:
        end = window.end
        self.window_length = window.length
        if self.reference is not None:
            self._shift(end - self.reference)
        self.reference = end
        lag = -window.length / 2 / 3600
        features = np.concatenate([levels, lag * levels])
        self.ran += levels[1:]
        for resource, moments in self.moments.items():
            loss = clipped[resource]
            weight = BOOTSTRAP_WEIGHT if loss is None else self._trust(loss)
            average = window.stats(resource).average + (loss or 0.0)
            moments.gram += weight * np.outer(features, features)
            moments.moment += weight * average * features
            moments.squares += weight * average**2
            moments.weight += weight

    def _trust(self, loss: float) -> float:
        """A corrected window's weight: its average's noise against the correction's error.

        The loss added back is predicted from the estimates, so it is wrong by some fraction
        of itself; a window that lost a point or more to the cap (overloaded, bursts) mostly
        repeats the estimates it was corrected with. At full weight those windows held
        ``lookup`` 20-30 % off on overloaded; a window that barely touched the cap keeps
        nearly all its weight.
        """
        floor = self._floor()
        if floor <= 0:
            return 1.0
        return 1.0 / (1.0 + (self.correction_error * loss) ** 2 / floor)

    def _floor(self) -> float:
        """The variance of one window's average from the sampling noise alone."""
        return self.noise**2 * self.sample_s / self.window_length

    def _learn_extremes(
        self, window: ResourceWindow, fine: FloatArray, fits: Mapping[Resource, FloatArray]
    ) -> None:
        """Two more equations per window and resource: its maximum and its minimum,
        linearized at the fit.

        The peak sample either caught an execution or not, so the extremes separate a short
        steady query from the baseline far better than the average does (see
        ``domain/extremes.py``). ``E[max] ≈ E[max](θ̂) + g·(θ - θ̂)`` with ``g`` the chance
        that each sample peaks times its concurrency; the minimum is the maximum of the
        negated samples. Each equation weighs what its variance allows against an average's.
        A maximum at the cap says only "at least the cap", a minimum at 0 "at most 0": both
        are skipped. The minimum matters most where the maximum is saturated (overloaded).
        """
        floor = self._floor()
        if floor <= 0:  # a noiseless sampler: the averages are exact, the extremes add nothing
            return
        lag = -window.length / 2 / 3600
        for resource, moments in self.moments.items():
            if moments.weight < MATURITY * len(moments.moment):
                continue
            stats = window.stats(resource)
            for sign, observed in ((1.0, stats.max), (-1.0, -stats.min)):
                if observed >= self.cap or observed == 0.0:  # saturated, or clipped at 0
                    continue
                fit = sign * fits[resource]
                concurrency = fine[:, : len(fit)]
                peak = expected_maximum(concurrency @ fit, self.noise)
                gradient = np.zeros(len(self.query_ids) + 1)
                gradient[: len(fit)] = sign * (peak.peaks @ concurrency)
                value = observed - peak.mean + float(gradient[: len(fit)] @ fits[resource])
                features = np.concatenate([gradient, lag * gradient])
                weight = floor / max(peak.variance, floor)
                moments.gram += weight * np.outer(features, features)
                moments.moment += weight * value * features
                moments.squares += weight * value**2

    def _shift(self, seconds: float) -> None:
        """Move the reference time forward: fade old windows, re-express trends from now,
        and let the baseline wander."""
        fade = 0.5 ** (seconds / self.half_life_s)
        size = len(self.query_ids) + 1
        move = np.eye(2 * size)
        move[size:, :size] -= seconds / 3600 * np.eye(size)
        self.ran *= fade
        for moments in self.moments.values():
            moments.gram = fade * (move @ moments.gram @ move.T)
            moments.moment = fade * (move @ moments.moment)
            moments.squares *= fade
            moments.weight *= fade
            self._wander(moments, seconds)

    def _wander(self, moments: Moments, seconds: float) -> None:
        """The baseline as a random walk: the information filter's prediction step.

        Background work (autovacuum, checkpoints) moves the baseline by a fraction of a point
        over minutes; as a constant it left that wander in the residuals, where a query barely
        told apart from the baseline (``lookup``) picked up 10-20 % of error. Adding the walk's
        variance ``q`` to the baseline's is a rank-one downdate of the statistics (Woodbury):
        ``Λ' = Λ - q Λe eᵀΛ / (1 + q eᵀΛe)``, the same for the moment vector and the sum of
        squares, so the state keeps its shape and stays serializable.
        """
        floor = self._floor()
        if floor <= 0 or self.baseline_walk <= 0:
            return
        walk = self.baseline_walk**2 * seconds / 3600 / floor  # in units of a window's noise
        column = moments.gram[:, 0].copy()
        share = walk / (1.0 + walk * moments.gram[0, 0])
        level = moments.moment[0]
        moments.gram -= share * np.outer(column, column)
        moments.moment -= share * level * column
        moments.squares -= share * level**2

    def _grow(self, query_ids: Sequence[str]) -> None:
        """Add columns for query ids not seen before (levels, then trends, stay in two blocks)."""
        new = [query_id for query_id in query_ids if query_id not in self.query_ids]
        if not new:
            return
        old, size = len(self.query_ids) + 1, len(self.query_ids) + 1 + len(new)
        keep = np.concatenate([np.arange(old), size + np.arange(old)])
        for moments in self.moments.values():
            gram, moment = np.zeros((2 * size, 2 * size)), np.zeros(2 * size)
            gram[np.ix_(keep, keep)] = moments.gram
            moment[keep] = moments.moment
            moments.gram, moments.moment = gram, moment
        self.ran = np.concatenate([self.ran, np.zeros(len(new))])
        self.query_ids.extend(new)

    def _cost(self, resource: Resource, index: int) -> Cost:
        theta, variance = self._solve(resource)
        return Cost(float(theta[index]), float(math.sqrt(max(variance[index], 0.0))))

    def _solve(self, resource: Resource) -> tuple[FloatArray, FloatArray]:
        """Levels and their variances, solved once per update and resource."""
        if resource not in self._solved:
            ridges = (self.trend_ridge, self.flat_trend_ridge)
            self._solved[resource] = fit_trended(
                self.moments[resource], ridges, self.trend_evidence, self._floor()
            )
        return self._solved[resource]

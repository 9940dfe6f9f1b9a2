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
- **A linear trend per cost**, so a query that grows steadily heavier is estimated where it is
  now, not where it was on average over the memory (forgetting alone lags by about 1.4 half
  lives). Trends are shrunk towards zero by a ridge so sparse queries do not wobble.
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
  window maximum is what tells a saturated window apart.
- **Uncertainties never below a window's sampling noise**: with fewer windows than unknowns
  the fit is exact and its residual zero, which claimed certainty exactly when nothing was
  known yet.
- A Kalman filter per cost was rejected: it needs a process noise per query that nobody can
  set, and it gives the same answer as forgetting least squares for one well-chosen value.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

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


def nonnegative_quadratic(
    hessian: FloatArray, gradient: FloatArray, bounded: NDArray[np.bool_]
) -> FloatArray:
    """Minimize ``½ θᵀHθ - gᵀθ`` with ``θ_j ≥ 0`` where ``bounded[j]`` (H positive definite).

    Lawson and Hanson's active-set method, written on the normal equations: start with every
    bounded variable at zero, free the one whose gradient most wants it positive, solve on the
    free set and step back to the boundary whenever a free variable would turn negative.
    """
    size = len(gradient)
    free = ~bounded.copy()
    theta = _solve_on(hessian, gradient, free)
    for _ in range(3 * size + 10):
        theta = _step_inside(hessian, gradient, free, bounded, theta)
        pull = gradient - hessian @ theta
        candidates = np.where(bounded & ~free & (pull > 1e-10 * (1 + np.abs(gradient).max())))[0]
        if len(candidates) == 0:
            break
        free[candidates[np.argmax(pull[candidates])]] = True
    return theta


def _step_inside(
    hessian: FloatArray,
    gradient: FloatArray,
    free: NDArray[np.bool_],
    bounded: NDArray[np.bool_],
    theta: FloatArray,
) -> FloatArray:
    """Solve on the free set, stepping back to the boundary until the solution is feasible."""
    while True:
        target = _solve_on(hessian, gradient, free)
        negative = bounded & free & (target < 0)
        if not negative.any():
            return target
        ratios = theta[negative] / np.maximum(theta[negative] - target[negative], 1e-300)
        alpha = float(np.clip(ratios.min(), 0.0, 1.0))
        theta = theta + alpha * (target - theta)
        free &= ~(bounded & (theta <= 1e-12))
        theta[~free] = 0.0


def _solve_on(hessian: FloatArray, gradient: FloatArray, free: NDArray[np.bool_]) -> FloatArray:
    theta = np.zeros(len(gradient))
    if free.any():
        theta[free] = np.linalg.solve(hessian[np.ix_(free, free)], gradient[free])
    return theta


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


@dataclass
class _Moments:
    """Forgotten sufficient statistics of one resource's regression."""

    gram: FloatArray
    moment: FloatArray
    squares: float = 0.0
    weight: float = 0.0


#: Weight of a saturated window read before any estimate could correct it: enough to start
#: from, little enough that the corrected windows after it soon outweigh its low reading.
BOOTSTRAP_WEIGHT = 0.05

_SETTINGS = ("half_life_s", "trend_ridge", "cap", "sample_s", "noise")


class CostEstimator:
    """Online non-negative estimates of each query's CPU, IO and memory cost.

    Feed it closed windows and the executions that overlap them with ``update``; windows it
    has already seen are ignored, so replaying after a restart is harmless.
    """

    def __init__(
        self,
        half_life_s: float = 3600.0,
        trend_ridge: float = 0.05,
        cap: float = 100.0,
        sample_s: float = 0.1,
        noise: float = 2.0,
    ) -> None:
        self.half_life_s = half_life_s
        self.trend_ridge = trend_ridge
        self.cap = cap
        self.sample_s = sample_s
        self.noise = noise
        self.query_ids: list[str] = []
        self.reference: float | None = None
        #: Length of the windows learnt from (the server's setting, seen in its windows).
        self.window_length = 30.0
        self.moments = {resource: _Moments(np.zeros((2, 2)), np.zeros(2)) for resource in RESOURCES}
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
            self._learn(window, levels, self._clipped(window, executions, fits))
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
        ran = np.maximum(self.moments[resource].gram[0, 1 : 1 + size], 0.0)
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
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CostEstimator:
        """The estimator ``to_dict`` described."""
        estimator = cls(**data["settings"])
        estimator.query_ids = list(data["query_ids"])
        estimator.reference = data["reference"]
        estimator.window_length = float(data.get("window_length", estimator.window_length))
        for resource, (gram, moment, squares, weight) in data["moments"].items():
            estimator.moments[resource] = _Moments(
                np.array(gram, float), np.array(moment, float), squares, weight
            )
        return estimator

    def _fits(self) -> dict[Resource, FloatArray] | None:
        """The current levels of every resource; None before any data."""
        if self.moments["cpu"].weight == 0:
            return None
        return {resource: self._solve(resource)[0] for resource in RESOURCES}

    def _clipped(
        self,
        window: ResourceWindow,
        executions: Sequence[Span],
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
        fine: FloatArray | None = None
        for resource in RESOURCES:
            if window.stats(resource).max < self.cap:
                losses[resource] = 0.0
            elif fits is None:
                losses[resource] = None
            else:
                if fine is None:
                    fine = self._fine(window, executions)
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
        for resource, moments in self.moments.items():
            loss = clipped[resource]
            weight = BOOTSTRAP_WEIGHT if loss is None else 1.0
            average = window.stats(resource).average + (loss or 0.0)
            moments.gram += weight * np.outer(features, features)
            moments.moment += weight * average * features
            moments.squares += weight * average**2
            moments.weight += weight

    def _shift(self, seconds: float) -> None:
        """Move the reference time forward: fade old windows, re-express trends from now."""
        fade = 0.5 ** (seconds / self.half_life_s)
        size = len(self.query_ids) + 1
        move = np.eye(2 * size)
        move[size:, :size] -= seconds / 3600 * np.eye(size)
        for moments in self.moments.values():
            moments.gram = fade * (move @ moments.gram @ move.T)
            moments.moment = fade * (move @ moments.moment)
            moments.squares *= fade
            moments.weight *= fade

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
        self.query_ids.extend(new)

    def _cost(self, resource: Resource, index: int) -> Cost:
        theta, variance = self._solve(resource)
        return Cost(float(theta[index]), float(math.sqrt(max(variance[index], 0.0))))

    def _solve(self, resource: Resource) -> tuple[FloatArray, FloatArray]:
        """Levels and their variances, solved once per update and resource."""
        if resource not in self._solved:
            # The variance of one window's average from the sampling noise alone.
            floor = self.noise**2 * self.sample_s / self.window_length
            self._solved[resource] = _fit(self.moments[resource], self.trend_ridge, floor)
        return self._solved[resource]


def _fit(
    moments: _Moments, trend_ridge: float, floor: float = 0.0
) -> tuple[FloatArray, FloatArray]:
    """Solve one resource's regression: levels ≥ 0, trends shrunk towards zero."""
    size = len(moments.moment) // 2
    diagonal = np.diag(moments.gram)
    scale = max(float(diagonal[:size].max()), 1e-12)
    # A whisper of ridge on levels keeps the solve defined for a column with no exposure yet.
    ridge = np.concatenate([np.zeros(size), trend_ridge * diagonal[:size]]) + 1e-9 * scale
    hessian = moments.gram + np.diag(ridge)
    bounded = np.concatenate([np.ones(size, bool), np.zeros(size, bool)])
    theta = nonnegative_quadratic(hessian, moments.moment, bounded)
    residual = moments.squares - 2 * theta @ moments.moment + theta @ moments.gram @ theta
    freedom = max(moments.weight - 2 * size, 1.0)
    # The residual of a fit with as many unknowns as windows is zero, which would claim
    # certainty where nothing is known yet; the noise of one window's average is the floor.
    spread = max(float(residual) / freedom, floor)
    variance = spread * np.diag(np.linalg.inv(hessian))
    return theta[:size], variance[:size]

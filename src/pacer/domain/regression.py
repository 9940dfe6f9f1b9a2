"""The estimator's regression: forgotten sufficient statistics, and their non-negative solve."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["Moments", "fit_trended", "nonnegative_quadratic"]

FloatArray = NDArray[np.float64]


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


@dataclass
class Moments:
    """Forgotten sufficient statistics of one resource's regression."""

    gram: FloatArray
    moment: FloatArray
    squares: float = 0.0
    weight: float = 0.0


def fit_trended(
    moments: Moments, ridges: tuple[float, float], evidence: float, floor: float = 0.0
) -> tuple[FloatArray, FloatArray]:
    """Solve one resource's regression: levels ≥ 0, each trend free only where it shows.

    A trend is first fitted with the light ridge; those whose t-statistic stays under
    ``evidence`` are then held near zero by the heavy one and the fit is solved again. A
    free trend on every cost let a steady query's level at the end of the memory swing with
    the noise (a line's end is known four times worse than its mean), while a heavy ridge on
    every trend made the drifting queries lag.
    """
    light, heavy = ridges
    size = len(moments.moment) // 2
    theta, variance = _solve_ridged(moments, np.full(size, light), floor)
    strength = np.abs(theta[size:]) / np.sqrt(np.maximum(variance[size:], 1e-300))
    if (strength < evidence).any():
        chosen = np.where(strength >= evidence, light, heavy)
        theta, variance = _solve_ridged(moments, chosen, floor)
    return theta[:size], variance[:size]


def _solve_ridged(
    moments: Moments, trend_ridges: FloatArray, floor: float
) -> tuple[FloatArray, FloatArray]:
    """Levels ≥ 0 and trends (each shrunk by its own ridge), with every variance."""
    size = len(moments.moment) // 2
    diagonal = np.diag(moments.gram)
    scale = max(float(diagonal[:size].max()), 1e-12)
    # A whisper of ridge on levels keeps the solve defined for a column with no exposure yet.
    ridge = np.concatenate([np.zeros(size), trend_ridges * diagonal[:size]]) + 1e-9 * scale
    hessian = moments.gram + np.diag(ridge)
    bounded = np.concatenate([np.ones(size, bool), np.zeros(size, bool)])
    theta = nonnegative_quadratic(hessian, moments.moment, bounded)
    residual = moments.squares - 2 * theta @ moments.moment + theta @ moments.gram @ theta
    freedom = max(moments.weight - 2 * size, 1.0)
    # The residual of a fit with as many unknowns as windows is zero, which would claim
    # certainty where nothing is known yet; the noise of one window's average is the floor.
    spread = max(float(residual) / freedom, floor)
    variance = spread * np.diag(np.linalg.inv(hessian))
    return theta, variance

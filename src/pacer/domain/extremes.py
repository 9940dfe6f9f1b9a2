"""The expected maximum of a window's noisy samples, and how it moves with each sample's mean.

A window's maximum is read from its finest samples (100 ms by default), where an execution
is either running or not; its average mixes hundreds of them into one number. A query whose
executions are short and steady (``lookup``: 50 ms, three a second) barely changes the
average from one window to the next, so the averages tell its cost from the baseline's only
slowly, while the maximum jumps by the whole cost whenever the peak sample caught one. The
estimator uses the maximum and the minimum (the maximum of the negated samples) as more
equations per window, linearized at its current costs: this module gives the expected maximum of independent Gaussian readings with known
means, its variance, and the probability that each sample is the one that peaks (the
derivative of the expected maximum with respect to that sample's mean).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["Maximum", "expected_maximum", "normal_cdf"]

FloatArray = NDArray[np.float64]

#: Samples more than this many noise sigmas below the highest mean never peak in practice.
_REACH = 7.0
#: Integration grid over the maximum: from 4 sigmas below the highest mean to 6 above.
_GRID = np.linspace(-4.0, 6.0, 300)


@dataclass(frozen=True)
class Maximum:
    """The expected maximum, its variance, and each sample's chance of being the peak."""

    mean: float
    variance: float
    peaks: FloatArray


def normal_cdf(z: FloatArray) -> FloatArray:
    """The standard normal distribution function (Abramowitz and Stegun 7.1.26, error < 2e-7).

    numpy has no ``erf``; calling ``math.erfc`` per element is a hundred times slower, and
    this runs on every window for every resource.
    """
    x = np.abs(z) / math.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * x)
    poly = (
        (((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t
    ) + 0.254829592
    tail = 0.5 * poly * t * np.exp(-x * x)
    result: FloatArray = np.where(z >= 0, 1.0 - tail, tail)
    return result


def expected_maximum(means: FloatArray, sigma: float) -> Maximum:
    """The maximum of ``means[i] + noise_i`` with independent ``N(0, sigma²)`` noise.

    ``P(max ≤ x) = Π Φ((x - means[i]) / sigma)``; its density and moments are integrated on a
    grid, and ``peaks[i] = P(sample i is the maximum) = ∂E[max] / ∂means[i]``.
    """
    top = float(means.max())
    near = means > top - _REACH * sigma
    x = top + sigma * _GRID
    z = (x[None, :] - means[near][:, None]) / sigma
    log_cdf = np.log(np.clip(normal_cdf(z), 1e-300, 1.0))
    everyone = log_cdf.sum(axis=0)
    # density that sample i is the maximum and equals x: φ_i(x) Π_{j≠i} Φ_j(x)
    density = np.exp(-(z**2) / 2 - log_cdf + everyone[None, :]) / (sigma * math.sqrt(2 * math.pi))
    step = float(x[1] - x[0])
    chances = density.sum(axis=1) * step
    total = density.sum(axis=0)
    mass = max(float(total.sum()) * step, 1e-300)
    mean = float((x * total).sum()) * step / mass
    variance = max(float((x * x * total).sum()) * step / mass - mean**2, 0.0)
    peaks = np.zeros(len(means))
    peaks[near] = chances / max(float(chances.sum()), 1e-300)
    return Maximum(mean, variance, peaks)

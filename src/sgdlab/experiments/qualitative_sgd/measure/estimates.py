"""The estimates the measurements of `qualitative-sgd` report: a value with its standard error
over independent units (runs, seeds), as a mean or as a ratio of means."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Estimate:
    """A measured value with its standard error over `count` independent units (runs, seeds)."""

    value: float
    se: float
    count: int


def mean_estimate(values: np.ndarray) -> Estimate:
    """The mean of independent `values` with its standard error s/√n (NaN for one value)."""
    v = np.asarray(values, dtype=np.float64)
    se = float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else math.nan
    return Estimate(float(v.mean()), se, len(v))


def ratio_of_means(num: np.ndarray, den: np.ndarray) -> Estimate:
    """R = Σ_r num_r / Σ_r den_r over independent units r, with the delta-method standard error
    se = √(n/(n−1)·Σ_r (num_r − R·den_r)²) / Σ_r den_r (Cochran, "Sampling techniques", the
    ratio estimator). Unlike the mean of the ratios num_r/den_r it is not dominated by the
    units whose denominator is near 0.

    >>> e = ratio_of_means(np.array([2.0, 4.0]), np.array([1.0, 2.0]))
    >>> (e.value, e.se)
    (2.0, 0.0)
    """
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    n = len(num)
    ratio = float(num.sum() / den.sum())
    spread = float(np.sqrt(n / max(n - 1, 1) * np.sum((num - ratio * den) ** 2)))
    return Estimate(ratio, spread / float(den.sum()), n)

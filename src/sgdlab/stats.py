"""The statistics claims and reports share: means and standard deviations over seeds, medians
with their standard errors, least-squares slopes with theirs. Plain numpy, no state.

    Stat.of(values)          mean, sample standard deviation (ddof = 1) and count of the finite
                             values; the standard error of the mean is std/√n
    Estimate.of(values)      median and its standard error √(π/2)·s/√n (Gaussian samples)
    slope(u, v)              least-squares slope b of v ≈ a + b·u
    slope_and_error(u, v)    b and its standard error s/√Σ(u − ū)², s² = Σ residual²/(n − 2)

>>> Stat.of([1.0, 2.0, 3.0, float("nan")])
Stat(mean=2.0, std=1.0, n=3)
>>> slope([0, 1, 2], [1, 3, 5])
2.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np

# The standard error of a median of n Gaussian samples is √(π/2)·σ/√n.
MEDIAN_SE = float(np.sqrt(np.pi / 2))


@dataclass(frozen=True)
class Stat:
    """Mean, sample standard deviation (ddof = 1) and count of the finite values of a sample;
    NaN where undefined (no values; one value has no standard deviation)."""

    mean: float
    std: float
    n: int

    @classmethod
    def of(cls, values: Iterable[float | None]) -> Stat:
        """The statistics of the finite entries of `values` (None, NaN and ±inf left out)."""
        v = np.array([x for x in values if x is not None and math.isfinite(x)], dtype=np.float64)
        if not len(v):
            return cls(math.nan, math.nan, 0)
        return cls(float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else math.nan, len(v))

    @property
    def se(self) -> float:
        """The standard error std/√n of the mean (NaN with fewer than two values)."""
        return self.std / math.sqrt(self.n) if self.n > 1 else math.nan


def mean_std(values: Iterable[float | None]) -> tuple[float, float]:
    """(mean, sample std with ddof = 1) of the finite values: `Stat.of` as a pair."""
    s = Stat.of(values)
    return s.mean, s.std


@dataclass(frozen=True)
class Estimate:
    """A statistic of one group of runs: its median over the runs and the standard error of
    that median, √(π/2)·s/√n (0 for a single, deterministic run such as GD)."""

    value: float
    stderr: float

    @classmethod
    def of(cls, per_run: np.ndarray | list[float]) -> Estimate:
        """The median and its standard error of the values of the runs."""
        x = np.asarray(per_run, dtype=np.float64)
        se = MEDIAN_SE * x.std(ddof=1) / np.sqrt(len(x)) if len(x) > 1 else 0.0
        return cls(float(np.median(x)), float(se))

    def __str__(self) -> str:
        return f"{self.value:.4g}" if self.stderr == 0 else f"{self.value:.4g} ± {self.stderr:.2g}"


def slope(u: np.ndarray | list[float], v: np.ndarray | list[float]) -> float:
    """Least-squares slope of v against u."""
    u, v = np.asarray(u, dtype=np.float64), np.asarray(v, dtype=np.float64)
    du = u - u.mean()
    return float(du @ (v - v.mean()) / (du @ du))


def slope_and_error(u: np.ndarray, v: np.ndarray) -> tuple[float, float]:
    """Least-squares slope b of v against u and its standard error s/√Σ(u−ū)², with
    s² = Σ(residual²)/(n − 2) the residual variance of the fit (n ≥ 3 points)."""
    u, v = np.asarray(u, dtype=np.float64), np.asarray(v, dtype=np.float64)
    if len(u) < 3:
        raise ValueError(f"a slope's standard error needs ≥ 3 points, got {len(u)}")
    du = u - u.mean()
    b = slope(u, v)
    residual = v - v.mean() - b * du
    return b, float(np.sqrt(residual @ residual / (len(u) - 2) / (du @ du)))

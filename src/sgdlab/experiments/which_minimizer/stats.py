"""The numbers every `which-minimizer` claim is decided from, as plain functions of output
vectors and of per-init values.

Distances between two minimizers are RMS differences of their outputs over the test points;
"test loss" is the mean squared loss ½·mean (f − y)² the nets are trained on; comparisons
between two settings are paired by init (the same θ_0 draws and data split), and "above" means
by more than `SIGNIFICANCE` standard errors of the mean over inits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np

SIGNIFICANCE = 2.0  # "clearly above": the mean exceeds its level by more than 2 standard errors


def rms(v: np.ndarray) -> float:
    """√(mean v²): the RMS of a vector (distances between output vectors)."""
    return float(np.sqrt(np.mean(np.square(v))))


def error(f: np.ndarray, y: np.ndarray) -> float:
    """0-1 error of outputs f for ±1 labels y: the fraction with f·y ≤ 0."""
    return float(np.mean(f * y <= 0))


def half_mse(f: np.ndarray, y: np.ndarray) -> float:
    """The squared loss ½·mean (f − y)² (the paper's test error of Thm 3.2 is this loss)."""
    return float(0.5 * np.mean(np.square(f - y)))


@dataclass(frozen=True)
class Stat:
    """Mean, sample standard deviation (0 for one value) and count of per-init values; NaN
    values (runs that are missing or missed the premise) are left out."""

    mean: float
    std: float
    n: int

    @classmethod
    def of(cls, values: Iterable[float]) -> Stat:
        """The statistics of the finite entries of `values`."""
        v = np.asarray(list(values), dtype=np.float64)
        v = v[np.isfinite(v)]
        if not len(v):
            return cls(math.nan, math.nan, 0)
        return cls(float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0, len(v))

    @property
    def se(self) -> float:
        """The standard error std/√n of the mean (NaN without values)."""
        return self.std / math.sqrt(self.n) if self.n else math.nan

    def above(self, level: float = 0.0) -> bool:
        """Whether the mean exceeds `level` by more than SIGNIFICANCE standard errors (needs two
        values: one has no standard error)."""
        return self.n > 1 and self.mean - level > SIGNIFICANCE * self.se

    def as_dict(self) -> dict[str, float]:
        """{mean, std, n, se} for the evidence."""
        return {"mean": self.mean, "std": self.std, "n": self.n, "se": self.se}


def paired(a: Iterable[float], b: Iterable[float]) -> Stat:
    """The statistics of a − b over the inits where both are finite."""
    x, y = np.asarray(list(a), dtype=np.float64), np.asarray(list(b), dtype=np.float64)
    return Stat.of(x - y)


def slope(x: np.ndarray, y: np.ndarray) -> float:
    """The least-squares slope of log y against log x (a power law's exponent)."""
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


@dataclass(frozen=True)
class FiniteWidth:
    """The finite-width baseline of a group of runs: the RMS test-output gap between GD-trained
    nets and the closed-form GD limit of their linearization (Thm 3.1 makes it vanish with the
    width), mean and spread over inits, measured at σ = `sigma`.

    Two nets that reach the same minimizer of the linearized model differ by at most the sum of
    their gaps to it (triangle inequality), so "the same minimizer" can only be resolved down to
    `bound` = 2 × gap (+ its noise); every distance between minimizers is compared with it."""

    gap: Stat
    sigma: float

    @property
    def bound(self) -> float:
        """2 × the mean gap: how far apart finite-width error alone can put two nets that share
        a linearized minimizer."""
        return 2.0 * self.gap.mean

    def as_dict(self) -> dict[str, float | dict[str, float]]:
        """The baseline for the evidence."""
        return {"gap": self.gap.as_dict(), "sigma": self.sigma, "bound": self.bound}

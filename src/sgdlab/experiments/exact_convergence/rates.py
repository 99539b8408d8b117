"""Rate estimators for quantities recorded on log-spaced steps. Pure functions of (t, y).

The laws checked (Soudry et al. 2018, Thm 3; Nacson et al. 2019): for logistic regression on
separable data with a fixed step, L(t) ~ C/t, ‖w(t)‖ = ‖ŵ‖·ln t + O(1), and the direction
error ‖w/‖w‖ − ŵ/‖ŵ‖‖ = O(1/ln t). On a log time axis these become one number per decade:

    decade_factor      y(t)/y(10t), from the least-squares slope s of log y vs log t
                       over [t, 10t]: 10^(−s)  (exactly 10 for y = C/t)
    decade_increment   y(10t) − y(t), the slope of y vs log10 t over [t, 10t]
                       (exactly a·ln 10 for y = a·ln t + b)
    log_exponent       a in y ~ (ln t)^(−a): minus the slope of log y vs log ln t
                       (exactly a for y = c·(ln t)^(−a); a ≥ 1 means y·ln t stays bounded)

Fits use every recorded point in the window, so one noisy SGD step cannot decide a verdict.

Across runs (SGD seeds) a statistic is the median with its standard error (`stats.Estimate`);
a difference counts when it exceeds `SIGNIFICANCE` standard errors (`approaches`).
"""

from __future__ import annotations

import numpy as np

from ...stats import MEDIAN_SE, Estimate, slope, slope_and_error

__all__ = [
    "MEDIAN_SE",
    "ROUNDING",
    "SIGNIFICANCE",
    "Estimate",
    "approaches",
    "at",
    "decade_factor",
    "decade_increment",
    "last_decades",
    "log_exponent",
    "log_steps",
    "slope",
    "slope_and_error",
]

# A difference counts when it exceeds 2 standard errors (≈ 95 % two-sided for Gaussian noise).
SIGNIFICANCE = 2.0
# Relative differences below this are float64 rounding of the fits, not a trend (GD runs have
# no other noise).
ROUNDING = 1e-9


def approaches(limit: float, earlier: Estimate, last: Estimate) -> bool:
    """Whether a statistic measured at two times (`earlier`, `last`) tends to `limit`, as far
    as a finite run can tell: it is already within SIGNIFICANCE standard errors of the limit,
    or its distance to the limit shrank by more than SIGNIFICANCE standard errors of the
    difference. A floor or a wrong rate keeps (or grows) its distance and fails both."""
    if abs(last.value - limit) <= SIGNIFICANCE * last.stderr:
        return True
    noise = max(SIGNIFICANCE * float(np.hypot(earlier.stderr, last.stderr)), ROUNDING * abs(limit))
    return abs(last.value - limit) < abs(earlier.value - limit) - noise


def _window(t: np.ndarray, y: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    t, y = np.asarray(t, dtype=np.float64), np.asarray(y, dtype=np.float64)
    keep = (t >= lo * (1 - 1e-12)) & (t <= hi * (1 + 1e-12)) & np.isfinite(y)
    if keep.sum() < 2:
        raise ValueError(f"fewer than two recorded points in [{lo:g}, {hi:g}]")
    return t[keep], y[keep]


def decade_factor(t: np.ndarray, y: np.ndarray, start: float) -> float:
    """y(t)/y(10t) over the decade [start, 10·start] (y > 0)."""
    tw, yw = _window(t, y, start, 10 * start)
    if np.any(yw <= 0):
        return float("nan")
    return float(10.0 ** -slope(np.log10(tw), np.log10(yw)))


def decade_increment(t: np.ndarray, y: np.ndarray, start: float) -> float:
    """y(10t) − y(t) over the decade [start, 10·start]."""
    tw, yw = _window(t, y, start, 10 * start)
    return slope(np.log10(tw), yw)


def log_exponent(t: np.ndarray, y: np.ndarray, lo: float, hi: float) -> float:
    """A in y ≈ c·(ln t)^(−a) over [lo, hi] (lo > 1, y > 0)."""
    tw, yw = _window(t, y, lo, hi)
    if np.any(yw <= 0) or tw.min() <= 1:
        return float("nan")
    return -slope(np.log(np.log(tw)), np.log(yw))


def last_decades(t_end: float, k: int) -> list[float]:
    """Starts of the last k full decades before t_end, oldest first: t_end/10^k … t_end/10."""
    return [t_end / 10.0**j for j in range(k, 0, -1)]


def at(t: np.ndarray, y: np.ndarray, step: float) -> float:
    """Y at the recorded step closest to `step` on a log axis."""
    t = np.asarray(t, dtype=np.float64)
    return float(np.asarray(y)[np.argmin(np.abs(np.log(t / step)))])


def log_steps(t_end: int, per_decade: int) -> np.ndarray:
    """Steps 1 … t_end, `per_decade` per decade, evenly on a log axis, with every power of 10
    (and t_end) among them, so decade windows start and end on recorded points."""
    n = int(np.ceil(np.log10(t_end) * per_decade))
    steps = np.unique(np.round(10.0 ** (np.arange(n + 1) / per_decade)).astype(np.int64))
    return np.unique(np.append(steps[steps <= t_end], t_end))

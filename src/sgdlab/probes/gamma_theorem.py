"""Theorem 1 of "An optimization principle of deep learning?" (anonymous ICLR 2020 submission)
checked on the columns the `gamma` probe records (`probes.gamma`): 1.1 the normalized distance to
θ* is non-increasing; γ_k > 0 on the defined steps; 1.3 the summed loss gap stays below
1/(2ηγ_min), checked on every maximal stretch of steps where the principle holds (`rate_check`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# The distances, inner products and losses the rate bound is made of are float32 sums, so a
# stretch whose Σ gap exceeds its bound by less than this relative amount is rounding.
RATE_RTOL = 64 * float(np.finfo(np.float32).eps)


def premise_steps(gamma: np.ndarray, excess: np.ndarray) -> np.ndarray:
    """Where Definition 1 of the γ-principle holds at step k for some γ > 0: γ_k > 0 where γ_k is
    defined (NaN elsewhere); where it is not (loss gap ≤ gap_tol) the inequality asks only that
    `excess` = ⟨θ_k − θ*, U_k⟩ − (η/2)‖U_k‖² ≥ 0, i.e. that the step not move away from θ*."""
    return np.where(np.isnan(gamma), excess >= 0, gamma > 0)


def maximal_stretches(inside: np.ndarray, steps: np.ndarray) -> list[tuple[int, int]]:
    """Row ranges [i, j) of the maximal runs of consecutive steps (`steps` increasing by 1)
    where `inside` is true: a measured step outside, or an unmeasured one, ends a stretch.

    >>> import numpy as np
    >>> maximal_stretches(np.array([1, 1, 0, 1, 1, 1], bool), np.array([0, 1, 2, 3, 4, 6]))
    [(0, 2), (3, 5), (5, 6)]
    """
    out: list[tuple[int, int]] = []
    start = None
    for i in range(len(inside)):
        if start is not None and (not inside[i] or steps[i] != steps[i - 1] + 1):
            out.append((start, i))
            start = None
        if inside[i] and start is None:
            start = i
    if start is not None:
        out.append((start, len(inside)))
    return out


@dataclass(frozen=True)
class Stretch:
    """Theorem 1.3 of "An optimization principle of deep learning?" restarted at the first step a
    of a stretch a … b of steps where the principle holds (its proof telescopes from θ_a):

        Σ_{k=a}^{b} max(gap_k, 0) ≤ d_a² / (2·min_k η_k γ_k),   d_a = ‖θ_a − θ*‖/‖θ_0 − θ*‖

    (= 1/(2ηγ_min) for a = 0 and a constant η; the bound is infinite when no γ_k of the stretch is
    defined, NaN when an η_k is unknown). `first` and `last` are step numbers."""

    first: int
    last: int
    gap_sum: float
    bound: float

    @property
    def steps(self) -> int:
        """How many steps the stretch covers."""
        return self.last - self.first + 1

    @property
    def holds(self) -> bool:
        """Σ gap ≤ bound, up to RATE_RTOL of the bound (float32 rounding)."""
        return self.gap_sum <= self.bound * (1 + RATE_RTOL)

    @property
    def usage(self) -> float:
        """Σ gap / bound: the share of the bound the stretch uses (0 for an infinite bound)."""
        return self.gap_sum / self.bound if math.isfinite(self.bound) and self.bound > 0 else 0.0


@dataclass(frozen=True)
class RateCheck:
    """Theorem 1.3 checked on every maximal stretch of a run where the principle holds
    (`rate_check`): the stretches and how many steps the run has."""

    steps: int
    stretches: tuple[Stretch, ...]

    @property
    def covered_steps(self) -> int:
        """Steps inside some stretch: the part of the path the theorem speaks for."""
        return sum(s.steps for s in self.stretches)

    @property
    def covered_fraction(self) -> float:
        """covered_steps / steps (NaN for an empty run)."""
        return self.covered_steps / self.steps if self.steps else math.nan

    @property
    def violations(self) -> list[Stretch]:
        """The stretches whose Σ gap exceeds their bound."""
        return [s for s in self.stretches if not s.holds]

    @property
    def worst_usage(self) -> float:
        """The largest Σ gap / bound over the stretches (0 when there are none)."""
        return max((s.usage for s in self.stretches), default=0.0)

    def summary(self) -> dict[str, float]:
        """Flat numbers for a table row."""
        return {
            "rate_stretches": len(self.stretches),
            "rate_covered_steps": self.covered_steps,
            "rate_covered_fraction": self.covered_fraction,
            "rate_violations": len(self.violations),
            "rate_worst_usage": self.worst_usage,
        }


def rate_check(
    steps: np.ndarray,
    gamma: np.ndarray,
    excess: np.ndarray,
    gap: np.ndarray,
    dist: np.ndarray,
    lr: np.ndarray,
) -> RateCheck:
    """Theorem 1.3 on every maximal stretch of consecutive steps where Definition 1 holds
    (`premise_steps`; γ_k NaN where undefined, `excess` = ⟨θ_k − θ*, U_k⟩ − (η/2)‖U_k‖², `gap` the
    loss gap, `dist` the normalized distance, `lr` η_k; one entry per measured step).

    By γ's definition ‖θ_{k+1} − θ*‖² = ‖θ_k − θ*‖² − 2η_kγ_k‖θ_0 − θ*‖²·gap_k holds exactly, so
    on consistent measurements every stretch meets its bound: a violation means the columns
    disagree with each other (a wrong η, a skipped step); what a run decides is how much of its
    path the principle covers."""
    stretches = []
    for i, j in maximal_stretches(premise_steps(gamma, excess), steps):
        defined = ~np.isnan(gamma[i:j])
        rate = lr[i:j][defined] * gamma[i:j][defined]
        if not len(rate):
            bound = math.inf  # no defined γ: every gap is below the instrument's tolerance
        else:  # an unknown η makes the bound NaN, which no Σ gap meets
            bound = dist[i] ** 2 / (2 * float(rate.min())) if not np.isnan(rate).any() else math.nan
        gap_sum = float(np.sum(np.clip(gap[i:j], 0, None)))
        stretches.append(Stretch(int(steps[i]), int(steps[j - 1]), gap_sum, float(bound)))
    return RateCheck(len(steps), tuple(stretches))


def _column(table: pa.Table, name: str) -> np.ndarray:
    """A float column as numpy (NaN for nulls; all NaN when the table lacks it)."""
    if name not in table.column_names:
        return np.full(table.num_rows, np.nan)
    return table[name].to_numpy(zero_copy_only=False).astype(float)


def _gamma_rows(table: pa.Table) -> pa.Table:
    return table.filter(pc.is_valid(table["gamma_dist"]))


def rate_check_of(table: pa.Table) -> RateCheck:
    """`rate_check` on a run's metrics (the γ columns of every measured step, and η_k in `lr`,
    which the `batch_loss` probe records)."""
    if table.num_rows and "lr" not in table.column_names:
        raise ValueError("Theorem 1.3 needs η_k: record the lr column (the batch_loss probe)")
    rows = _gamma_rows(table)
    gamma = np.where(_column(rows, "gamma_defined") > 0, _column(rows, "gamma"), np.nan)
    return rate_check(
        rows["step"].to_numpy(),
        gamma,
        _column(rows, "gamma_coherence") - _column(rows, "gamma_update_term"),
        _column(rows, "gamma_loss_gap"),
        _column(rows, "gamma_dist"),
        _column(rows, "lr"),
    )


def theorem_checks(table: pa.Table) -> dict[str, Any]:
    """Theorem 1 of “An optimization principle of deep learning?” on a run's metrics (γ columns
    from every step): 1.1 the normalized distance is non-increasing (largest increase reported);
    γ > 0 on defined steps (fraction); 1.3 on every maximal stretch where the principle holds
    (`rate_check`)."""
    rows = _gamma_rows(table)
    dist = _column(rows, "gamma_dist")
    gamma = np.where(_column(rows, "gamma_defined") > 0, _column(rows, "gamma"), np.nan)
    defined = ~np.isnan(gamma)
    increases = np.diff(dist)
    return {
        "steps": len(dist),
        "defined_steps": int(defined.sum()),
        "positive_fraction": float((gamma[defined] > 0).mean()) if defined.any() else math.nan,
        "gamma_median": float(np.median(gamma[defined])) if defined.any() else math.nan,
        "dist_max_increase": max(0.0, float(increases.max())) if len(increases) else 0.0,
        "dist_increases": int((increases > 0).sum()),
        "dist_final": float(dist[-1]) if len(dist) else math.nan,
        **rate_check_of(table).summary(),
    }

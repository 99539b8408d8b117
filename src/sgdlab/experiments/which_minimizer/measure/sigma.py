"""Experiment 1 of `which-minimizer` as plain numbers: the σ runs of one architecture, per σ and
init (`SigmaRuns`), the procedure's trials below the grid (`Below`), and the finite-width
baseline at a reference σ."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..stats import FiniteWidth, Stat, error, half_mse, rms
from .table import Table


@dataclass(frozen=True)
class Below:
    """The procedure's trials below the σ grid (capped at its budget), per σ (rows, ascending)
    and init (columns, as in `SigmaRuns`): NaN where a trial did not reach the loss threshold.

    Attributes:
        sigmas: [T] the σ tried below the grid.
        val_loss, test_loss, test_error: as in `SigmaRuns`.
        steps: steps to the loss threshold.
    """

    sigmas: np.ndarray
    val_loss: np.ndarray
    test_loss: np.ndarray
    test_error: np.ndarray
    steps: np.ndarray


@dataclass(frozen=True)
class SigmaRuns:
    """Experiment 1 on one architecture: per σ (rows, ascending) and init (columns, the same θ_0
    draws and data split in a column), NaN where a run missed the loss threshold.

    Attributes:
        arch: the architecture's key (claim ids), depth: L, its number of hidden layers.
        sigmas: [S] the σ grid; seeds: [I] the inits.
        test_loss: ½·mean (f_T − y)² of the trained nets on the test points.
        closed_form_loss: the same for the closed-form GD limit f_∞ at θ_0.
        test_error: the trained nets' 0-1 test error (reported).
        val_loss: the trained nets' loss on the validation points (the procedure's choice).
        init_trained: RMS over test points of f_T(x) − Θ̂(x,X)Θ̂⁻¹Y.
        init_closed: RMS of the closed form's initialization part f_0(x) − Θ̂(x,X)Θ̂⁻¹f_0(X).
        gap: RMS of f_T − f_∞ (the finite-width error).
        steps: steps to the loss threshold.
        kernel_change: ‖Θ̂(θ_T) − Θ̂(θ_0)‖_F/‖Θ̂(θ_0)‖_F on the training points.
        below: the procedure's trials below the grid, if any.
    """

    arch: str
    depth: int
    sigmas: np.ndarray
    seeds: np.ndarray
    test_loss: np.ndarray
    closed_form_loss: np.ndarray
    test_error: np.ndarray
    val_loss: np.ndarray
    init_trained: np.ndarray
    init_closed: np.ndarray
    gap: np.ndarray
    steps: np.ndarray
    kernel_change: np.ndarray
    below: Below | None = None

    def at(self, values: np.ndarray, sigma: float) -> np.ndarray:
        """The per-init row of `values` at `sigma`."""
        return values[int(np.flatnonzero(self.sigmas == sigma)[0])]

    def mean(self, values: np.ndarray) -> np.ndarray:
        """Per σ, the mean over the inits that reached the threshold."""
        return np.array([Stat.of(row).mean for row in values])


def finite_width(m: SigmaRuns, sigma: float) -> FiniteWidth:
    """The finite-width baseline: the gap of the trained nets to the closed form at `sigma`."""
    return FiniteWidth(Stat.of(m.at(m.gap, sigma)), sigma)


def sigma_runs(t: Table, dataset: str, arch: str, depth: int) -> SigmaRuns:
    """The σ runs of `arch` on `dataset` from the measured table, paired by seed (runs that
    missed the loss threshold or have no closed form are NaN)."""
    rows = t.rows(part="sigma", dataset=dataset, arch=arch)
    sigmas = np.array(sorted({float(t["sigma"][i]) for i in rows}))
    seeds = sorted({int(t["seed"][i]) for i in rows})
    per = [
        {
            k: i
            for k, i in t.converged(part="sigma", dataset=dataset, arch=arch, sigma=x).items()
            if t.has_closed_form(i)
        }
        for x in sigmas
    ]
    c = t.c

    def grid(value) -> np.ndarray:
        return np.stack([t.per_seed(seeds, runs, value) for runs in per])

    return SigmaRuns(
        arch=arch,
        depth=depth,
        sigmas=sigmas,
        seeds=np.array(seeds),
        test_loss=grid(lambda i: half_mse(c["f_test"][i], c["y_test"][i])),
        closed_form_loss=grid(
            lambda i: half_mse(c["interpolating"][i] + c["initialization"][i], c["y_test"][i])
        ),
        test_error=grid(lambda i: error(c["f_test"][i], c["y_test"][i])),
        val_loss=grid(lambda i: half_mse(c["f_val"][i], c["y_val"][i])),
        init_trained=grid(lambda i: rms(c["f_test"][i] - c["interpolating"][i])),
        init_closed=grid(lambda i: rms(c["initialization"][i])),
        gap=grid(t.gap),
        steps=grid(lambda i: float(c["steps"][i])),
        kernel_change=grid(
            lambda i: float(c["kernel_change"][i]) if c["kernel_change"][i] is not None else np.nan
        ),
        below=_below(t, dataset, arch, seeds),
    )


def _below(t: Table, dataset: str, arch: str, seeds: list[int]) -> Below | None:
    """The procedure's trial runs below the grid (part "trial"), NaN where one did not reach
    the loss threshold within its budget."""
    rows = t.rows(part="trial", dataset=dataset, arch=arch)
    if not rows:
        return None
    sigmas = np.array(sorted({float(t["sigma"][i]) for i in rows}))
    per = [t.converged(part="trial", dataset=dataset, arch=arch, sigma=x) for x in sigmas]
    c = t.c

    def grid(value) -> np.ndarray:
        return np.stack([t.per_seed(seeds, runs, value) for runs in per])

    return Below(
        sigmas=sigmas,
        val_loss=grid(lambda i: half_mse(c["f_val"][i], c["y_val"][i])),
        test_loss=grid(lambda i: half_mse(c["f_test"][i], c["y_test"][i])),
        test_error=grid(lambda i: error(c["f_test"][i], c["y_test"][i])),
        steps=grid(lambda i: float(c["steps"][i])),
    )

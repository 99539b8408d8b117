"""Experiment 4 of `which-minimizer` as plain numbers: the narrow net's gaps to the closed forms
linearized at θ_0 and at a later θ_T, its test loss at two σ, and AdaGrad's distance to GD
(`LaterRuns`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..settings import Settings
from ..stats import error, half_mse, rms
from .table import Table


@dataclass(frozen=True)
class LaterRuns:
    """Experiment 4 per GD run (both σ, for the linearization) and per init (for the rest).

    Attributes:
        arch: the architecture's key; sigmas: (the standard, a large) σ.
        gap_theta0 / gap_theta_t: per GD run, RMS test gap of the trained net to the closed form
            linearized at θ_0 / at θ_T.
        kernel_change: per GD run, ‖Θ̂(θ_final) − Θ̂(θ_0)‖_F/‖Θ̂(θ_0)‖_F; t_fraction: T/steps.
        kernel_tol: how far Θ̂ may still move after T (and the premise: it moved more overall).
        test_loss / test_error: σ → per init, GD's ½·mean (f − y)² / 0-1 error on test points.
        adagrad_test / adagrad_train: per init, AdaGrad's RMS distance to GD at the standard σ
            on test / training points; gd_gap_t: GD's gap_theta_t per init at the standard σ.
    """

    arch: str
    sigmas: tuple[float, float]
    gap_theta0: np.ndarray
    gap_theta_t: np.ndarray
    kernel_change: np.ndarray
    t_fraction: np.ndarray
    kernel_tol: float
    test_loss: dict[float, np.ndarray]
    test_error: dict[float, np.ndarray]
    adagrad_test: np.ndarray
    adagrad_train: np.ndarray
    gd_gap_t: np.ndarray


def later_runs(t: Table, s: Settings, dataset: str, arch: str) -> LaterRuns:
    """The later-part runs from the measured table (GD runs without a θ_T prediction are NaN)."""
    small, big = s.later.sigmas
    seeds = sorted({int(t["seed"][i]) for i in t.rows(part="later", dataset=dataset, arch=arch)})
    gd = {
        x: t.converged(part="later", dataset=dataset, arch=arch, optimizer="gd", sigma=x)
        for x in (small, big)
    }
    ada = t.converged(part="later", dataset=dataset, arch=arch, optimizer="adagrad", sigma=small)
    c = t.c

    def later_gap(i: int) -> float:
        return np.nan if c["later_prediction"][i] is None else rms(c["f_test"][i] - c["later_prediction"][i])

    def column(name: str):
        return lambda i: float(c[name][i]) if c[name][i] is not None else np.nan

    runs = [gd[x] for x in (small, big)]
    both = lambda value: np.concatenate([t.per_seed(seeds, r, value) for r in runs])  # noqa: E731
    return LaterRuns(
        arch=arch,
        sigmas=(small, big),
        gap_theta0=both(t.gap),
        gap_theta_t=both(later_gap),
        kernel_change=both(column("kernel_change_from_init")),
        t_fraction=both(column("later_fraction")),
        kernel_tol=s.later.kernel_tol,
        test_loss={
            x: t.per_seed(seeds, gd[x], lambda i: half_mse(c["f_test"][i], c["y_test"][i]))
            for x in (small, big)
        },
        test_error={
            x: t.per_seed(seeds, gd[x], lambda i: error(c["f_test"][i], c["y_test"][i])) for x in (small, big)
        },
        adagrad_test=t.distances(ada, gd[small], seeds),
        adagrad_train=t.distances(ada, gd[small], seeds, "f_train"),
        gd_gap_t=t.per_seed(seeds, gd[small], later_gap),
    )

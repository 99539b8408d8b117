"""Experiment 2 of `which-minimizer` as plain numbers: GD, SGD, AdaGrad and Adam from the same θ_0
(`AdaptiveRuns`), and Example 1's GD and AdaGrad on one training point against their closed
forms (`SignKernelRuns`), per init."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..stats import error, half_mse, rms
from .table import Table

ADAPTIVE = ("adagrad", "adam")


@dataclass(frozen=True)
class AdaptiveRuns:
    """Experiment 2 on one architecture, per init (NaN where a run missed the threshold).

    Attributes:
        arch: the architecture's key; seeds: [I] the inits.
        gd_gap: GD's RMS test-output gap to its closed-form limit (the finite-width error).
        sgd_distance: mini-batch SGD's RMS test distance to GD (same θ_0, another path to the
            same linearized minimizer): the null of the comparison.
        sgd_train_distance: the same on the training points (reported).
        test_distance / train_distance: adaptive optimizer → RMS distance of its outputs to
            GD's on the test / training points.
        test_loss / test_error: optimizer (gd included) → ½·mean (f − y)² / 0-1 error on the
            test points.
    """

    arch: str
    seeds: np.ndarray
    gd_gap: np.ndarray
    sgd_distance: np.ndarray
    sgd_train_distance: np.ndarray
    test_distance: dict[str, np.ndarray]
    train_distance: dict[str, np.ndarray]
    test_loss: dict[str, np.ndarray]
    test_error: dict[str, np.ndarray]


def adaptive_runs(t: Table, dataset: str, arch: str) -> AdaptiveRuns:
    """The adaptive-part runs of `arch` on `dataset` from the measured table, paired by seed."""
    rows = {
        opt: t.converged(part="adaptive", dataset=dataset, arch=arch, optimizer=opt)
        for opt in ("gd", "sgd", *ADAPTIVE)
    }
    seeds = sorted({int(t["seed"][i]) for i in t.rows(part="adaptive", dataset=dataset, arch=arch)})
    c = t.c
    present = [opt for opt in ADAPTIVE if rows[opt]]
    return AdaptiveRuns(
        arch=arch,
        seeds=np.array(seeds),
        gd_gap=t.per_seed(seeds, rows["gd"], t.gap),
        sgd_distance=t.distances(rows["sgd"], rows["gd"], seeds),
        sgd_train_distance=t.distances(rows["sgd"], rows["gd"], seeds, "f_train"),
        test_distance={opt: t.distances(rows[opt], rows["gd"], seeds) for opt in present},
        train_distance={opt: t.distances(rows[opt], rows["gd"], seeds, "f_train") for opt in present},
        test_loss={
            opt: t.per_seed(seeds, rows[opt], lambda i: half_mse(c["f_test"][i], c["y_test"][i]))
            for opt in ("gd", *present)
        },
        test_error={
            opt: t.per_seed(seeds, rows[opt], lambda i: error(c["f_test"][i], c["y_test"][i]))
            for opt in ("gd", *present)
        },
    )


@dataclass(frozen=True)
class SignKernelRuns:
    """Example 1 per init: RMS distances over the test points between the trained nets (GD,
    AdaGrad, one training point) and the two closed forms at their θ_0 — GD's φ(x)ᵀφ_1/‖φ_1‖²
    and the sign kernel's φ(x)ᵀsign(φ_1)/‖φ_1‖₁ limit — and between the closed forms."""

    arch: str
    seeds: np.ndarray
    gd_to_gd_limit: np.ndarray
    gd_to_sign_limit: np.ndarray
    adagrad_to_sign_limit: np.ndarray
    adagrad_to_gd_limit: np.ndarray
    adagrad_to_gd: np.ndarray
    limits_apart: np.ndarray


def sign_kernel_runs(t: Table, dataset: str, arch: str) -> SignKernelRuns:
    """The Example 1 runs of `arch` on `dataset`, paired by seed."""
    gd = t.converged(part="example1", dataset=dataset, arch=arch, optimizer="gd")
    ada = t.converged(part="example1", dataset=dataset, arch=arch, optimizer="adagrad")
    seeds = sorted({int(t["seed"][i]) for i in t.rows(part="example1", dataset=dataset, arch=arch)})
    c = t.c

    def to(rows: dict[int, int], column: str) -> np.ndarray:
        return t.per_seed(seeds, rows, lambda i: rms(c["f_test"][i] - c[column][i]))

    return SignKernelRuns(
        arch=arch,
        seeds=np.array(seeds),
        gd_to_gd_limit=to(gd, "gd_limit"),
        gd_to_sign_limit=to(gd, "sign_limit"),
        adagrad_to_sign_limit=to(ada, "sign_limit"),
        adagrad_to_gd_limit=to(ada, "gd_limit"),
        adagrad_to_gd=t.distances(ada, gd, seeds),
        limits_apart=t.per_seed(seeds, gd, lambda i: rms(c["sign_limit"][i] - c["gd_limit"][i])),
    )

"""Experiment 2 of `which-minimizer` (Nonnenmacher, Reeb & Steinwart 2021, Sect. 4, Fig. 3 and
Example 1): GD vs AdaGrad vs Adam from the same θ_0, and AdaGrad on one training point against
its closed form, the sign kernel. Each claim is one function of plain per-init numbers:

  minimizers-differ      each adaptive method's test outputs are further from GD's than those of
                         plain SGD from the same θ_0 — a different path to the same linearized
                         minimizer (Thm 5.1(a)), so the measured size of the finite-width error
                         such a comparison carries
  gd-generalizes-better  each adaptive method's test loss is above GD's
  example1/closed-form   on one training point x_1, GD's trained net is nearest its closed form
                         f_0(x) + φ(x)ᵀφ_1/‖φ_1‖²·(y_1 − f_0(x_1)) and AdaGrad's nearest the
                         sign kernel's f_0(x) + φ(x)ᵀsign(φ_1)/‖φ_1‖₁·(y_1 − f_0(x_1))
  example1/minimizers-differ  the two trained nets differ by more than their gaps to those
                         closed forms
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..base import Claim, decide, not_applicable
from .settings import Arch, Settings
from .stats import SIGNIFICANCE, Stat, error, half_mse, paired, rms
from .table import Table, premise

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


def minimizers_differ_claim(group: str, m: AdaptiveRuns) -> Claim:
    """`<group>/minimizers-differ` (Thm 4.1): each adaptive method's RMS test distance to GD is
    above mini-batch SGD's from the same θ_0, paired by init, by more than SIGNIFICANCE standard
    errors. SGD reaches GD's linearized minimizer by another path (Thm 5.1(a)), so its distance
    is the finite-width error such a comparison carries — measured, where the triangle bound
    2 × GD's gap to its closed form (reported) assumes the two nets' errors share nothing. On
    the training points every pair agrees to within 2√(2·stop_loss) by the premise (reported)."""
    excess = {opt: paired(d, m.sgd_distance) for opt, d in m.test_distance.items()}
    null = Stat.of(m.sgd_distance)
    return decide(
        f"{group}/minimizers-differ",
        f"{m.arch}: AdaGrad's and Adam's minimizers differ from GD's on test points by more than "
        f"plain SGD's from the same θ_0 (paired, by > {SIGNIFICANCE:g} standard errors)",
        bool(excess) and all(e.above(0.0) for e in excess.values()),
        headline="; ".join(
            f"{opt}: test {Stat.of(m.test_distance[opt]).mean:.3f} "
            f"vs train {Stat.of(m.train_distance[opt]).mean:.4f}"
            for opt in m.test_distance
        )
        + f" (SGD {null.mean:.4f}; GD's gap {Stat.of(m.gd_gap).mean:.3f})",
        meaning="Thm 4.1: adaptive updates interpolate with a different kernel Θ_A, so the optimizer — "
        "not just the path — decides which minimizer is reached",
        sgd_distance=null.as_dict(),
        sgd_train_distance=Stat.of(m.sgd_train_distance).as_dict(),
        gd_gap=Stat.of(m.gd_gap).as_dict(),
        triangle_bound=2 * Stat.of(m.gd_gap).mean,
        test_distance={opt: Stat.of(d).as_dict() for opt, d in m.test_distance.items()},
        train_distance={opt: Stat.of(d).as_dict() for opt, d in m.train_distance.items()},
        excess_over_sgd={opt: e.as_dict() for opt, e in excess.items()},
    )


def gd_generalizes_better_claim(group: str, m: AdaptiveRuns) -> Claim:
    """`<group>/gd-generalizes-better` (Fig. 3): each adaptive method's test loss is above GD's,
    paired by init, by more than SIGNIFICANCE standard errors."""
    worse = {opt: paired(m.test_loss[opt], m.test_loss["gd"]) for opt in m.test_distance}
    return decide(
        f"{group}/gd-generalizes-better",
        f"{m.arch}: GD's minimizer has a lower test loss than AdaGrad's and Adam's (paired by init, "
        f"by > {SIGNIFICANCE:g} standard errors)",
        bool(worse) and all(w.above(0.0) for w in worse.values()),
        headline="; ".join(
            f"{opt}: {100 * Stat.of(m.test_error[opt]).mean:.1f}% / {Stat.of(m.test_loss[opt]).mean:.4f}"
            for opt in m.test_loss
        )
        + " (test error / loss)",
        meaning="the paper's Fig. 3: the adaptive minimizers generalize worse than GD's",
        test_loss={opt: Stat.of(v).as_dict() for opt, v in m.test_loss.items()},
        test_error={opt: Stat.of(v).as_dict() for opt, v in m.test_error.items()},
        difference_to_gd={opt: w.as_dict() for opt, w in worse.items()},
    )


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


def adaptive_claims(t: Table, s: Settings, dataset: str, arch: Arch) -> list[Claim]:
    """The premise, minimizers-differ and gd-generalizes-better on `arch` (see the module)."""
    group = f"adaptive/{dataset}/{arch.key}"
    rows = t.rows(part="adaptive", dataset=dataset, arch=arch.key)
    if not rows:
        return []
    claims = [premise(f"{group}/premise", f"GD, AdaGrad and Adam, {arch.key}", t, rows)]
    m = adaptive_runs(t, dataset, arch.key)
    if not m.test_distance or Stat.of(m.sgd_distance).n < 2:
        return claims + [
            not_applicable(
                f"{group}/minimizers-differ",
                "adaptive vs GD minimizers",
                "fewer than two inits with converged GD and SGD runs, or no converged adaptive run",
            )
        ]
    return claims + [minimizers_differ_claim(group, m), gd_generalizes_better_claim(group, m)]


# ---------------------------------------------------------------------------------------
# Example 1: one training point


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


def example1_closed_form_claim(group: str, m: SignKernelRuns) -> Claim:
    """`<group>/closed-form` (Example 1): each trained net is nearer its own closed form than
    the other method's — GD's to φ(x)ᵀφ_1/‖φ_1‖², AdaGrad's to the sign kernel — paired by
    init, by more than SIGNIFICANCE standard errors: the closed forms tell the two minimizers
    apart."""
    gd_margin = paired(m.gd_to_sign_limit, m.gd_to_gd_limit)
    ada_margin = paired(m.adagrad_to_gd_limit, m.adagrad_to_sign_limit)
    return decide(
        f"{group}/closed-form",
        f"{m.arch}, one training point: GD's net is nearest f_0(x) + φ(x)ᵀφ_1/‖φ_1‖²·(y_1 − f_0(x_1)), "
        "AdaGrad's nearest the sign kernel's f_0(x) + φ(x)ᵀsign(φ_1)/‖φ_1‖₁·(y_1 − f_0(x_1))",
        gd_margin.above(0.0) and ada_margin.above(0.0),
        headline=f"AdaGrad: {Stat.of(m.adagrad_to_sign_limit).mean:.4f} to the sign kernel vs "
        f"{Stat.of(m.adagrad_to_gd_limit).mean:.4f} to GD's; GD: {Stat.of(m.gd_to_gd_limit).mean:.4f} vs "
        f"{Stat.of(m.gd_to_sign_limit).mean:.4f} (RMS over test points; limits "
        f"{Stat.of(m.limits_apart).mean:.4f} apart)",
        meaning="Example 1 / Thm 4.1: AdaGrad converges to the minimum-complexity interpolant of a different "
        "kernel, the sign kernel, not to GD's",
        gd_to_gd_limit=Stat.of(m.gd_to_gd_limit).as_dict(),
        gd_to_sign_limit=Stat.of(m.gd_to_sign_limit).as_dict(),
        adagrad_to_sign_limit=Stat.of(m.adagrad_to_sign_limit).as_dict(),
        adagrad_to_gd_limit=Stat.of(m.adagrad_to_gd_limit).as_dict(),
        limits_apart=Stat.of(m.limits_apart).as_dict(),
        gd_margin=gd_margin.as_dict(),
        adagrad_margin=ada_margin.as_dict(),
    )


def example1_differ_claim(group: str, m: SignKernelRuns) -> Claim:
    """`<group>/minimizers-differ` (Example 1): the trained AdaGrad and GD nets differ on test
    points by more than the sum of their gaps to their closed forms (what finite width alone
    could explain), paired by init, by more than SIGNIFICANCE standard errors."""
    errors = m.gd_to_gd_limit + m.adagrad_to_sign_limit
    excess = paired(m.adagrad_to_gd, errors)
    return decide(
        f"{group}/minimizers-differ",
        f"{m.arch}, one training point: AdaGrad's and GD's minimizers differ on test points by more "
        "than their finite-width gaps to their closed forms",
        excess.above(0.0),
        headline=f"AdaGrad vs GD {Stat.of(m.adagrad_to_gd).mean:.4f} "
        f"vs gaps {Stat.of(errors).mean:.4f} (RMS)",
        meaning="Example 1: the minimizer reached by AdaGrad differs from GD's away from the training point",
        adagrad_to_gd=Stat.of(m.adagrad_to_gd).as_dict(),
        finite_width_gaps=Stat.of(errors).as_dict(),
        excess=excess.as_dict(),
    )


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


def example1_claims(t: Table, s: Settings, dataset: str) -> list[Claim]:
    """The premise and the two Example 1 claims (see the module)."""
    arch = s.example1.arch
    group = f"example1/{dataset}/{arch.key}"
    rows = t.rows(part="example1", dataset=dataset, arch=arch.key)
    if not rows:
        return []
    claims = [premise(f"{group}/premise", f"GD and AdaGrad on one training point, {arch.key}", t, rows)]
    m = sign_kernel_runs(t, dataset, arch.key)
    return claims + [example1_closed_form_claim(group, m), example1_differ_claim(group, m)]

"""Experiment 4 of `which-minimizer` (Nonnenmacher, Reeb & Steinwart 2021, Sect. 6 and Fig. 1):
a narrow net on more data, whose kernel moves during training, linearized at a later iterate θ_T
(the earliest saved iterate from which Θ̂ changes by at most `Later.kernel_tol` to the end).

  linearize-later         the closed form linearized at θ_T predicts the trained net better
                          than the one at θ_0 (premise: the kernel moved — the net is not lazy)
  sigma-still-matters     the larger σ still raises the test loss
  adaptive-still-differs  AdaGrad's test outputs are further from GD's than twice the gap of
                          the later linearization (its finite-width error)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..base import Claim, decide, not_applicable
from .settings import Settings
from .stats import SIGNIFICANCE, Stat, error, half_mse, paired, rms
from .table import Table, premise


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


def linearize_later_claim(group: str, m: LaterRuns) -> Claim:
    """`<group>/linearize-later` (Sect. 6): the closed form linearized at θ_T is nearer the
    trained net than the one at θ_0, paired by run, by more than SIGNIFICANCE standard errors.
    Premise: the median kernel change from θ_0 exceeds `kernel_tol` (else the net is still lazy
    and θ_0 is as good a point as any)."""
    statement = (
        f"{m.arch}: linearized at a later time T the closed form predicts the trained net better than at θ_0"
    )
    change = float(np.nanmedian(m.kernel_change)) if np.isfinite(m.kernel_change).any() else np.nan
    improvement = paired(m.gap_theta0, m.gap_theta_t)
    fraction = float(np.nanmedian(m.t_fraction)) if np.isfinite(m.t_fraction).any() else np.nan
    evidence = dict(
        gap_from_theta0=Stat.of(m.gap_theta0).as_dict(),
        gap_from_theta_T=Stat.of(m.gap_theta_t).as_dict(),
        improvement=improvement.as_dict(),
        median_T_fraction=fraction,
        median_kernel_change_from_init=change,
        kernel_tol=m.kernel_tol,
    )
    if not change > m.kernel_tol:
        return not_applicable(
            f"{group}/linearize-later",
            statement,
            f"the kernel moved by {change:.3g} ≤ {m.kernel_tol:g} (or not at all measured): still lazy",
            **evidence,
        )
    return decide(
        f"{group}/linearize-later",
        statement,
        improvement.above(0.0),
        headline=f"gap {Stat.of(m.gap_theta_t).mean:.3f} from θ_T "
        f"(T at {100 * fraction:.0f}% of training) "
        f"vs {Stat.of(m.gap_theta0).mean:.3f} from θ_0; Θ̂ moved {100 * change:.0f}%",
        meaning="Sect. 6: once the kernel has settled, the analysis applies from θ_T on, so the minimizer "
        "is still 'chosen' by the state at T and the optimizer after it",
        **evidence,
    )


def sigma_still_matters_claim(group: str, m: LaterRuns) -> Claim:
    """`<group>/sigma-still-matters` (Fig. 1): the larger σ raises GD's test loss, paired by
    init, by more than SIGNIFICANCE standard errors."""
    small, big = m.sigmas
    rise = paired(m.test_loss[big], m.test_loss[small])
    loss = {x: Stat.of(m.test_loss[x]) for x in m.sigmas}
    err = {x: Stat.of(m.test_error[x]) for x in m.sigmas}
    return decide(
        f"{group}/sigma-still-matters",
        f"{m.arch}: a large σ still raises the test loss (σ={big:g} vs σ={small:g} from the same draws, "
        f"paired, by > {SIGNIFICANCE:g} standard errors)",
        rise.above(0.0),
        headline=f"test loss {loss[small].mean:.4f} → {loss[big].mean:.4f} (error "
        f"{100 * err[small].mean:.1f}% → {100 * err[big].mean:.1f}%)",
        meaning="Fig. 1 of the paper: the initialization effect persists in less over-parameterized nets",
        test_loss={f"{x:g}": v.as_dict() for x, v in loss.items()},
        test_error={f"{x:g}": v.as_dict() for x, v in err.items()},
        paired_difference=rise.as_dict(),
    )


def adaptive_still_differs_claim(group: str, m: LaterRuns) -> Claim:
    """`<group>/adaptive-still-differs` (Fig. 1): AdaGrad's test distance to GD exceeds twice
    GD's gap to its later linearization (the finite-width error of the analysis from θ_T),
    paired by init, by more than SIGNIFICANCE standard errors."""
    excess = paired(m.adagrad_test, 2 * m.gd_gap_t)
    return decide(
        f"{group}/adaptive-still-differs",
        f"{m.arch}: AdaGrad's minimizer still differs from GD's on test points (beyond 2 × the gap of "
        "the later linearization)",
        excess.above(0.0),
        headline=f"test {Stat.of(m.adagrad_test).mean:.3f} vs train {Stat.of(m.adagrad_train).mean:.4f} "
        f"(bound {2 * Stat.of(m.gd_gap_t).mean:.3f})",
        meaning="Fig. 1 of the paper: the optimizer effect persists in less over-parameterized nets",
        test_distance=Stat.of(m.adagrad_test).as_dict(),
        train_distance=Stat.of(m.adagrad_train).as_dict(),
        later_gap=Stat.of(m.gd_gap_t).as_dict(),
        excess=excess.as_dict(),
    )


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


def later_claims(t: Table, s: Settings, dataset: str) -> list[Claim]:
    """The premise and the three claims of experiment 4 (see the module)."""
    arch = s.later.arch.key
    group = f"later/{dataset}/{arch}"
    rows = t.rows(part="later", dataset=dataset, arch=arch)
    if not rows:
        return []
    claims = [premise(f"{group}/premise", f"GD and AdaGrad on a narrow net, {arch}", t, rows)]
    m = later_runs(t, s, dataset, arch)
    return claims + [
        linearize_later_claim(group, m),
        sigma_still_matters_claim(group, m),
        adaptive_still_differs_claim(group, m),
    ]

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

import numpy as np

from ...base import Claim, decide, not_applicable
from ..measure.later import LaterRuns, later_runs
from ..measure.table import Table
from ..settings import Settings
from ..stats import SIGNIFICANCE, Stat, paired
from .premise import premise


def linearize_later_claim(group: str, m: LaterRuns) -> Claim:
    """Claim `<group>/linearize-later` (Sect. 6): the closed form linearized at θ_T is nearer the
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
    """Claim `<group>/sigma-still-matters` (Fig. 1): the larger σ raises GD's test loss, paired by
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
    """Claim `<group>/adaptive-still-differs` (Fig. 1): AdaGrad's test distance to GD exceeds twice
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

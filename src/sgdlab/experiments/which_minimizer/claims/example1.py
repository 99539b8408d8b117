"""Example 1 of `which-minimizer` (Nonnenmacher, Reeb & Steinwart 2021, Sect. 4): GD and AdaGrad
on one training point x_1 against their closed forms. Each claim is one function of the plain
per-init numbers in `SignKernelRuns`:

  closed-form        GD's trained net is nearest its closed form
                     f_0(x) + φ(x)ᵀφ_1/‖φ_1‖²·(y_1 − f_0(x_1)) and AdaGrad's nearest the sign
                     kernel's f_0(x) + φ(x)ᵀsign(φ_1)/‖φ_1‖₁·(y_1 − f_0(x_1))
  minimizers-differ  the two trained nets differ by more than their gaps to those closed forms
"""

from __future__ import annotations

from ...base import Claim, decide
from ..measure.adaptive import SignKernelRuns, sign_kernel_runs
from ..measure.table import Table
from ..settings import Settings
from ..stats import Stat, paired
from .premise import premise


def example1_closed_form_claim(group: str, m: SignKernelRuns) -> Claim:
    """Claim `<group>/closed-form` (Example 1): each trained net is nearer its own closed form than
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
    """Claim `<group>/minimizers-differ` (Example 1): the trained AdaGrad and GD nets differ on test
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

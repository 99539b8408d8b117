"""Experiment 1 of `which-minimizer` (Nonnenmacher, Reeb & Steinwart 2021, Sect. 3 and Fig. 2):
GD at a grid of initialization scales σ from the same θ_0 draws. Each claim is one function of
the plain per-σ, per-init numbers in `SigmaRuns`:

  closed-form     the closed-form GD limit of the linearized net predicts the trained nets'
                  test loss within the seed noise of the inits, at every σ where the nets stay
                  in the lazy regime Thm 3.1 assumes (Θ̂ moves by ≤ `lazy_tol` in training)
  init-term       the trained nets' initialization term f_T(x) − Θ̂(x,X)Θ̂⁻¹Y grows as σ^(L+1)
                  (Thm 3.1–3.2), the slope's tolerance derived from the finite-width gap
  test-loss-rises the test loss at the largest σ is above the best σ's (Thm 3.2's lower bound)
  mitigation      the procedure of Sect. 3 on the grid (`mitigation`)

The interpolating part Θ̂(x,X)Θ̂⁻¹Y itself is not a claim: for zero-bias ReLU nets Θ̂ ∝ σ^(2(L+1))
exactly, so it is σ-invariant by construction (no data could refute it).
"""

from __future__ import annotations

import math

import numpy as np

from ...base import Claim, decide, not_applicable
from ..measure.sigma import SigmaRuns, finite_width, sigma_runs
from ..measure.table import Table
from ..settings import Arch, Settings
from ..stats import SIGNIFICANCE, FiniteWidth, Stat, paired, slope
from .mitigation import mitigation_claim
from .premise import premise

FIT_FLOOR = 3.0  # the σ^(L+1) law is fitted where the init term is ≥ this × the finite-width gap


def closed_form_claim(group: str, m: SigmaRuns, lazy_tol: float) -> Claim:
    """Claim `<group>/closed-form` (Thm 3.1): at every σ where the nets stay lazy (median kernel change
    ≤ `lazy_tol`: Lemma 1's linearization, the theorem's premise), the closed-form GD limit's
    mean test loss is within SIGNIFICANCE standard errors (the seed noise over inits of the
    trained nets' test loss at that σ) of the trained nets' — the closed form draws the paper's
    Fig. 2 to the resolution of the experiment. The headline names the σ it covers. Not
    applicable with fewer than two lazy σ with two inits each."""
    statement = (
        f"{m.arch}: the closed-form GD limit of the linearized net predicts the trained nets' test "
        f"loss at every σ where they stay lazy (Θ̂ moves ≤ {100 * lazy_tol:g}%; within "
        f"{SIGNIFICANCE:g} standard errors of the seed noise)"
    )
    per: dict[str, dict[str, float]] = {}
    for k, sigma in enumerate(m.sigmas):
        trained, difference = Stat.of(m.test_loss[k]), paired(m.closed_form_loss[k], m.test_loss[k])
        moved = m.kernel_change[k][np.isfinite(m.kernel_change[k])]
        per[f"{sigma:g}"] = {
            "trained": trained.mean,
            "closed_form": Stat.of(m.closed_form_loss[k]).mean,
            "difference": difference.mean,
            "allowed": SIGNIFICANCE * trained.se,
            "output_gap": Stat.of(m.gap[k]).mean,
            "kernel_change": float(np.median(moved)) if len(moved) else np.nan,
            "inits": trained.n,
        }
    lazy = {k: v for k, v in per.items() if v["kernel_change"] <= lazy_tol and v["inits"] >= 2}
    evidence = dict(per_sigma=per, lazy_tol=lazy_tol, lazy_sigmas=list(lazy))
    if len(lazy) < 2:
        return not_applicable(
            f"{group}/closed-form", statement, "fewer than two σ where the nets stay lazy", **evidence
        )
    gaps = [v["output_gap"] for v in lazy.values()]
    covered = "every σ" if len(lazy) == len(per) else f"{len(lazy)} of {len(per)} σ ({', '.join(lazy)})"
    return decide(
        f"{group}/closed-form",
        statement,
        all(abs(v["difference"]) <= v["allowed"] for v in lazy.values()),
        headline=f"{covered}: test loss off by ≤ {max(abs(v['difference']) for v in lazy.values()):.4f} "
        f"(allowed ≥ {min(v['allowed'] for v in lazy.values()):.4f}); output gap "
        f"{min(gaps):.3f}–{max(gaps):.3f} RMS",
        meaning="Thm 3.1: a strongly over-parameterized net trained by GD converges to the linearized "
        "model's minimizer, so the decomposition into kernel interpolant and init term describes "
        "the real net",
        tolerance=f"|closed-form − trained mean test loss| ≤ {SIGNIFICANCE:g} × the trained nets' "
        "standard error",
        **evidence,
    )


def init_term_claim(group: str, m: SigmaRuns, baseline: FiniteWidth) -> Claim:
    """Claim `<group>/init-term` (Thm 3.1–3.2): the trained nets' init term f_T(x) − Θ̂(x,X)Θ̂⁻¹Y grows as
    σ^(L+1). Fitted (log-log least squares of the mean over inits) over the σ whose closed-form
    init term is at least FIT_FLOOR × the finite-width gap g; the trained init term is the
    closed-form one plus an error of size g, which moves the log at each end by at most
    ln(1 + g/I), so the tolerance is (ln(1 + g/I_lo) + ln(1 + g/I_hi)) / ln(σ_hi/σ_lo).
    Not applicable with fewer than two σ above the floor."""
    law = m.depth + 1
    statement = (
        f"{m.arch}: the initialization term f_T(x) − Θ̂(x,X)Θ̂⁻¹Y of the trained nets grows as "
        f"σ^(L+1) = σ^{law} (log-log slope within the tolerance the finite-width gap allows)"
    )
    closed, trained = m.mean(m.init_closed), m.mean(m.init_trained)
    g = baseline.gap.mean
    fit = np.flatnonzero(closed >= FIT_FLOOR * g)
    evidence = dict(
        sigmas=m.sigmas,
        init_term_trained=trained,
        init_term_closed_form=closed,
        predicted=law,
        finite_width=baseline.as_dict(),
        fit_floor=FIT_FLOOR * g,
        fit_rule=f"σ whose closed-form init term is ≥ {FIT_FLOOR:g} × the finite-width gap",
    )
    if len(fit) < 2:
        return not_applicable(
            f"{group}/init-term", statement, "fewer than two σ with an init term above the floor", **evidence
        )
    lo, hi = fit[0], fit[-1]
    tolerance = (math.log1p(g / closed[lo]) + math.log1p(g / closed[hi])) / math.log(
        m.sigmas[hi] / m.sigmas[lo]
    )
    fitted = slope(m.sigmas[fit], trained[fit])
    return decide(
        f"{group}/init-term",
        statement,
        abs(fitted - law) <= tolerance,
        headline=f"slope {fitted:.2f} over σ = {m.sigmas[lo]:g}–{m.sigmas[hi]:g} "
        f"(predicted {law} ± {tolerance:.2f}; finite-width gap {g:.3f})",
        meaning="Thm 3.1/3.2: the part of the minimizer set by θ_0 scales as σ^(L+1) and is what a large "
        "initialization adds to the test outputs",
        slope_trained=fitted,
        tolerance=tolerance,
        fit_sigmas=m.sigmas[fit],
        **evidence,
    )


def test_loss_rises_claim(group: str, m: SigmaRuns) -> Claim:
    """Claim `<group>/test-loss-rises` (Thm 3.2: the test error's lower bound grows like σ^(2(L+1))):
    the test loss at the largest σ is above the best σ's (the smallest mean), paired by init,
    by more than SIGNIFICANCE standard errors."""
    means = m.mean(m.test_loss)
    best = int(np.nanargmin(means))
    rise = paired(m.test_loss[-1], m.test_loss[best])
    errors = m.mean(m.test_error)
    return decide(
        f"{group}/test-loss-rises",
        f"{m.arch}: the trained nets' test loss rises with σ past a point (at the largest σ above "
        f"the best σ's, paired by init, by > {SIGNIFICANCE:g} standard errors)",
        best < len(m.sigmas) - 1 and rise.above(0.0),
        headline=f"{means[best]:.4f} at σ={m.sigmas[best]:g} → {means[-1]:.4f} at σ={m.sigmas[-1]:g} "
        f"(test error {100 * errors[best]:.1f}% → {100 * errors[-1]:.1f}%)",
        meaning="a large initialization leaves a mark on the minimizer that harms the test loss "
        "(Thm 3.2's lower bound grows like σ^(2(L+1)))",
        best_sigma=m.sigmas[best],
        rise=rise.as_dict(),
        test_loss=dict(zip(map("{:g}".format, m.sigmas), means, strict=True)),
        test_error=dict(zip(map("{:g}".format, m.sigmas), errors, strict=True)),
    )


def sigma_claims(t: Table, s: Settings, dataset: str, arch: Arch) -> list[Claim]:
    """Every claim of experiment 1 on `arch`: the premise, closed-form, init-term,
    test-loss-rises and mitigation (see the module docstring); the finite-width baseline is the
    gap at the reference σ (`Settings.sigma_ref`, the low, still lazy end of the grid)."""
    group = f"sigma/{dataset}/{arch.key}"
    rows = t.rows(part="sigma", dataset=dataset, arch=arch.key)
    if not rows:
        return []
    claims = [premise(f"{group}/premise", f"GD, {arch.key}, every σ", t, rows)]
    m = sigma_runs(t, dataset, arch.key, arch.depth)
    if len(m.sigmas) < 2 or s.sigma_ref not in m.sigmas:
        return claims + [
            not_applicable(
                f"{group}/closed-form", "closed form vs trained nets", "fewer than two σ, or no reference σ"
            )
        ]
    baseline = finite_width(m, s.sigma_ref)
    claims += [
        closed_form_claim(group, m, s.lazy_tol),
        init_term_claim(group, m, baseline),
        test_loss_rises_claim(group, m),
    ]
    start = s.mitigation_start.get(arch.depth)
    if start is not None and start in m.sigmas:
        claims.append(mitigation_claim(group, m, s.mitigation, start, s.stop_loss))
    return claims

"""Experiment 1 of `which-minimizer` (Nonnenmacher, Reeb & Steinwart 2021, Sect. 3 and Fig. 2):
GD at a grid of initialization scales σ from the same θ_0 draws. Each claim is one function of
the plain per-σ, per-init numbers in `SigmaRuns`:

  closed-form     the closed-form GD limit of the linearized net predicts the trained nets'
                  test loss within the seed noise of the inits, at every σ where the nets stay
                  in the lazy regime Thm 3.1 assumes (Θ̂ moves by ≤ `lazy_tol` in training)
  init-term       the trained nets' initialization term f_T(x) − Θ̂(x,X)Θ̂⁻¹Y grows as σ^(L+1)
                  (Thm 3.1–3.2), the slope's tolerance derived from the finite-width gap
  test-loss-rises the test loss at the largest σ is above the best σ's (Thm 3.2's lower bound)
  mitigation      the procedure of Sect. 3 (shrink σ while the validation loss falls) returns
                  a net with a lower test loss than where it started, and not worse than the
                  best σ on the grid

The interpolating part Θ̂(x,X)Θ̂⁻¹Y itself is not a claim: for zero-bias ReLU nets Θ̂ ∝ σ^(2(L+1))
exactly, so it is σ-invariant by construction (no data could refute it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...tune_init import Procedure, Trial
from ..base import Claim, decide, not_applicable
from .settings import Arch, Settings
from .stats import SIGNIFICANCE, FiniteWidth, Stat, error, half_mse, paired, rms, slope
from .table import Table, premise

FIT_FLOOR = 3.0  # the σ^(L+1) law is fitted where the init term is ≥ this × the finite-width gap


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


def closed_form_claim(group: str, m: SigmaRuns, lazy_tol: float) -> Claim:
    """`<group>/closed-form` (Thm 3.1): at every σ where the nets stay lazy (median kernel change
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
    """`<group>/init-term` (Thm 3.1–3.2): the trained nets' init term f_T(x) − Θ̂(x,X)Θ̂⁻¹Y grows as
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
    """`<group>/test-loss-rises` (Thm 3.2: the test error's lower bound grows like σ^(2(L+1))):
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


def procedure_trials(m: SigmaRuns, column: int, start: int) -> list[Trial]:
    """Init `column`'s runs from σ index `start` down the grid and then below it, as the
    procedure's trials (a run that missed the loss threshold is a trial that is not practical)."""
    rows = [
        (m.sigmas[k], m.val_loss[k], m.test_loss[k], m.test_error[k], m.steps[k])
        for k in range(start, -1, -1)
    ]
    if m.below is not None:
        b = m.below
        rows += [
            (b.sigmas[k], b.val_loss[k], b.test_loss[k], b.test_error[k], b.steps[k])
            for k in range(len(b.sigmas) - 1, -1, -1)
        ]
    out = []
    for sigma, val, test, err, steps in rows:
        reached = bool(np.isfinite(steps[column]))
        out.append(
            Trial(
                sigma=float(sigma),
                status="completed" if reached else "not reached",
                steps=int(steps[column]) if reached else 0,
                stop_reason="stop_loss" if reached else "max_steps",
                train_loss=math.nan,
                val_loss=float(val[column]),
                val_error=math.nan,
                test_loss=float(test[column]),
                test_error=float(err[column]),
                practical=reached,
            )
        )
    return out


def mitigation_claim(
    group: str, m: SigmaRuns, rule: Procedure, start_sigma: float, threshold: float
) -> Claim:
    """`<group>/mitigation` (Sect. 3's procedure, `sgdlab tune-init`): per init, start at
    `start_sigma` and move down the σ grid, and on to the trials below it, while the validation
    loss falls by the rule's margin and training stays practical (`Procedure.replay`); the
    returned net's test loss is (a) below the starting σ's by more than SIGNIFICANCE standard
    errors, paired by init, and (b) not above the best single σ on the grid (smallest mean test
    loss) by more than that. Premise: the procedure stops on its own for every init (the σ
    trained reach below where the validation loss stops falling or training gets impractical);
    not applicable otherwise."""
    statement = (
        f"{m.arch}: shrinking σ from {start_sigma:g} while the validation loss falls (the procedure of "
        "Sect. 3) returns a net whose test loss is clearly below the starting σ's and not clearly above "
        "the best σ on the grid"
    )
    start = int(np.flatnonzero(m.sigmas == start_sigma)[0])
    results = {
        int(seed): rule.replay(procedure_trials(m, j, start), threshold) for j, seed in enumerate(m.seeds)
    }
    chosen = {seed: r.sigma for seed, r in results.items()}
    ran_off = [seed for seed, r in results.items() if r.reason.startswith("no smaller σ")]
    best = int(np.nanargmin(m.mean(m.test_loss)))
    at_chosen = np.array([r.trials[r.chosen].test_loss for r in results.values()])
    improvement = paired(m.test_loss[start], at_chosen)
    excess = paired(at_chosen, m.test_loss[best])
    evidence = dict(
        start_sigma=start_sigma,
        chosen_sigma=chosen,
        stopped_because={seed: r.reason for seed, r in results.items()},
        improvement_over_start=improvement.as_dict(),
        excess_over_best_sigma=excess.as_dict(),
        best_sigma=m.sigmas[best],
        tried_below_grid=[] if m.below is None else m.below.sigmas,
        budget={seed: r.budget for seed, r in results.items()},
        rule={"factor": rule.factor, "margin": rule.margin, "max_slowdown": rule.max_slowdown},
    )
    if ran_off:
        lowest = m.sigmas[0] if m.below is None else min(m.sigmas[0], m.below.sigmas[0])
        return not_applicable(
            f"{group}/mitigation",
            statement,
            f"the σ trained end at σ = {lowest:g} before the procedure stops for inits {ran_off}",
            **evidence,
        )
    values, counts = np.unique(list(chosen.values()), return_counts=True)
    return decide(
        f"{group}/mitigation",
        statement,
        improvement.above(0.0) and not excess.above(0.0),
        headline=f"σ {start_sigma:g} → "
        + ", ".join(f"{v:g} (×{c})" for v, c in zip(values, counts, strict=True))
        + f"; test loss {Stat.of(m.test_loss[start]).mean:.4f} → {Stat.of(at_chosen).mean:.4f} "
        f"(best σ={m.sigmas[best]:g}: {Stat.of(m.test_loss[best]).mean:.4f})",
        meaning="Sect. 3: the init term can be detected and reduced by retraining from the same θ_0 with a "
        "smaller σ and comparing validation losses",
        **evidence,
    )


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

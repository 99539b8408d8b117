"""The procedure of Nonnenmacher, Reeb & Steinwart (2021, Sect. 3; `sgdlab tune-init`) on the σ
grid of `which-minimizer`'s experiment 1: per init, start at a large σ and retrain from the same
θ_0 at the next smaller σ of the grid (and then at the trials below it) while the validation
loss falls by the rule's margin and training stays practical (`tune_init.Procedure.replay`).

  mitigation      the returned net's test loss is clearly below the starting σ's and not
                  clearly above the best single σ on the grid
"""

from __future__ import annotations

import math

import numpy as np

from ....tune_init import Procedure, Trial
from ...base import Claim, decide, not_applicable
from ..measure.sigma import SigmaRuns
from ..stats import Stat, paired


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
    """Claim `<group>/mitigation` (Sect. 3's procedure, `sgdlab tune-init`): per init, start at
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

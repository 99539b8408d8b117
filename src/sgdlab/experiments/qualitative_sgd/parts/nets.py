"""Parts 4 and 6 of `qualitative-sgd`: residual ReLU nets "3x5,2,1" (under-parameterized) vs
"15x25,2,1" (over-parameterized) trained by single-sample SGD with the logistic loss on 2-D
binary data, and the lecture's step-size rules on the 15x25 net.

Every run carries the `gradients` probe on all training points every epoch (per-sample norms,
μ, full-gradient norm and its best so far), `update_norm` (‖U_k‖ = ‖∇f_i(x_k)‖ for plain SGD:
the batch-gradient norm of the lecture's tables) and `batch_loss` (the step size η_k).
"""

from __future__ import annotations

from typing import Any

from ....store import Run
from ...base import Claim, Lab, divergences, missing_runs, not_applicable
from .. import claims, figures, measure
from ..claims import BIG, SMALL
from ..configs import LR, RULES
from ..settings import NetSettings


def nets_part(lab: Lab, s: NetSettings, runs: dict[str, Run]) -> list[Claim]:
    """Part 4 (Giselsson, "Stochastic gradient descent: qualitative convergence behavior"):
    "3x5,2,1" vs "15x25,2,1"; figure and the claims `nets/regime` (the premise: the small net
    does not interpolate, the big one does), `final-loss`, `best-gradient`,
    `individual-gradients` and `agreement`. One not-applicable claim when a run is missing or
    diverged."""
    need = ["net-3x5", "net-15x25"]
    missing = missing_runs(need, runs)
    if missing:
        return [
            not_applicable(
                "nets/final-loss",
                "over- vs under-parameterized nets",
                f"runs not trained: {', '.join(missing)}",
            )
        ]
    diverged = divergences({name: runs[name] for name in need})
    if diverged:  # no final iterate to take the individual gradients at
        return [not_applicable("nets/final-loss", "over- vs under-parameterized nets", "; ".join(diverged))]
    small, big = runs["net-3x5"], runs["net-15x25"]
    labels = {SMALL: small, BIG: big}
    series = {
        label: {k: measure.series(r, k) for k in ("train_loss", "grad_full_norm_best", "grad_mu")}
        for label, r in labels.items()
    }
    under, over = measure.net(small), measure.net(big)
    lab.save_figure(figures.nets_figure(series, {SMALL: under.norms, BIG: over.norms}), "nets")
    return [
        claims.nets_regime_claim(under, over, epochs=s.epochs, n_train=s.n_train, data=s.data),
        claims.nets_final_loss_claim(under, over),
        claims.nets_best_gradient_claim(under, over),
        claims.nets_individual_gradients_claim(under, over),
        claims.nets_agreement_claim(under, over),
    ]


def rules_part(lab: Lab, s: NetSettings, runs: dict[str, Run]) -> tuple[list[Claim], dict]:
    """Part 6 (Giselsson, "Stochastic gradient descent: qualitative convergence behavior"):
    the 15x25 net under the combined γ0/((1 + ψ(⌈k/K⌉))(α‖g_k‖ + 1)), undamped (α = 0) and
    damped γ0/(α‖g_k‖ + 1) rules; saves the lecture's table (`measure.rule_table`) and returns
    the claims `rules/large-initial-gradients`, `undamped-diverges`, `damping-survives` and
    `diminishing-smaller-final-gradient`, with the tables."""
    names = [f"rule-{name}" for name in RULES]
    missing = missing_runs(names, runs)
    if missing:
        return [
            not_applicable(
                "rules/table", "the lecture's step-size table", f"runs not trained: {', '.join(missing)}"
            )
        ], {}
    tables = {name: measure.rule_table(runs[f"rule-{name}"], s.table_epochs) for name in RULES}
    columns: dict[str, list[Any]] = {
        "rule": [],
        "epoch": [],
        "lr": [],
        "batch_grad_norm": [],
        "full_grad_norm": [],
    }
    for name, rows in tables.items():
        for r in rows:
            columns["rule"].append(name)
            columns["epoch"].append(r["epoch"])
            columns["lr"].append(r["lr"])
            columns["batch_grad_norm"].append(r["update_norm"])
            columns["full_grad_norm"].append(r["grad_full_norm"])
    lab.save_table("step_size_rules", columns)
    rule = {name: measure.rule_run(runs[f"rule-{name}"], tables[name]) for name in RULES}
    first_full_norm = tables["combined"][0]["grad_full_norm"]
    return [
        claims.rules_large_initial_gradients_claim(first_full_norm),
        claims.rules_undamped_diverges_claim(rule["undamped"], first_full_norm),
        claims.rules_damping_survives_claim(
            {n: rule[n] for n in ("combined", "damped")}, LR, first_full_norm
        ),
        claims.rules_diminishing_smaller_final_gradient_claim(rule["combined"], rule["damped"]),
    ], tables

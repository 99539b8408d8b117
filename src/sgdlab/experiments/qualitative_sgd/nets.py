"""Parts 4 and 6 of `qualitative-sgd`: residual ReLU nets "3x5,2,1" (under-parameterized) vs
"15x25,2,1" (over-parameterized) trained by single-sample SGD with the logistic loss on 2-D
binary data, and the lecture's step-size rules on the 15x25 net.

Every run carries the `gradients` probe on all training points every epoch (per-sample norms,
μ, full-gradient norm and its best so far), `update_norm` (‖U_k‖ = ‖∇f_i(x_k)‖ for plain SGD:
the batch-gradient norm of the lecture's tables) and `batch_loss` (the step size η_k).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...store import Run
from ..base import Claim, Lab, decide, divergences, missing_runs, not_applicable
from . import figures
from .settings import NetSettings

COMBINED = {"name": "combined", "psi": "sqrt", "c": 0.5, "alpha": 0.1}
RULES = {  # the lecture's three tables: ψ(x) = 0.5√x, K, α = γ0 = 0.1; α = 0; ψ ≡ 0
    "combined": COMBINED,
    "undamped": dict(COMBINED, alpha=0.0),
    "damped": {"name": "grad-damped", "alpha": 0.1},
}
LR = 0.1
AGREE_FACTOR = 10.0  # "much smaller": at least this factor
FINAL_FACTOR = 2.0  # "larger final full norm" (the lecture's rule tables differ 40×): at least this


def net_config(s: NetSettings, widths: tuple[int, ...], rule: dict[str, Any]) -> dict:
    """A residual ReLU net with residual layer widths `widths` and one logit, on 2-D binary
    data with ±1 targets, logistic loss, single-sample SGD at lr 0.1 under step-size rule
    `rule` (period K = `s.period` epochs), with per-epoch probes of the loss, step size,
    update norm and per-sample gradients of every training point."""
    n = s.n_train
    return {
        "seed": s.seed,
        "threads": 1,
        "data": {"name": s.data, "n_train": n, "n_test": 0, "targets": "pm1"},
        "model": {"name": "residual-mlp", "residual_widths": list(widths), "widths": [], "init": s.init},
        "optim": {"name": "sgd", "lr": LR, "schedule": dict(rule, period=s.period)},
        "train": {"batch_size": 1, "epochs": s.epochs, "loss": "logistic", "eval_batch_size": n},
        "probes": {
            "use": ["eval", "batch_loss", "update_norm", "gradients"],
            "eval": {"schedule": "epoch"},
            "batch_loss": {"schedule": "epoch"},
            "update_norm": {"schedule": "epoch"},
            "gradients": {"schedule": "epoch", "batch": "eval", "n_eval": n},
        },
    }


def configs(s: NetSettings) -> dict[str, dict]:
    """The two nets of part 4 and the 15x25 net under each rule of part 6 (rule-combined is the
    same config as net-15x25: trained once)."""
    out = {"net-3x5": net_config(s, s.small, COMBINED), "net-15x25": net_config(s, s.big, COMBINED)}
    out |= {f"rule-{name}": net_config(s, s.big, rule) for name, rule in RULES.items()}
    return out


def _series(run: Run, name: str) -> tuple[np.ndarray, np.ndarray]:
    if name not in run.metrics.column_names:
        return np.array([]), np.array([])
    return run.epochs(name)


def _last(run: Run, name: str) -> float:
    _, v = _series(run, name)
    return float(v[-1]) if len(v) else math.nan


def final_norms(run: Run) -> np.ndarray:
    """‖∇f_i‖ of every training point at the final iterate (sgdlab.gradients on final.pt)."""
    from ... import prepare
    from ...gradients import per_sample_gram

    parts = prepare(run.config)
    parts.model.load_state_dict(run.checkpoint("final.pt"))
    x, y = parts.data.train.x, parts.data.train.y
    return per_sample_gram(parts.model, parts.loss, x, y).norms.numpy()


def nets_part(lab: Lab, s: NetSettings, runs: dict[str, Run]) -> list[Claim]:
    """Part 4 (Giselsson, "Stochastic gradient descent: qualitative convergence behavior"):
    "3x5,2,1" vs "15x25,2,1". Four claims, each requiring both runs to complete. Three need
    the over-parameterized net to be ≥ AGREE_FACTOR (10×) smaller in: the final training loss
    (`nets/final-loss`), the best full-gradient norm so far (`nets/best-gradient`), the max
    and the median individual gradient norm at the end (`nets/individual-gradients`). The
    fourth, `nets/agreement`, needs its μ = min_{i≠j}⟨∇f_i, ∇f_j⟩ to be larger at the end and
    in median over the second half of training. Not applicable when a run is missing or
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
    labels = {"3x5,2,1": small, "15x25,2,1": big}
    series = {
        label: {k: _series(r, k) for k in ("train_loss", "grad_full_norm_best", "grad_mu")}
        for label, r in labels.items()
    }
    norms = {label: final_norms(r) for label, r in labels.items()}
    figures.nets(lab.figure("nets"), series, norms)
    loss = {label: float(r.final.get("train_loss", math.nan)) for label, r in labels.items()}
    best = {label: _last(r, "grad_full_norm_best") for label, r in labels.items()}
    norm_max = {label: float(v.max()) for label, v in norms.items()}
    norm_med = {label: float(np.median(v)) for label, v in norms.items()}
    mu_end = {label: _last(r, "grad_mu") for label, r in labels.items()}
    _, mu_small = _series(small, "grad_mu")
    _, mu_big = _series(big, "grad_mu")
    u, o = "3x5,2,1", "15x25,2,1"
    status = {label: r.status for label, r in labels.items()}
    ok = all(v == "completed" for v in status.values())
    claims = [
        decide(
            "nets/final-loss",
            "the over-parameterized 15x25,2,1 net reaches a much smaller "
            f"training loss than the 3x5,2,1 net (≥ {AGREE_FACTOR:g}× smaller)",
            ok and loss[o] * AGREE_FACTOR <= loss[u],
            headline=f"final loss {loss[u]:.3g} vs {loss[o]:.3g} (lecture: 0.17 vs 0.00018)",
            meaning="over-parameterized models give faster SGD convergence",
            final_loss=loss,
            status=status,
            epochs=s.epochs,
            n_train=s.n_train,
            data=s.data,
        ),
        decide(
            "nets/best-gradient",
            "the best full-gradient norm so far ends much smaller for the over-parameterized net",
            ok and best[o] * AGREE_FACTOR <= best[u],
            headline=f"min ‖∇f‖ {best[u]:.2g} vs {best[o]:.2g}",
            meaning='the lecture\'s "best gradient" curve',
            best_full_gradient=best,
        ),
        decide(
            "nets/individual-gradients",
            "at the end the individual gradients of the "
            "over-parameterized net are much smaller (max and median over the training points)",
            ok and norm_max[o] * AGREE_FACTOR <= norm_max[u] and norm_med[o] * AGREE_FACTOR <= norm_med[u],
            headline=f"max ‖∇f_i‖ {norm_max[u]:.2g} vs {norm_max[o]:.2g}",
            meaning="individual gradients vanish near an interpolating solution, so a constant "
            "step keeps converging",
            max_norm=norm_max,
            median_norm=norm_med,
        ),
        decide(
            "nets/agreement",
            "the individual gradients of the over-parameterized net agree "
            "better: its μ = min_{i≠j}⟨∇f_i, ∇f_j⟩ is larger at the end and over the second "
            "half of training (median)",
            ok
            and mu_end[o] > mu_end[u]
            and float(np.median(mu_big[len(mu_big) // 2 :]))
            > float(np.median(mu_small[len(mu_small) // 2 :])),
            headline=f"μ at the end {mu_end[u]:.2g} vs {mu_end[o]:.2g}",
            meaning="the lecture's reason for the faster convergence: individual gradients agree",
            mu_end=mu_end,
            mu_median_second_half={
                u: float(np.median(mu_small[len(mu_small) // 2 :])),
                o: float(np.median(mu_big[len(mu_big) // 2 :])),
            },
        ),
    ]
    return claims


def rule_table(run: Run, epochs: tuple[int, ...]) -> list[dict[str, Any]]:
    """The lecture's table: epoch, step size η, batch-gradient norm ‖∇f_i(x_k)‖ at the epoch's
    first step, full-gradient norm; NaN past a divergence. At the final epoch (no step follows)
    η and the batch norm are the last recorded ones (the first step of the previous epoch)."""
    rows = []
    cols = {k: dict(zip(*_series(run, k), strict=True)) for k in ("lr", "update_norm", "grad_full_norm")}
    last = run.summary.get("epochs")
    for e in epochs:
        row: dict[str, float] = {"epoch": e}
        for k, v in cols.items():
            value = v.get(float(e), math.nan)
            if math.isnan(value) and run.status == "completed" and e == last and v:
                value = v[max(v)]  # no step after the last epoch: its last recorded step's value
            row[k] = float(value)
        rows.append(row)
    return rows


def rules_part(lab: Lab, s: NetSettings, runs: dict[str, Run]) -> tuple[list[Claim], dict]:
    """Part 6 (Giselsson, "Stochastic gradient descent: qualitative convergence behavior"):
    the 15x25 net under the combined γ0/((1 + ψ(⌈k/K⌉))(α‖g_k‖ + 1)), undamped (α = 0) and
    damped γ0/(α‖g_k‖ + 1) rules; saves the lecture's table (`rule_table`) and returns the
    claims with the tables:

    - `rules/large-initial-gradients`: ‖∇f(x_0)‖ ≥ 1e3.
    - `rules/undamped-diverges`: the α = 0 run ends with status diverged.
    - `rules/damping-survives`: both damped runs complete with a first step < 1e-2·γ0.
    - `rules/diminishing-smaller-final-gradient`: the combined rule's final ‖∇f‖ is
      ≥ FINAL_FACTOR (2×) smaller than the damped rule's (not applicable if either diverged)."""
    names = [f"rule-{name}" for name in RULES]
    missing = missing_runs(names, runs)
    if missing:
        return [
            not_applicable(
                "rules/table", "the lecture's step-size table", f"runs not trained: {', '.join(missing)}"
            )
        ], {}
    tables = {name: rule_table(runs[f"rule-{name}"], s.table_epochs) for name in RULES}
    columns: dict[str, list] = {
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
    comb, und, damp = (runs[f"rule-{n}"] for n in ("combined", "undamped", "damped"))
    first_full = tables["combined"][0]["grad_full_norm"]
    claims = [
        decide(
            "rules/large-initial-gradients",
            "the 15x25,2,1 net starts with very large gradients "
            "(full-gradient norm ≥ 1e3), the regime the damped rules are for",
            first_full >= 1e3,
            headline=f"‖∇f(x_0)‖ = {first_full:.2g} (lecture: 6.8e5)",
            meaning="the premise of the step-size tables",
            full_grad_norm_epoch0=first_full,
        )
    ]
    claims.append(
        decide(
            "rules/undamped-diverges",
            "without damping (α = 0) the first steps explode: the run stops with status diverged",
            und.status == "diverged",
            headline=f"status {und.status} at step {und.summary.get('diverged_at')}",
            meaning="a fixed step ignores the gradient's size; diminishing it does not help",
            status=und.status,
            diverged_at=und.summary.get("diverged_at"),
        )
    )
    loss = {n: float(runs[f"rule-{n}"].final.get("train_loss", math.nan)) for n in ("combined", "damped")}
    full_end = {n: _last(runs[f"rule-{n}"], "grad_full_norm") for n in ("combined", "damped")}
    lr0 = {n: tables[n][0]["lr"] for n in ("combined", "damped")}
    damped_ok = all(runs[f"rule-{n}"].status == "completed" for n in ("combined", "damped"))
    diverged = divergences({f"rule-{n}": runs[f"rule-{n}"] for n in ("combined", "damped")})
    claims.append(
        decide(
            "rules/damping-survives",
            "the damped rules take tiny first steps (η ≪ γ0) and train without diverging",
            damped_ok and all(v < 1e-2 * LR for v in lr0.values()),
            headline="; ".join(diverged)
            or ", ".join(f"{n}: η_0 = {lr0[n]:.2g}, final loss {loss[n]:.2g}" for n in lr0),
            meaning="γ0/(α‖g‖+1) dampens large initial gradients",
            first_step=lr0,
            final_loss=loss,
            status={n: runs[f"rule-{n}"].status for n in ("combined", "damped")},
            **({"reason": "; ".join(diverged)} if diverged else {}),
        )
    )
    if diverged:  # no final gradient norm to compare
        claims.append(
            not_applicable(
                "rules/diminishing-smaller-final-gradient",
                "the diminishing (combined) rule ends with a "
                "clearly smaller full-gradient norm than the non-diminishing damped rule",
                "; ".join(diverged),
            )
        )
        return claims, tables
    claims.append(
        decide(
            "rules/diminishing-smaller-final-gradient",
            "the diminishing (combined) rule ends with a "
            f"clearly smaller full-gradient norm than the non-diminishing damped rule (≥ {FINAL_FACTOR:g}× "
            "smaller; the lecture: 0.0003 vs 0.013)",
            damped_ok and full_end["combined"] * FINAL_FACTOR <= full_end["damped"],
            headline=f"‖∇f‖ at the end {full_end['combined']:.2g} (combined) "
            f"vs {full_end['damped']:.2g} (damped)",
            meaning="a diminishing step gives local convergence; a constant one a larger final norm",
            final_full_grad_norm=full_end,
            ratio=full_end["damped"] / full_end["combined"],
            final_step={n: tables[n][-1]["lr"] for n in ("combined", "damped")},
        )
    )
    return claims, tables

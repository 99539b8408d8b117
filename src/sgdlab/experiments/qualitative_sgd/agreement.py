"""Part 7 of `qualitative-sgd`: the agreement μ = min_{i≠j}⟨∇f_i, ∇f_j⟩ against the mini-batch
size and against the distance from the solution, on an MLP trained by SGD on digits.

The run saves its iterates θ_k on a log-spaced schedule; θ* is the final iterate. At every saved
θ_k the per-sample Gram matrix of the training points (sgdlab.gradients) gives μ, the mean inner
product and the mean cosine; at θ_0, at the middle iterate and at θ*, mini-batch gradients
g_B = (1/K)Σ_{i∈B} ∇f_i of `pairs_of` sampled K-batches give μ_K = min_{B≠B'}⟨g_B, g_B'⟩ from
the same Gram matrix.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy.stats import spearmanr

from ...gradients import gram_stats, minibatch_agreement, per_sample_gram
from ...params import set_flat_params
from ...store import Run, RunDir
from ..base import Claim, Lab, decide, divergence, missing_runs, not_applicable
from . import figures
from .settings import AgreementSettings


def agreement_config(s: AgreementSettings) -> dict:
    """The μ run: an MLP on digits trained by SGD, its iterates saved on a log-spaced
    schedule (log:1.4) for the per-sample Gram matrices."""
    return {
        "seed": 0,
        "threads": 1,
        "data": {"name": "digits", "n_train": s.n_train, "n_test": 0},
        "model": {"name": "mlp", "widths": list(s.widths)},
        "optim": {"name": "sgd", "lr": s.lr},
        "train": {"batch_size": s.batch_size, "epochs": s.epochs},
        "checkpoint": {"iterates": "log:1.4"},
        "probes": {"use": ["eval", "batch_loss"], "eval": {"schedule": "epoch"}},
    }


def agreement_part(lab: Lab, s: AgreementSettings, runs: dict[str, Run]) -> list[Claim]:
    """Part 7 (Giselsson, "Stochastic gradient descent: qualitative convergence behavior"):
    μ at every saved iterate and μ_K against the mini-batch size; table, figure and claims.

    - `mu/batch-size`: μ_K = min_{B≠B'}⟨g_B, g_B'⟩ over `pairs_of` sampled K-batches is
      non-decreasing in K at θ_0, at the middle iterate and at θ*.
    - `mu/distance`: μ(θ_0) > μ(θ*) and the Spearman ρ between ‖θ_k − θ*‖ and μ(θ_k) is > 0.
    - `mu/distance-cosine`: the same for the mean cosine of the individual gradients.

    Not applicable when the run is missing or diverged."""
    if missing_runs(["mu-mlp"], runs):
        return [not_applicable("mu/batch-size", "μ against the mini-batch size", "run mu-mlp not trained")]
    diverged = divergence("mu-mlp", runs["mu-mlp"])
    if diverged:  # its last iterates are not finite: no θ* and no Gram matrices there
        return [not_applicable("mu/batch-size", "μ against the mini-batch size", diverged)]
    from ... import prepare

    run = runs["mu-mlp"]
    parts = prepare(run.config)
    x, y = parts.data.train.x, parts.data.train.y
    stored = RunDir(run.path).iterates()
    thetas = {
        step: RunDir(run.path).load(str(p.relative_to(RunDir(run.path).checkpoints))) for step, p in stored
    }
    steps = sorted(thetas)
    theta_star = thetas[steps[-1]]
    rows: dict[str, list] = {
        "step": [],
        "distance": [],
        "mu": [],
        "inner_mean": [],
        "cos_mean": [],
        "norm_mean": [],
    }
    grams: dict[int, torch.Tensor] = {}
    for step in steps:
        set_flat_params(parts.model, thetas[step])
        gram = per_sample_gram(parts.model, parts.loss, x, y).gram
        grams[step] = gram
        st = gram_stats(gram, ())
        rows["step"].append(step)
        rows["distance"].append(float((thetas[step] - theta_star).norm()))
        for key in ("mu", "inner_mean", "cos_mean", "norm_mean"):
            rows[key].append(st[f"grad_{key}"])
    lab.save_table("agreement_distance", rows)
    gen = torch.Generator().manual_seed(0)
    points = {"θ_0": steps[0], "middle": steps[len(steps) // 2], "θ*": steps[-1]}
    by_batch: dict[str, dict[str, list[Any]]] = {}
    for label, step in points.items():
        vals = [minibatch_agreement(grams[step], k, s.pairs_of, gen) for k in s.batch_sizes]
        by_batch[f"{label} (step {step})"] = {
            "batch_size": list(s.batch_sizes),
            "mu": [v["mu"] for v in vals],
            "cos_mean": [v["cos_mean"] for v in vals],
        }
    lab.save_table(
        "agreement_batch",
        {
            "point": [p for p in by_batch for _ in s.batch_sizes],
            "batch_size": [k for _ in by_batch for k in s.batch_sizes],
            "mu": [m for v in by_batch.values() for m in v["mu"]],
        },
    )
    figures.agreement(lab.figure("agreement"), {k: np.asarray(v) for k, v in rows.items()}, by_batch)
    rising = {p: bool(np.all(np.diff(v["mu"]) >= 0)) for p, v in by_batch.items()}
    first = next(iter(by_batch.values()))
    claims = [
        decide(
            "mu/batch-size",
            "a larger mini-batch gives a larger μ (min over pairs of sampled "
            "mini-batches of ⟨g_B, g_B'⟩), at the start, midway and at the end of training",
            all(rising.values()),
            headline=f"θ_0: μ_1 = {first['mu'][0]:.3g} → μ_{s.batch_sizes[-1]} = {first['mu'][-1]:.3g}",
            meaning="larger mini-batches are more alike, the limit being GD; at a higher cost per step",
            mu_by_batch_size={
                p: dict(zip(map(str, v["batch_size"]), v["mu"], strict=True)) for p, v in by_batch.items()
            },
            non_decreasing=rising,
            batches_sampled=s.pairs_of,
            n_train=s.n_train,
            final_train_loss=run.final.get("train_loss"),
        )
    ]
    d = np.asarray(rows["distance"])
    mu, cos = np.asarray(rows["mu"]), np.asarray(rows["cos_mean"])
    rho_mu = float(spearmanr(d, mu).statistic)
    rho_cos = float(spearmanr(d, cos).statistic)
    low = int(np.argmin(mu))
    claims.append(
        decide(
            "mu/distance",
            "far from the solution the individual gradients agree more: μ at θ_0 (the "
            "farthest iterate) exceeds μ at θ*, and μ rises with ‖θ_k − θ*‖ along the path "
            "(Spearman ρ > 0)",
            mu[0] > mu[-1] and rho_mu > 0,
            headline=f"μ(θ_0) = {mu[0]:.3g} vs μ(θ*) = {mu[-1]:.3g}; ρ = {rho_mu:.2f}",
            meaning="the lecture's reading of the noise-ball picture, tested on a network",
            mu_at_start=mu[0],
            mu_at_end=mu[-1],
            spearman_mu=rho_mu,
            lowest_mu=float(mu[low]),
            lowest_mu_distance=float(d[low]),
            distance_start=float(d[0]),
            iterates=len(steps),
            note="iterates are log-spaced in steps, so most sit far from θ*; the lowest μ tells "
            "whether μ is monotone in the distance",
        )
    )
    claims.append(
        decide(
            "mu/distance-cosine",
            "far from the solution the individual gradients point more alike: "
            "the mean cosine at θ_0 exceeds that at θ*, and it rises with the distance (Spearman ρ > 0)",
            cos[0] > cos[-1] and rho_cos > 0,
            headline=f"mean cos {cos[0]:.3g} (θ_0) vs {cos[-1]:.3g} (θ*); ρ = {rho_cos:.2f}",
            meaning="the same statement, free of the gradients' scale",
            cos_at_start=cos[0],
            cos_at_end=cos[-1],
            spearman_cos_mean=rho_cos,
        )
    )
    return claims

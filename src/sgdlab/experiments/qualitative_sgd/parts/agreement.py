"""Part 7 of `qualitative-sgd`: the agreement μ = min_{i≠j}⟨∇f_i, ∇f_j⟩ against the mini-batch
size and against the distance from the solution, on an MLP trained by SGD on digits.

The run saves its iterates θ_k on a log-spaced schedule; θ* is the final iterate. At every saved
θ_k the per-sample Gram matrix of the training points (sgdlab.gradients) gives μ, the mean inner
product and the mean cosine; at θ_0, at the middle iterate and at θ*, mini-batch gradients
g_B = (1/K)Σ_{i∈B} ∇f_i of `pairs_of` sampled K-batches give μ_K = min_{B≠B'}⟨g_B, g_B'⟩ from
the same Gram matrix (`measure.agreement_path`).
"""

from __future__ import annotations

from ....store import Run
from ...base import Claim, Lab, divergence, missing_runs, not_applicable
from .. import claims, figures, measure
from ..configs import agreement_config
from ..settings import AgreementSettings

__all__ = ["agreement_config", "agreement_part"]


def agreement_part(lab: Lab, s: AgreementSettings, runs: dict[str, Run]) -> list[Claim]:
    """Part 7 (Giselsson, "Stochastic gradient descent: qualitative convergence behavior"):
    μ at every saved iterate and μ_K against the mini-batch size; tables, figure and the claims
    `mu/batch-size`, `mu/distance` and `mu/distance-cosine`. One not-applicable claim when the
    run is missing or diverged."""
    if missing_runs(["mu-mlp"], runs):
        return [not_applicable("mu/batch-size", "μ against the mini-batch size", "run mu-mlp not trained")]
    diverged = divergence("mu-mlp", runs["mu-mlp"])
    if diverged:  # its last iterates are not finite: no θ* and no Gram matrices there
        return [not_applicable("mu/batch-size", "μ against the mini-batch size", diverged)]
    run = runs["mu-mlp"]
    path = measure.agreement_path(run, s.batch_sizes, s.pairs_of)
    lab.save_table("agreement_distance", path.rows)
    lab.save_table(
        "agreement_batch",
        {
            "point": [p for p in path.by_batch for _ in s.batch_sizes],
            "batch_size": [k for _ in path.by_batch for k in s.batch_sizes],
            "mu": [m for v in path.by_batch.values() for m in v["mu"]],
        },
    )
    lab.save_figure(figures.agreement_figure(path.rows, path.by_batch), "agreement")
    return [
        claims.mu_batch_size_claim(
            path.by_batch,
            batches_sampled=s.pairs_of,
            n_train=s.n_train,
            final_train_loss=run.final.get("train_loss"),
        ),
        claims.mu_distance_claim(path.rows["distance"], path.rows["mu"]),
        claims.mu_distance_cosine_claim(path.rows["distance"], path.rows["cos_mean"]),
    ]

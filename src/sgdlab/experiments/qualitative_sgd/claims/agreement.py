"""The claims of part 7 of `qualitative-sgd` (Giselsson, "Stochastic gradient descent:
qualitative convergence behavior"): the agreement μ against the mini-batch size and the
distance from the solution, decided from plain measured numbers (`measure.agreement`)."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import spearmanr

from ...base import Claim, decide

SPEARMAN_LEVEL = 0.01  # one-sided p-value of a rank correlation "rises with the distance"


def mu_batch_size_claim(by_batch: dict[str, dict[str, list[Any]]], **context: Any) -> Claim:
    """Claim `mu/batch-size`: μ_K = min over pairs of sampled K-batches of ⟨g_B, g_B'⟩ is
    non-decreasing in K at every point measured (label → batch sizes and μ_K)."""
    rising = {p: bool(np.all(np.diff(v["mu"]) >= 0)) for p, v in by_batch.items()}
    label, first = next(iter(by_batch.items()))
    return decide(
        "mu/batch-size",
        "a larger mini-batch gives a larger μ (min over pairs of sampled mini-batches of "
        "⟨g_B, g_B'⟩), at the start, midway and at the end of training",
        all(rising.values()),
        headline=f"{label.split(' ')[0]}: μ_{first['batch_size'][0]} = {first['mu'][0]:.3g} → "
        f"μ_{first['batch_size'][-1]} = {first['mu'][-1]:.3g}",
        meaning="larger mini-batches are more alike, the limit being GD; at a higher cost per step",
        mu_by_batch_size={
            p: dict(zip(map(str, v["batch_size"]), v["mu"], strict=True)) for p, v in by_batch.items()
        },
        non_decreasing=rising,
        **context,
    )


def rises_with_distance(distance: np.ndarray, values: np.ndarray) -> tuple[float, float]:
    """Spearman's ρ between ‖θ_k − θ*‖ and a statistic along the path, and the one-sided p-value
    of ρ > 0 (the iterates treated as independent)."""
    result = spearmanr(distance, values, alternative="greater")
    return float(result.statistic), float(result.pvalue)


def mu_distance_claim(distance: np.ndarray, mu: np.ndarray) -> Claim:
    """Claim `mu/distance`: far from the solution the individual gradients agree more: μ(θ_0) > μ(θ*)
    and μ rises with ‖θ_k − θ*‖ along the path (Spearman ρ > 0 with one-sided p ≤ 0.01)."""
    rho, p = rises_with_distance(distance, mu)
    low = int(np.argmin(mu))
    return decide(
        "mu/distance",
        "far from the solution the individual gradients agree more: μ at θ_0 (the farthest "
        "iterate) exceeds μ at θ*, and μ rises with ‖θ_k − θ*‖ along the path (Spearman ρ > 0)",
        bool(mu[0] > mu[-1]) and rho > 0 and p <= SPEARMAN_LEVEL,
        headline=f"μ(θ_0) = {mu[0]:.3g} vs μ(θ*) = {mu[-1]:.3g}; ρ = {rho:.2f}",
        meaning="the lecture's reading of the noise-ball picture, tested on a network",
        mu_at_start=float(mu[0]),
        mu_at_end=float(mu[-1]),
        spearman_mu=rho,
        spearman_p=p,
        lowest_mu=float(mu[low]),
        lowest_mu_distance=float(distance[low]),
        distance_start=float(distance[0]),
        iterates=len(mu),
        tolerance=f"one-sided p ≤ {SPEARMAN_LEVEL:g} (iterates treated as independent)",
        note="iterates are log-spaced in steps, so most sit far from θ*; the lowest μ tells "
        "whether μ is monotone in the distance",
    )


def mu_distance_cosine_claim(distance: np.ndarray, cos: np.ndarray) -> Claim:
    """Claim `mu/distance-cosine`: the same for the mean cosine of the individual gradients."""
    rho, p = rises_with_distance(distance, cos)
    return decide(
        "mu/distance-cosine",
        "far from the solution the individual gradients point more alike: the mean cosine at θ_0 "
        "exceeds that at θ*, and it rises with the distance (Spearman ρ > 0)",
        bool(cos[0] > cos[-1]) and rho > 0 and p <= SPEARMAN_LEVEL,
        headline=f"mean cos {cos[0]:.3g} (θ_0) vs {cos[-1]:.3g} (θ*); ρ = {rho:.2f}",
        meaning="the same statement, free of the gradients' scale",
        cos_at_start=float(cos[0]),
        cos_at_end=float(cos[-1]),
        spearman_cos_mean=rho,
        spearman_p=p,
        tolerance=f"one-sided p ≤ {SPEARMAN_LEVEL:g} (iterates treated as independent)",
    )

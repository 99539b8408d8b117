"""What `qualitative-sgd` measures in part 7: the agreement μ and its relatives along the saved
iterates of an MLP on digits, and μ_K against the mini-batch size K."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ....gradients import gram_stats, minibatch_agreement, per_sample_gram
from ....params import set_flat_params
from ....runner import prepare
from ....store import Run, RunDir


@dataclass(frozen=True)
class AgreementPath:
    """Along the μ run's saved iterates θ_k: the step, ‖θ_k − θ*‖ (θ* the final iterate), μ, the
    mean inner product, the mean cosine and the mean norm of the individual gradients; and μ_K
    against the mini-batch size K at θ_0, midway and at θ* (label → (batch sizes, μ_K))."""

    rows: dict[str, np.ndarray]
    by_batch: dict[str, dict[str, list[Any]]]


def agreement_path(run: Run, batch_sizes: tuple[int, ...], pairs_of: int) -> AgreementPath:
    """`AgreementPath` of the μ run: the per-sample Gram matrix of the training points at every
    saved iterate (sgdlab.gradients), μ_K from `pairs_of` sampled K-batches at three of them."""
    parts = prepare(run.config)
    x, y = parts.data.train.x, parts.data.train.y
    store = RunDir(run.path)
    thetas = {step: store.load(str(p.relative_to(store.checkpoints))) for step, p in store.iterates()}
    steps = sorted(thetas)
    theta_star = thetas[steps[-1]]
    keys = ("mu", "inner_mean", "cos_mean", "norm_mean")
    rows: dict[str, list] = {"step": [], "distance": [], **{k: [] for k in keys}}
    grams: dict[int, torch.Tensor] = {}
    for step in steps:
        set_flat_params(parts.model, thetas[step])
        grams[step] = per_sample_gram(parts.model, parts.loss, x, y).gram
        stats = gram_stats(grams[step], ())
        rows["step"].append(step)
        rows["distance"].append(float((thetas[step] - theta_star).norm()))
        for key in keys:
            rows[key].append(stats[f"grad_{key}"])
    gen = torch.Generator().manual_seed(0)
    points = {"θ_0": steps[0], "middle": steps[len(steps) // 2], "θ*": steps[-1]}
    by_batch: dict[str, dict[str, list[Any]]] = {}
    for label, step in points.items():
        values = [minibatch_agreement(grams[step], k, pairs_of, gen) for k in batch_sizes]
        by_batch[f"{label} (step {step})"] = {
            "batch_size": list(batch_sizes),
            "mu": [v["mu"] for v in values],
            "cos_mean": [v["cos_mean"] for v in values],
        }
    return AgreementPath({k: np.asarray(v) for k, v in rows.items()}, by_batch)

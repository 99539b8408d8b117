"""Many logistic-regression runs on separable data, advanced together as batched float64
tensor ops (Soudry et al. 2018, Nacson et al. 2019).

With x̃_n = y_n x_n (labels ±1) and margins m_n = x̃_nᵀw, the loss is
L(w) = (1/N) Σ_n log(1 + exp(−m_n)), and one step of GD or SGD with a fixed step η is

    w ← w + (η/|B|) Σ_{n∈B} σ(−m_n) x̃_n,     σ(z) = 1/(1 + e^{−z}),

with B = all N points for GD and |B| = b indices drawn uniformly with replacement for SGD.
GD runs of all datasets share one batched matrix product per step; SGD runs gather their
batch rows for a chunk of steps at once (one seeded torch.Generator per run, so a run's path
does not depend on the runs batched with it). `reference_run` is the same update as a plain
per-step loop, the oracle the batched path is tested against.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ...errors import ConfigError
from ...seeding import generator

METHODS = ("gd", "sgd")


@dataclass(frozen=True)
class RunSpec:
    """One trajectory: `method` gd or sgd, fixed step `lr`, SGD batch size and seed."""

    method: str
    lr: float
    batch_size: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        """Reject an unknown method, lr ≤ 0 or batch size < 1 (ConfigError)."""
        if self.method not in METHODS:
            raise ConfigError(f"method: {self.method!r} is not one of {', '.join(METHODS)}")
        if not self.lr > 0 or self.batch_size < 1:
            raise ConfigError(f"lr must be > 0 and batch_size ≥ 1, got {self.lr}, {self.batch_size}")

    @property
    def label(self) -> str:
        """A short name for figures and logs: `gd lr=η` or `sgd b=B lr=η seed=S`."""
        if self.method == "gd":
            return f"gd lr={self.lr:g}"
        return f"sgd b={self.batch_size} lr={self.lr:g} seed={self.seed}"


def batch_generator(spec: RunSpec, dataset: int) -> torch.Generator:
    """The stream of SGD batch indices of run `spec` on dataset number `dataset`."""
    return generator(spec.seed, f"exact-convergence/sgd-batches/{dataset}")


@dataclass
class Trajectories:
    """w at the recorded steps: `weights[i, d, r]` is run r on dataset d at `steps[i]`."""

    steps: np.ndarray
    weights: torch.Tensor  # [len(steps), D, R, dim], float64
    runs: tuple[RunSpec, ...]


def signed_inputs(x: torch.Tensor, y_pm1: torch.Tensor) -> torch.Tensor:
    """x̃_n = y_n x_n in float64: the margin of w on point n is x̃_nᵀw."""
    return (y_pm1.to(torch.float64)[:, None] * x.to(torch.float64)).contiguous()


def train_logistic(
    xs: torch.Tensor,
    runs: Sequence[RunSpec],
    steps: int,
    record: Sequence[int] | np.ndarray,
    chunk: int = 256,
) -> Trajectories:
    """Run every spec of `runs` on every dataset of `xs` ([D, N, dim] signed inputs, see
    `signed_inputs`) from w_0 = 0 for `steps` steps; keep w at the steps in `record`.
    Single-threaded: the products are far too small to gain from threads, and lose to their
    start-up on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train(xs, runs, steps, record, chunk)
    finally:
        torch.set_num_threads(threads)


def _train(
    xs: torch.Tensor, runs: Sequence[RunSpec], steps: int, record: Sequence[int] | np.ndarray, chunk: int
) -> Trajectories:
    xs = xs.to(torch.float64)
    n_sets, n, dim = xs.shape
    record = sorted({int(s) for s in record if 0 <= s <= steps})
    gd = [i for i, r in enumerate(runs) if r.method == "gd"]
    sgd = [i for i, r in enumerate(runs) if r.method == "sgd"]
    sizes = {runs[i].batch_size for i in sgd}
    if len(sizes) > 1:
        raise ConfigError(f"SGD runs trained together need one batch size, got {sorted(sizes)}")
    b = sizes.pop() if sizes else 1

    # The signs are folded in so each step is two batched products and one sigmoid:
    # σ(−m) = sigmoid(w·(−x̃)) and the step adds (−η/|B|)·Σ σ(−m_n)(−x̃_n).
    neg_x = -xs
    neg_xt = neg_x.transpose(1, 2).contiguous()
    w_gd = torch.zeros(n_sets, len(gd), dim, dtype=torch.float64)
    w_sgd = torch.zeros(n_sets * len(sgd), 1, dim, dtype=torch.float64)  # batch = (dataset, run)
    rate_gd = torch.tensor([-runs[i].lr / n for i in gd], dtype=torch.float64)[None, :, None]
    rate_sgd = torch.tensor([-runs[i].lr / b for i in sgd] * n_sets, dtype=torch.float64)[:, None, None]
    gens = [batch_generator(runs[i], d) for d in range(n_sets) for i in sgd]
    dataset_of = torch.arange(n_sets).repeat_interleave(len(sgd))

    out = torch.empty(len(record), n_sets, len(runs), dim, dtype=torch.float64)
    gd_sigma = torch.empty(n_sets, len(gd), n, dtype=torch.float64)  # σ(−m_n), from m_n in place
    gd_grad = torch.empty_like(w_gd)
    sgd_sigma = torch.empty(n_sets * len(sgd), b, 1, dtype=torch.float64)
    sgd_grad = torch.empty_like(w_sgd)
    next_record = 0

    def save(i: int) -> None:
        out[i][:, gd] = w_gd
        out[i][:, sgd] = w_sgd.view(n_sets, len(sgd), dim)

    for t in range(steps + 1):
        if next_record < len(record) and record[next_record] == t:
            save(next_record)
            next_record += 1
        if t == steps:
            break
        if gd:
            torch.bmm(w_gd, neg_xt, out=gd_sigma).sigmoid_()
            w_gd.addcmul_(torch.bmm(gd_sigma, neg_x, out=gd_grad), rate_gd)
        if sgd:
            j = t % chunk
            if j == 0:  # the batch rows of the next `chunk` steps, gathered at once
                k = min(chunk, steps - t)
                idx = torch.stack([torch.randint(n, (k, b), generator=g) for g in gens], dim=1)
                rows = neg_x[dataset_of[None, :, None], idx]  # [k, D·R_sgd, b, dim]
            batch = rows[j]
            torch.bmm(batch, w_sgd.mT, out=sgd_sigma).sigmoid_()
            w_sgd.addcmul_(torch.bmm(sgd_sigma.mT, batch, out=sgd_grad), rate_sgd)
    return Trajectories(np.asarray(record), out, tuple(runs))


def reference_run(xs: torch.Tensor, spec: RunSpec, dataset: int, steps: int) -> torch.Tensor:
    """The same run as a plain per-step loop (the oracle for `train_logistic`): w after each
    step, [steps + 1, dim]."""
    x = xs[dataset].to(torch.float64)
    n = x.shape[0]
    gen = batch_generator(spec, dataset) if spec.method == "sgd" else None
    w = torch.zeros(x.shape[1], dtype=torch.float64)
    path = [w.clone()]
    for _ in range(steps):
        if gen is None:
            batch = x
        else:
            batch = x[torch.randint(n, (spec.batch_size,), generator=gen)]
        margins = batch @ w
        gradient = -(torch.sigmoid(-margins)[:, None] * batch).mean(dim=0)
        w = w - spec.lr * gradient
        path.append(w.clone())
    return torch.stack(path)

"""Many logistic-regression runs on separable data, advanced together as batched float64
tensor ops (Soudry et al. 2018, Nacson et al. 2019).

With x̃_n = y_n x_n (labels ±1) and margins m_n = x̃_nᵀw, the loss is
L(w) = (1/N) Σ_n log(1 + exp(−m_n)), and one step of GD or SGD with a fixed step η is

    w ← w + (η/|B|) Σ_{n∈B} σ(−m_n) x̃_n,     σ(z) = 1/(1 + e^{−z}),

with B = all N points for GD and |B| = b indices drawn uniformly with replacement for SGD.
Both are one update over all N points with per-step weights c_{t,n},

    w ← w + Σ_n c_{t,n} σ(−m_n) x̃_n,   c_{t,n} = η/N (GD),  η·k_{t,n}/b (SGD),

where k_{t,n} counts how often point n is in step t's batch. So every run of every dataset,
GD and SGD alike, advances in the same four batched ops per step (margins, sigmoid, weights,
update), and the weights of a chunk of steps are drawn at once (one seeded torch.Generator
per run, so a run's path does not depend on the runs batched with it). `reference_run` is
the same update as a plain per-step loop, the oracle the batched path is tested against.
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
    weights = StepWeights(runs, n_sets, n, chunk)

    # The signs are folded in so each step is two batched products, a sigmoid and a product:
    # σ(−m) = sigmoid(w·(−x̃)) and the step adds Σ_n (−c_{t,n})·σ(−m_n)·(−x̃_n).
    neg_x = -xs
    neg_xt = neg_x.transpose(1, 2).contiguous()
    w = torch.zeros(n_sets, len(runs), dim, dtype=torch.float64)
    sigma = torch.empty(n_sets, len(runs), n, dtype=torch.float64)  # σ(−m_n), then × (−c_{t,n})
    out = torch.empty(len(record), n_sets, len(runs), dim, dtype=torch.float64)
    due = iter(enumerate(record))
    slot, next_record = next(due, (-1, -1))
    for start in range(0, steps, chunk):
        for t, weight in enumerate(weights.draw(min(chunk, steps - start)), start):
            if t == next_record:
                out[slot] = w
                slot, next_record = next(due, (-1, -1))
            torch.bmm(w, neg_xt, out=sigma).sigmoid_().mul_(weight)
            w.baddbmm_(sigma, neg_x)
    if next_record == steps:
        out[slot] = w
    return Trajectories(np.asarray(record), out, tuple(runs))


class StepWeights:
    """The per-point weights −c_{t,n} of every run on every dataset, [D, R, N] per step, a
    chunk of steps at a time: −η/N for a GD run; −(η/b)·k_{t,n} for an SGD run, with k_{t,n}
    the count of point n among the b indices its generator draws for step t (a chunk of k
    steps draws [k, b] at once: the same stream as b draws per step).

    The buffer holds the GD part (constant) and zeros in the SGD runs' places between draws:
    a draw scatter-adds −η/b at each drawn index of every SGD run, and the next draw first
    puts those entries back to zero. So a chunk costs work in the number of draws, not in
    the size of the buffer, and allocates nothing."""

    def __init__(self, runs: Sequence[RunSpec], n_sets: int, n: int, chunk: int) -> None:
        sgd = [i for i, r in enumerate(runs) if r.method == "sgd"]
        sizes = {runs[i].batch_size for i in sgd}
        if len(sizes) > 1:
            raise ConfigError(f"SGD runs trained together need one batch size, got {sorted(sizes)}")
        self.n, self.b = n, sizes.pop() if sizes else 1
        self.gens = [batch_generator(runs[i], d) for d in range(n_sets) for i in sgd]
        self.shape = (n_sets, len(runs), n)
        gd_rate = [-r.lr / n if r.method == "gd" else 0.0 for r in runs]
        gd = torch.tensor(gd_rate, dtype=torch.float64)[:, None].expand(self.shape)
        # Where SGD run i of dataset d starts in a flattened [D, R, N] step, and its −η/b.
        self.row_start = torch.tensor([(d * len(runs) + i) * n for d in range(n_sets) for i in sgd])[:, None]
        sgd_rate = [-runs[i].lr / self.b for _ in range(n_sets) for i in sgd]
        self.sgd_rate = torch.tensor(sgd_rate, dtype=torch.float64).repeat_interleave(self.b)
        self.buffer = gd.expand(chunk, -1, -1, -1).contiguous().view(chunk, -1)
        self.drawn = torch.empty(0, len(sgd_rate), dtype=torch.int64)  # flat places of the last draw

    def draw(self, k: int) -> tuple[torch.Tensor, ...]:
        """The weights of the next `k` ≤ chunk steps, one [D, R, N] view per step (valid until
        the next draw)."""
        self.buffer[: len(self.drawn)].scatter_(1, self.drawn, 0.0)
        weights = self.buffer[:k]
        if self.gens:
            idx = torch.stack([torch.randint(self.n, (k, self.b), generator=g) for g in self.gens], dim=1)
            self.drawn = (idx + self.row_start).view(k, -1)
            weights.scatter_add_(1, self.drawn, self.sgd_rate.expand(k, -1))
        return weights.view(k, *self.shape).unbind(0)


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

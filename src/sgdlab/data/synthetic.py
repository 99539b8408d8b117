"""Synthetic data drawn from the data generator: Gaussian mixtures, least squares, moons,
spirals and labels of a random teacher network. Train and test points come from the same
distribution (the first n_train draws train, the next n_test test); classes are balanced.
"""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Any

import torch

from ..config import DataConfig
from ..errors import ConfigError
from .dataset import RawData
from .registry import SYNTHETIC_DEFAULTS, DataOptions, datasets

SIZES = {"n_train": 200, "n_test": 200}


def balanced_labels(opts: DataOptions, k: int, gen: torch.Generator) -> torch.Tensor:
    """n_train then n_test labels in 0..k-1, each split balanced (every class ⌊n/k⌋ or ⌈n/k⌉
    times), in random order."""

    def one(n: int) -> torch.Tensor:
        return (torch.arange(n) % k)[torch.randperm(n, generator=gen)]

    return torch.cat([one(opts.n_train), one(opts.n_test)])


def split(opts: DataOptions, x: torch.Tensor, y: torch.Tensor, n_classes: int | None, **meta: Any) -> RawData:
    """First n_train rows train, the rest test; inputs as float32."""
    n = opts.n_train
    x = x.to(torch.float32)
    names = tuple(str(c) for c in range(n_classes)) if n_classes else ()
    return RawData(x[:n], y[:n], x[n:], y[n:], n_classes=n_classes, class_names=names, meta=meta)


@datasets.register(
    "gaussian-mixture",
    help="n_classes Gaussian blobs in dim dimensions: centres ~ N(0, I), points = centre + noise·N(0, I)",
    options={**SYNTHETIC_DEFAULTS, **SIZES, "dim": 2, "n_classes": 3, "noise": 0.3},
)
def load_gaussian_mixture(cfg: DataConfig, gen: torch.Generator) -> RawData:
    """n_classes centres μ_c ~ N(0, I_dim), balanced labels c, points x = μ_c + noise·ε with
    ε ~ N(0, I_dim) (meta: centers)."""
    opts = DataOptions(cfg)
    centers = torch.randn(opts.n_classes, opts.dim, generator=gen, dtype=torch.float64)
    y = balanced_labels(opts, opts.n_classes, gen)
    eps = torch.randn(opts.n_total, opts.dim, generator=gen, dtype=torch.float64)
    x = centers[y] + opts.noise * eps
    return split(opts, x, y, opts.n_classes, centers=centers)


@datasets.register(
    "least-squares",
    help="regression rows a_i ~ N(0, I_dim), b = A·x_true + "
    "noise·N(0, 1); noise = 0 gives a consistent system (meta: x_true)",
    options={**SYNTHETIC_DEFAULTS, "n_train": 200, "n_test": 100, "dim": 100, "noise": 0.0},
)
def load_least_squares(cfg: DataConfig, gen: torch.Generator) -> RawData:
    """Any shape: n_train < dim is the over-parameterized case (many exact solutions), n_train >
    dim the under-parameterized one. b is computed from the float32 rows, so with noise = 0 the
    stored A and b satisfy A·x_true = b up to float32 rounding of b."""
    opts = DataOptions(cfg)
    a = torch.randn(opts.n_total, opts.dim, generator=gen, dtype=torch.float64)
    a = a.to(torch.float32).to(torch.float64)
    x_true = torch.randn(opts.dim, generator=gen, dtype=torch.float64)
    eps = torch.randn(opts.n_total, generator=gen, dtype=torch.float64)
    b = (a @ x_true + opts.noise * eps).to(torch.float32)
    return split(opts, a, b, None, x_true=x_true)


@datasets.register(
    "moons",
    help="two interleaving half circles in 2-D (binary), Gaussian noise of std noise",
    options={**SYNTHETIC_DEFAULTS, **SIZES, "noise": 0.1},
)
def load_moons(cfg: DataConfig, gen: torch.Generator) -> RawData:
    """The layout of scikit-learn's make_moons: class 0 on (cos t, sin t), class 1 on
    (1 − cos t, 1/2 − sin t), t ~ U(0, π)."""
    opts = DataOptions(cfg)
    y = balanced_labels(opts, 2, gen)
    t = math.pi * torch.rand(opts.n_total, generator=gen, dtype=torch.float64)
    upper = torch.stack([t.cos(), t.sin()], dim=1)
    lower = torch.stack([1 - t.cos(), 0.5 - t.sin()], dim=1)
    x = torch.where(y[:, None] == 0, upper, lower)
    x = x + opts.noise * torch.randn(x.shape, generator=gen, dtype=torch.float64)
    return split(opts, x, y, 2)


@datasets.register(
    "spirals",
    help="two interleaved spirals in 2-D (binary, 1.5 turns each), Gaussian noise of std noise",
    options={**SYNTHETIC_DEFAULTS, **SIZES, "noise": 0.05},
)
def load_spirals(cfg: DataConfig, gen: torch.Generator) -> RawData:
    """Class c at radius r ~ U(0, 1) and angle 3πr + cπ (the second spiral is the first turned
    by half a turn)."""
    opts = DataOptions(cfg)
    y = balanced_labels(opts, 2, gen)
    r = torch.rand(opts.n_total, generator=gen, dtype=torch.float64)
    angle = 3 * math.pi * r + math.pi * y
    x = r[:, None] * torch.stack([angle.cos(), angle.sin()], dim=1)
    x = x + opts.noise * torch.randn(x.shape, generator=gen, dtype=torch.float64)
    return split(opts, x, y, 2)


@datasets.register(
    "teacher",
    help="Gaussian inputs labelled by the argmax of a random ReLU MLP "
    "teacher with hidden widths teacher_widths and n_classes outputs",
    options={**SYNTHETIC_DEFAULTS, **SIZES, "dim": 10, "n_classes": 2, "teacher_widths": (32,)},
)
def load_teacher(cfg: DataConfig, gen: torch.Generator) -> RawData:
    """Weights ~ N(0, 1/fan_in), no hidden biases; the output bias is minus the mean logit over
    the training inputs, so no class is left (nearly) empty. meta: the teacher's weights."""
    opts = DataOptions(cfg)
    if any(w < 1 for w in opts.teacher_widths):
        raise ConfigError(f"data.teacher_widths: {list(opts.teacher_widths)} must all be ≥ 1")
    x = torch.randn(opts.n_total, opts.dim, generator=gen, dtype=torch.float64)
    sizes = [opts.dim, *opts.teacher_widths, opts.n_classes]
    weights = [
        torch.randn(n_out, n_in, generator=gen, dtype=torch.float64) / math.sqrt(n_in)
        for n_in, n_out in pairwise(sizes)
    ]
    h = x
    for w in weights[:-1]:
        h = torch.relu(h @ w.T)
    logits = h @ weights[-1].T
    bias = -logits[: opts.n_train].mean(dim=0)
    y = (logits + bias).argmax(dim=1)
    return split(opts, x, y, opts.n_classes, teacher_weights=weights, teacher_bias=bias)

"""Linearly separable data through the origin and its max-margin vector ŵ (Soudry et al. 2018):
ŵ = argmin ‖w‖² subject to y_n wᵀx_n ≥ 1 for all n (no bias).

`make_separable` builds a set whose ŵ is known by construction; `hard_margin_svm` computes ŵ
of any separable set exactly (Lawson & Hanson's least-distance programming via NNLS).
"""

from __future__ import annotations

import numpy as np
import torch

from ..config import DataConfig
from ..errors import ConfigError
from .dataset import RawData
from .registry import SYNTHETIC_DEFAULTS, DataOptions, datasets


def make_separable(
    n: int,
    dim: int,
    margin: float,
    gen: torch.Generator,
    w_hat: torch.Tensor | None = None,
    n_support: int = 2,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """N points (n even: each point x with label +1 is mirrored as −x with −1) whose hard-margin
    vector is exactly `w_hat` (default: ‖ŵ‖ = 1 along the first axis).

    Support vectors sit on the margin, x = ŵ/‖ŵ‖² + v_s with v_s ⊥ ŵ and Σ v_s = 0; all other
    points lie strictly beyond it, at ŵᵀx ≥ 1 + margin. With equal dual weights on the support
    vectors the KKT conditions hold, and the problem is convex, so ŵ is the unique solution.
    Returns (x [n, dim], y [n] in {0, 1} as class indices, w_hat)."""
    if n % 2 or n < 2 * n_support:
        raise ConfigError(f"data.n_train: separable data needs an even n ≥ {2 * n_support}, got {n}")
    if dim < 2:
        raise ConfigError("data.dim: separable data needs dim ≥ 2")
    if w_hat is None:
        w_hat = torch.zeros(dim, dtype=torch.float64)
        w_hat[0] = 1.0
    w_hat = w_hat.to(torch.float64)
    u = w_hat / w_hat.norm()
    center = w_hat / w_hat.norm() ** 2  # the point on the margin along ŵ

    def orthogonal(k: int) -> torch.Tensor:
        v = torch.randn(k, dim, generator=gen, dtype=torch.float64)
        return v - (v @ u)[:, None] * u

    half = n // 2
    v = orthogonal(n_support)
    v = v - v.mean(dim=0)  # Σ v_s = 0
    support = center + v
    extra = 1.0 + margin + torch.rand(half - n_support, generator=gen, dtype=torch.float64)
    others = extra[:, None] * center + orthogonal(half - n_support)
    pos = torch.cat([support, others])
    x = torch.cat([pos, -pos])
    y = torch.cat([torch.ones(half, dtype=torch.int64), torch.zeros(half, dtype=torch.int64)])
    perm = torch.randperm(n, generator=gen)
    return x[perm], y[perm], w_hat


def hard_margin_svm(x: np.ndarray | torch.Tensor, y_pm1: np.ndarray | torch.Tensor) -> np.ndarray:
    """ŵ = argmin ‖w‖ s.t. y_n wᵀx_n ≥ 1, exactly: the least-distance program min ‖w‖ s.t.
    Gw ≥ h (G = rows y_n x_n, h = 1) is solved through the NNLS problem
    min_u ‖Eu − f‖, u ≥ 0, E = [Gᵀ; hᵀ], f = e_{d+1}; then w = −r_{1:d}/r_{d+1}, r = Eu − f
    (Lawson & Hanson 1974, ch. 23). Raises ValueError when the data are not separable."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y_pm1, dtype=np.float64)
    g = y[:, None] * x
    n, d = g.shape
    e = np.vstack([g.T, np.ones((1, n))])
    f = np.zeros(d + 1)
    f[-1] = 1.0
    from scipy.optimize import nnls  # here: importing scipy.optimize costs ~1 s per process

    u, _ = nnls(e, f, maxiter=50 * (n + d))
    r = e @ u - f
    if abs(r[-1]) < 1e-12:
        raise ValueError("the data are not linearly separable through the origin")
    return -r[:d] / r[-1]


def _split(
    x: torch.Tensor, y: torch.Tensor, n_train: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    return x[:n_train].float(), y[:n_train], x[n_train:].float(), y[n_train:]


@datasets.register(
    "separable",
    help="linearly separable ±x pairs whose max-margin vector ŵ is known by construction (meta: w_hat)",
    options={**SYNTHETIC_DEFAULTS, "n_train": 100, "n_test": 100, "dim": 5, "margin": 0.5},
)
def load_separable(cfg: DataConfig, gen: torch.Generator) -> RawData:
    """Train set of n_train points (`make_separable`, ‖ŵ‖ = 1 along the first axis); the test set
    is drawn the same way around the same ŵ, with 4 extra points so its n_test first points need
    not include the support vectors."""
    opts = DataOptions(cfg)
    x, y, w_hat = make_separable(opts.n_train, opts.dim, opts.margin, gen)
    n_test = opts.n_test + opts.n_test % 2
    if n_test:
        xt, yt, _ = make_separable(n_test + 4, opts.dim, opts.margin, gen, w_hat)
        xt, yt = xt[: opts.n_test], yt[: opts.n_test]
    else:
        xt, yt = x[:0], y[:0]
    return RawData(x.float(), y, xt.float(), yt, n_classes=2, class_names=("-1", "+1"), meta={"w_hat": w_hat})


@datasets.register(
    "separable-random",
    help="random Gaussian points labelled by a random "
    "hyperplane through 0 with a margin gap; ŵ from the exact hard-margin SVM",
    options={**SYNTHETIC_DEFAULTS, "n_train": 100, "n_test": 100, "dim": 5, "margin": 0.1},
)
def load_separable_random(cfg: DataConfig, gen: torch.Generator) -> RawData:
    """Points x ~ N(0, I_dim) labelled by the side of a random unit hyperplane u through 0, each point
    then pushed margin further from it (x ← x + margin·sign(uᵀx)·u), so the classes are separated
    by a gap of 2·margin; ŵ of the training points is computed by `hard_margin_svm`."""
    opts = DataOptions(cfg)
    n = opts.n_total
    teacher = torch.randn(opts.dim, generator=gen, dtype=torch.float64)
    teacher /= teacher.norm()
    x = torch.randn(n, opts.dim, generator=gen, dtype=torch.float64)
    s = x @ teacher
    x = x + (torch.sign(s) * opts.margin)[:, None] * teacher  # push every point off the plane
    y = (s > 0).to(torch.int64)
    xtr, ytr, xte, yte = _split(x, y, opts.n_train)
    w_hat = torch.from_numpy(hard_margin_svm(x[: opts.n_train], 2.0 * y[: opts.n_train] - 1))
    return RawData(xtr, ytr, xte, yte, n_classes=2, class_names=("-1", "+1"), meta={"w_hat": w_hat})

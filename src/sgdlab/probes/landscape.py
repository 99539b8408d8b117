"""Low-dimensional views of the loss landscape (Li, Xu, Taylor, Studer & Goldstein 2018,
"Visualizing the loss landscape of neural nets"): PCA directions of an optimization path, the
loss on the plane they span and update directions projected onto it; 1-D interpolation between
two parameter vectors; 2-D slices along random filter-normalized directions; the three-point
interpolation between three minimizers on and around the simplex; perturbation sharpness.

Everything works on flat parameter vectors and evaluates many parameter vectors at once with
torch.func (vmap over functional_call), so a grid needs no model copy per point. Evaluation is
in eval mode (BN running statistics, no dropout).

A plane, a line and a simplex are affine families θ_k = Σ_i c_ki·v_i. Where the model's first
layer is linear in its parameters (`first_layer_split`: an MLP, a CNN starting with a
convolution), its outputs on the data at every point are the same combination of its outputs
at the v_i, X·W1(a, b)ᵀ + b1(a, b) = Z0 + a·Z1 + b·Z2 on a plane: `span_losses`
(sgdlab.probes.landscape_losses, with `losses_at` for the general case) passes the data
through that layer once per v_i and runs only the later layers per point.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.func import grad, vmap

from ..losses import Loss
from .context import eval_mode
from .landscape_losses import batched_loss, losses_at, span_losses, split_that_pays


@dataclass
class PathPCA:
    """The top principal directions of an optimization path (`path_pca`) and the path in their coordinates."""

    directions: torch.Tensor  # [2, P], orthonormal
    explained: torch.Tensor  # [2] explained variance ratio of each direction
    coords: torch.Tensor  # [K, 2] the path θ_k − θ_final projected on the directions


def path_pca(iterates: torch.Tensor, final: torch.Tensor, k: int = 2) -> PathPCA:
    """The top-k principal directions of the rows θ_k − θ_final (centered, as PCA is; the path
    is projected uncentered so θ_final sits at the origin). Through the K×K Gram matrix, so the
    cost is O(K²P) and memory O(KP) for K iterates of P parameters."""
    d = (iterates - final).double()
    centered = d - d.mean(dim=0)
    gram = centered @ centered.T
    values, vectors = torch.linalg.eigh(gram)
    order = torch.argsort(values, descending=True)
    values, vectors = values[order].clamp_min(0), vectors[:, order]
    total = values.sum()
    dirs = (vectors[:, :k].T @ centered) / values[:k].sqrt().clamp_min(1e-300)[:, None]
    explained = values[:k] / total if total > 0 else torch.zeros(k, dtype=values.dtype)
    return PathPCA(dirs.to(iterates.dtype), explained, (d @ dirs.T.double()).to(iterates.dtype))


@torch.no_grad()
def loss_grid(
    model: nn.Module,
    loss: Loss,
    x: torch.Tensor,
    y: torch.Tensor,
    center: torch.Tensor,
    directions: torch.Tensor,
    alphas: torch.Tensor,
    betas: torch.Tensor,
    chunk: int = 16,
    data_chunk: int | None = None,
) -> torch.Tensor:
    """L(center + a·d1 + b·d2) on the grid alphas × betas ([len(alphas), len(betas)]), `chunk`
    parameter vectors per vmapped forward (`chunk=1`: point by point, no vmap). Where the
    model's first layer is linear in its parameters (`split_that_pays`), through
    `span_losses` with the basis (center, d1, d2) and coefficients (1, a, b): the first layer
    runs three times in all instead of once per point."""
    a, b = torch.meshgrid(alphas, betas, indexing="ij")
    coeffs = torch.stack([a.reshape(-1), b.reshape(-1)], dim=1).to(center)
    split = split_that_pays(model, 3)
    if split is not None:
        ones = torch.ones(len(coeffs), 1, dtype=coeffs.dtype, device=coeffs.device)
        basis = torch.cat([center[None], directions])
        values = span_losses(split, loss, x, y, basis, torch.cat([ones, coeffs], dim=1), chunk, data_chunk)
    else:
        values = losses_at(
            model, loss, x, y, lambda i, j: center + coeffs[i:j] @ directions, len(coeffs), chunk, data_chunk
        )
    return values.reshape(a.shape)


@torch.no_grad()
def interpolation(
    model: nn.Module,
    loss: Loss,
    x: torch.Tensor,
    y: torch.Tensor,
    theta_a: torch.Tensor,
    theta_b: torch.Tensor,
    alphas: torch.Tensor,
    chunk: int = 16,
    data_chunk: int | None = None,
) -> torch.Tensor:
    """1-D linear interpolation L((1 − α)θ_a + αθ_b) for each α (α outside [0, 1] extrapolates;
    Goodfellow, Vinyals & Saxe 2015, "Qualitatively characterizing neural network optimization
    problems").

    Least squares with X = diag(2, 1), y = 0: L(w) = w_1² + w_2²/4.

    >>> import torch
    >>> from torch import nn
    >>> from sgdlab.losses import get_loss
    >>> from sgdlab.probes.landscape import interpolation, loss_grid
    >>> model, loss = nn.Linear(2, 1, bias=False), get_loss("squared", "real")
    >>> x, y = torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.zeros(2)
    >>> interpolation(model, loss, x, y, torch.ones(2), torch.zeros(2), torch.tensor([0.0, 0.5, 1.0]))
    tensor([1.2500, 0.3125, 0.0000])
    >>> a, b = torch.tensor([-1.0, 0.0, 1.0]), torch.tensor([0.0, 2.0])
    >>> loss_grid(model, loss, x, y, torch.zeros(2), torch.eye(2), a, b)  # L(a·e_1 + b·e_2)
    tensor([[1., 2.],
            [0., 1.],
            [1., 2.]])
    """
    alphas = alphas.to(theta_a)
    step = theta_b - theta_a
    split = split_that_pays(model, 2)
    if split is not None:  # θ_a·1 + step·α: the first layer's outputs from two passes
        coeffs = torch.stack([torch.ones_like(alphas), alphas], dim=1)
        return span_losses(split, loss, x, y, torch.stack([theta_a, step]), coeffs, chunk, data_chunk)
    return losses_at(
        model, loss, x, y, lambda i, j: theta_a + alphas[i:j, None] * step, len(alphas), chunk, data_chunk
    )


def filter_normalized(
    model: nn.Module, theta: torch.Tensor, generator: torch.Generator | None = None, count: int | None = None
) -> torch.Tensor:
    """Random directions normalized filter by filter (Li, Xu, Taylor, Studer & Goldstein 2018,
    §4): d ~ N(0, I), then each filter d_{i,j} (one output unit: a row of a Linear weight, an
    output channel of a conv kernel) is rescaled to ‖θ_{i,j}‖·d_{i,j}/‖d_{i,j}‖. Parameters with
    at most one dimension (biases, batch-norm scales and shifts) get 0, as in their code.
    Drawn on the CPU from `generator`: [P], or [count, P] for `count` directions.

    >>> import torch
    >>> from torch import nn
    >>> from sgdlab.probes.landscape import filter_normalized
    >>> model = nn.Linear(3, 2)  # weight [2, 3]: two filters; the bias gets 0
    >>> theta = torch.tensor([3.0, 0.0, 4.0, 0.0, 1.0, 0.0, 7.0, 7.0])
    >>> d = filter_normalized(model, theta, torch.Generator().manual_seed(0))
    >>> d[:6].view(2, 3).norm(dim=1), d[6:]  # each filter's norm is its weights' (5 and 1)
    (tensor([5.0000, 1.0000]), tensor([0., 0.]))
    """
    rows = 1 if count is None else count
    d = torch.randn(rows, theta.numel(), generator=generator, dtype=theta.dtype).to(theta.device)
    offset = 0
    for p in model.parameters():
        if not p.requires_grad:
            continue
        n = p.numel()
        block = d[:, offset : offset + n]
        if p.ndim <= 1:
            block.zero_()
        else:
            w = theta[offset : offset + n].view(p.shape[0], -1)
            view = block.view(rows, p.shape[0], -1)
            norms = torch.linalg.vector_norm(view, dim=2, keepdim=True).clamp_min(1e-30)
            view.mul_(torch.linalg.vector_norm(w, dim=1)[None, :, None] / norms)
        offset += n
    return d[0] if count is None else d


@torch.no_grad()
def random_plane(
    model: nn.Module,
    loss: Loss,
    x: torch.Tensor,
    y: torch.Tensor,
    center: torch.Tensor,
    alphas: torch.Tensor,
    betas: torch.Tensor,
    generator: torch.Generator | None = None,
    chunk: int = 16,
    data_chunk: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A 2-D slice along two random filter-normalized directions (Li et al. 2018): the grid
    L(center + a·d1 + b·d2) and the directions [2, P]."""
    directions = filter_normalized(model, center, generator, count=2)
    return loss_grid(model, loss, x, y, center, directions, alphas, betas, chunk, data_chunk), directions


def simplex_lambdas(steps: int = 20, margin: float = 0.25) -> torch.Tensor:
    """Barycentric weights λ = (λ1, λ2, λ3), Σλ = 1, on a lattice of spacing 1/steps over the
    triangle enlarged by `margin` (every λ_i ≥ −margin): the simplex and a band around it.
    Float64 [G, 3]. The simplex's corners, the three minimizers, are the rows equal to e_1, e_2
    and e_3; with a margin, other rows have some λ_i = 1 as well (such as (1, ¼, −¼)), so a
    corner is found by matching the whole row, not one coordinate."""
    lo = -round(margin * steps)
    hi = steps - 2 * lo
    rows = [
        (i / steps, j / steps, 1 - (i + j) / steps)
        for i in range(lo, hi + 1)
        for j in range(lo, hi + 1)
        if (steps - i - j) >= lo
    ]
    return torch.tensor(rows, dtype=torch.float64)


@torch.no_grad()
def three_point_interpolation(
    model: nn.Module,
    loss: Loss,
    x: torch.Tensor,
    y: torch.Tensor,
    minimizers: torch.Tensor,
    lambdas: torch.Tensor,
    chunk: int = 16,
    data_chunk: int | None = None,
) -> torch.Tensor:
    """L(w_λ), w_λ = λ1·w1 + λ2·w2 + λ3·w3, for each row of `lambdas` ([G, 3], see
    `simplex_lambdas`); `minimizers` [3, P] are the three w_i (Zhang, Liao, Rakhlin, Miranda,
    Golowich & Poggio 2017, the three-point interpolation of their random-label experiment)."""
    lam = lambdas.to(minimizers)
    split = split_that_pays(model, len(minimizers))
    if split is not None:  # the first layer's outputs from one pass per minimizer
        return span_losses(split, loss, x, y, minimizers, lam, chunk, data_chunk)
    return losses_at(model, loss, x, y, lambda i, j: lam[i:j] @ minimizers, len(lam), chunk, data_chunk)


@dataclass
class Sharpness:
    """The loss increases of `perturbation_sharpness` under random filter-normalized perturbations."""

    base: float  # L(θ)
    mean_increase: float  # mean over directions of L(θ + r·d) − L(θ)
    max_increase: float
    increases: torch.Tensor  # [n]
    radius: float


@torch.no_grad()
def perturbation_sharpness(
    model: nn.Module,
    loss: Loss,
    x: torch.Tensor,
    y: torch.Tensor,
    theta: torch.Tensor,
    radius: float,
    n: int = 32,
    generator: torch.Generator | None = None,
    chunk: int = 16,
    data_chunk: int | None = None,
) -> Sharpness:
    """Loss increase under random filter-normalized perturbations of relative size `radius`:
    L(θ + r·d_j) − L(θ) for n directions d_j from `filter_normalized` (each filter moves by r
    times its own norm; Li et al. 2018's normalization, which makes the measure invariant to
    the rescalings ReLU nets allow, unlike a fixed-norm ball; Keskar et al. 2017 use the max)."""
    base = float(losses_at(model, loss, x, y, lambda i, j: theta[None], 1, 1, data_chunk)[0])
    dirs = filter_normalized(model, theta, generator, count=n)
    values = losses_at(model, loss, x, y, lambda i, j: theta + radius * dirs[i:j], n, chunk, data_chunk)
    inc = values.double() - base
    return Sharpness(base, float(inc.mean()), float(inc.max()), inc, radius)


def projected_gradients(
    model: nn.Module,
    loss: Loss,
    x: torch.Tensor,
    y: torch.Tensor,
    thetas: torch.Tensor,
    directions: torch.Tensor,
    chunk: int = 8,
) -> torch.Tensor:
    """The SGD update (minibatch gradient on x, y) at each row of `thetas`, projected on the
    directions: [K, 2]. Li et al.'s arrows; Appendix D.2 of “An optimization principle of deep learning?”."""
    g = vmap(grad(batched_loss(model, loss, x, y)))
    out = []
    with eval_mode(model):
        for start in range(0, len(thetas), chunk):
            out.append(g(thetas[start : start + chunk]) @ directions.T)
    return torch.cat(out)

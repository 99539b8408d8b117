"""Low-dimensional views of the loss landscape around a path (Li et al. 2018, "Visualizing the
loss landscape of neural nets"): PCA directions of an optimization path, the loss on the
plane they span, and update directions projected onto it.

Everything works on flat parameter vectors and evaluates many parameter vectors at once with
torch.func (vmap over functional_call), so a grid needs no model copy per point. Evaluation is
in eval mode (BN running statistics, no dropout).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from ..losses import Loss
from ..params import named_views
from .context import eval_mode


@dataclass
class PathPCA:
    directions: torch.Tensor   # [2, P], orthonormal
    explained: torch.Tensor    # [2] explained variance ratio of each direction
    coords: torch.Tensor       # [K, 2] the path θ_k − θ_final projected on the directions


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


def _batched_loss(model: nn.Module, loss: Loss, x: torch.Tensor, y: torch.Tensor):
    buffers = dict(model.named_buffers())

    def loss_at(theta: torch.Tensor) -> torch.Tensor:
        return loss(functional_call(model, {**named_views(model, theta), **buffers}, (x,)), y)
    return loss_at


@torch.no_grad()
def loss_grid(model: nn.Module, loss: Loss, x: torch.Tensor, y: torch.Tensor, center: torch.Tensor,
              directions: torch.Tensor, alphas: torch.Tensor, betas: torch.Tensor,
              chunk: int = 16) -> torch.Tensor:
    """L(center + a·d1 + b·d2) on the grid alphas × betas ([len(alphas), len(betas)]), `chunk`
    parameter vectors per vmapped forward."""
    a, b = torch.meshgrid(alphas, betas, indexing="ij")
    coeffs = torch.stack([a.reshape(-1), b.reshape(-1)], dim=1).to(center)
    f = vmap(_batched_loss(model, loss, x, y))
    out = []
    with eval_mode(model):
        for start in range(0, len(coeffs), chunk):
            thetas = center + coeffs[start:start + chunk] @ directions
            out.append(f(thetas))
    return torch.cat(out).reshape(a.shape)


def projected_gradients(model: nn.Module, loss: Loss, x: torch.Tensor, y: torch.Tensor,
                        thetas: torch.Tensor, directions: torch.Tensor, chunk: int = 8) -> torch.Tensor:
    """The SGD update (minibatch gradient on x, y) at each row of `thetas`, projected on the
    directions: [K, 2]. Li et al.'s arrows; Appendix D.2 of “An optimization principle of deep learning?”."""
    g = vmap(grad(_batched_loss(model, loss, x, y)))
    out = []
    with eval_mode(model):
        for start in range(0, len(thetas), chunk):
            out.append(g(thetas[start:start + chunk]) @ directions.T)
    return torch.cat(out)

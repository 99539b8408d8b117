"""The generic path: per-sample gradients by `torch.func.vmap(grad(functional_call))` for any
parameters of any model, reduced to their Gram matrix chunk by chunk.

Memory stays within a budget B bytes: the parameters are cut into column blocks of at most
B/2 / (N·itemsize) entries (a large tensor is split across blocks), the N × block Jacobian of
one block is filled sample chunk by sample chunk (each chunk's vmapped gradients ≤ B/2) and
reduced at once, G += J Jᵀ; no N × P tensor outlives its block. Each block costs one vmapped
forward and backward over the N samples, so a budget ≥ N·P·itemsize·2 makes it a single pass.
"""

from __future__ import annotations

from typing import Callable, Iterator

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

PerSampleLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def blocks(sizes: dict[str, int], n: int, itemsize: int, budget: int) -> list[list[tuple[str, int, int]]]:
    """Column blocks [(name, lo, hi), …] of the flattened parameters, each ≤ budget/2 bytes for n
    rows; a tensor larger than one block is split across several."""
    width = max(1, budget // (2 * n * itemsize))
    out: list[list[tuple[str, int, int]]] = [[]]
    room = width
    for name, size in sizes.items():
        lo = 0
        while lo < size:
            if room == 0:
                out.append([])
                room = width
            hi = min(size, lo + room)
            out[-1].append((name, lo, hi))
            room -= hi - lo
            lo = hi
    return [b for b in out if b]


def vmap_gram(
    model: nn.Module,
    per_sample: PerSampleLoss,
    x: torch.Tensor,
    y: torch.Tensor,
    names: list[str],
    budget: int,
    diag: bool = False,
) -> torch.Tensor:
    """G_ij = Σ_{p ∈ names} ⟨∂ℓ_i/∂p, ∂ℓ_j/∂p⟩ (float64 [N, N]; with `diag` only G_ii, [N]) at the
    model's current parameters and in its current mode (the caller puts it in eval mode)."""
    n = x.shape[0]
    out = torch.zeros(*((n,) if diag else (n, n)), dtype=torch.float64, device=x.device)
    for jac in jacobian_blocks(model, per_sample, x, y, names, budget):
        out += (jac * jac).sum(dim=1).double() if diag else (jac @ jac.T).double()
    return out


def vmap_moments(
    model: nn.Module,
    per_sample: PerSampleLoss,
    x: torch.Tensor,
    y: torch.Tensor,
    names: list[str],
    budget: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(‖g_i‖², ⟨g_i, Σ_j g_j⟩) over the parameters `names` (float64 [N] each): the diagonal and
    the row sums of `vmap_gram`'s G, in O(N·P) per block instead of O(N²·P)."""
    n = x.shape[0]
    sq = torch.zeros(n, dtype=torch.float64, device=x.device)
    rows = torch.zeros(n, dtype=torch.float64, device=x.device)
    for jac in jacobian_blocks(model, per_sample, x, y, names, budget):
        sq += (jac * jac).sum(dim=1).double()
        rows += (jac @ jac.sum(dim=0)).double()
    return sq, rows


def jacobian_blocks(
    model: nn.Module,
    per_sample: PerSampleLoss,
    x: torch.Tensor,
    y: torch.Tensor,
    names: list[str],
    budget: int,
) -> Iterator[torch.Tensor]:
    """The per-sample gradients of the parameters `names` as N × block Jacobians, one column block
    at a time (see the module docstring for the budget)."""
    n = x.shape[0]
    if not names or n == 0:
        return
    params = {k: p.detach() for k, p in model.named_parameters()}
    buffers = dict(model.named_buffers())
    itemsize = params[names[0]].element_size()

    def loss_of(sub: dict[str, torch.Tensor], xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        state = {**params, **sub, **buffers}
        return per_sample(functional_call(model, state, (xi.unsqueeze(0),)), yi.unsqueeze(0)).sum()

    per_sample_grads = vmap(grad(loss_of), in_dims=(None, 0, 0))
    for block in blocks({k: params[k].numel() for k in names}, n, itemsize, budget):
        tensors = list(dict.fromkeys(name for name, _, _ in block))
        full = sum(params[k].numel() for k in tensors)
        chunk = max(1, min(n, budget // (2 * itemsize * full)))
        jac = x.new_empty((n, sum(hi - lo for _, lo, hi in block)), dtype=params[tensors[0]].dtype)
        for s in range(0, n, chunk):
            g = per_sample_grads({k: params[k] for k in tensors}, x[s : s + chunk], y[s : s + chunk])
            m = min(chunk, n - s)
            jac[s : s + m] = torch.cat([g[k].reshape(m, -1)[:, lo:hi] for k, lo, hi in block], dim=1)
        yield jac

"""The linearization of a network at θ_0 (Lee et al. 2019; eq. (2) of Nonnenmacher, Reeb &
Steinwart 2021):

    f_lin(x; θ) = f(x; θ_0) + φ(x)ᵀ(θ − θ_0),   φ(x) = ∇_θ f(x; θ_0),

as a module whose single parameter is θ (flat, starting at θ_0), so any optimizer — and any
sgdlab run (`sgdlab.run(cfg, model=linearize(model))`) — can train it. φ(x)ᵀv is one
forward-mode product (jvp), so nothing of size N×P is ever formed. The base network is a frozen
copy evaluated in eval mode; the model you pass is not changed.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.func import functional_call, jvp

from ..params import flat_params, named_views, set_flat_params


def outputs_and_jvp(
    model: nn.Module, x: torch.Tensor, theta: torch.Tensor, tangent: torch.Tensor, *, frozen: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """(f(x; θ), φ(x; θ)ᵀ·tangent) for flat θ and tangent over the trainable parameters (over
    all parameters with `frozen`, for a frozen copy); the model's output shape."""
    buffers = dict(model.named_buffers())
    views = _all_views if frozen else named_views

    def f(flat: torch.Tensor) -> torch.Tensor:
        return functional_call(model, {**buffers, **views(model, flat)}, (x,))

    out = jvp(f, (theta,), (tangent,))
    return out[0], out[1]


def _all_views(model: nn.Module, flat: torch.Tensor) -> dict[str, torch.Tensor]:
    out, offset = {}, 0
    for name, p in model.named_parameters():
        out[name] = flat[offset : offset + p.numel()].view_as(p)
        offset += p.numel()
    return out


class Linearized(nn.Module):
    """f_lin(x; θ) of `model` at θ_0; `theta` is the one trainable parameter."""

    theta0: torch.Tensor  # a buffer: θ_0, flat

    def __init__(self, model: nn.Module, theta0: torch.Tensor | None = None):
        super().__init__()
        base = copy.deepcopy(model)
        if theta0 is not None:
            set_flat_params(base, theta0)
        base.eval()
        theta0 = flat_params(base)
        for p in base.parameters():
            p.requires_grad_(False)
        self.base = base
        self.register_buffer("theta0", theta0.clone())
        self.theta = nn.Parameter(theta0.clone())

    def train(self, mode: bool = True) -> "Linearized":
        """Set the mode as nn.Module does, but the base network always stays in eval mode."""
        super().train(mode)
        self.base.eval()  # φ is taken at θ_0 without dropout or batch statistics
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """f_lin(x; θ) at the module's own θ."""
        return self.at(x, self.theta)

    def at(self, x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        """f_lin(x; θ) for any flat θ (differentiable in θ)."""
        f0, move = outputs_and_jvp(self.base, x, self.theta0, theta - self.theta0, frozen=True)
        return f0 + move


def linearize(model: nn.Module, theta0: torch.Tensor | None = None) -> Linearized:
    """The linearized model of `model` around θ_0 (default: its current parameters).

    >>> import torch
    >>> from torch import nn
    >>> from sgdlab.ntk import linearize
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> net = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
    >>> lin = linearize(net)
    >>> x = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    >>> torch.allclose(lin(x), net(x))  # equal at θ_0
    True
    >>> theta = lin.theta0 + 0.5
    >>> float((lin.at(x, theta) - lin(x)).detach().abs().max()) > 0  # moves linearly in θ − θ_0
    True
    >>> sum(p.numel() for p in lin.parameters() if p.requires_grad) == lin.theta0.numel()
    True
    """
    return Linearized(model, theta0)

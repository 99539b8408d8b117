"""`residual-mlp`: the residual ReLU nets of Giselsson's lecture on SGD, written "3x5,2,1":
residual layers of widths `residual_widths`, plain layers of widths `widths`, then the output."""

from __future__ import annotations

import torch
from torch import nn

from .layers import activation, check_init, dense, flat_size
from .registry import ModelOptions, models

OPTIONS = {
    "residual_widths": (5, 5, 5),
    "widths": (2,),
    "activation": "relu",
    "bias": True,
    "init": "default",
    "parametrization": "standard",
    "sigma": 1.0,
}


class ResidualDense(nn.Module):
    """h ← s(h) + act(W h + b): s is the identity, or a bias-free linear projection when the
    width changes (He et al. 2016's projection shortcut)."""

    def __init__(self, layer: nn.Module, act: nn.Module, shortcut: nn.Module):
        super().__init__()
        self.layer, self.act, self.shortcut = layer, act, shortcut

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """s(h) + act(W h + b)."""
        return self.shortcut(h) + self.act(self.layer(h))


@models.register(
    "residual-mlp",
    help='residual fully connected net, "3x5,2,1" = '
    "residual_widths [5, 5, 5], widths [2], then the outputs; a projection "
    "shortcut where the width changes",
    options=OPTIONS,
)
def residual_mlp(opts: ModelOptions, input_shape: tuple[int, ...], n_outputs: int) -> nn.Module:
    """The residual ReLU nets of the which-minimizer study (Nonnenmacher, Reeb & Steinwart 2021,
    "Which minimizer does my neural network converge to?"): a ResidualDense layer per entry of
    `residual_widths`, plain Dense → act layers per entry of `widths`, then Dense → n_outputs,
    in standard or NTK parametrization."""
    check_init(opts.init, "residual-mlp")

    def linear(n_in: int, n_out: int, *, bias: bool = opts.bias, init: str = opts.init) -> nn.Module:
        return dense(
            n_in, n_out, parametrization=opts.parametrization, sigma=opts.sigma, bias=bias, init=init
        )

    layers: list[nn.Module] = [nn.Flatten()]
    n_in = flat_size(input_shape)
    for width in opts.residual_widths:
        shortcut = nn.Identity() if width == n_in else linear(n_in, width, bias=False)
        layers.append(ResidualDense(linear(n_in, width), activation(opts.activation), shortcut))
        n_in = width
    for width in opts.widths:
        layers += [linear(n_in, width), activation(opts.activation)]
        n_in = width
    layers.append(linear(n_in, n_outputs, init="default" if opts.init == "he" else opts.init))
    return nn.Sequential(*layers)

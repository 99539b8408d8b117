"""Building blocks shared by the models: activations, NTK-parametrized layers, initializers."""

from __future__ import annotations

import math

import torch
from torch import nn
import torch.nn.functional as F

from ..errors import ConfigError


def activation(name: str) -> nn.Module:
    table = {"relu": nn.ReLU, "leaky-relu": lambda: nn.LeakyReLU(0.01),
             "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}
    return table[name]()


class NTKLinear(nn.Module):
    """f(x) = (σ/√n_in)·W x + σ·b with W, b ~ N(0, 1): the NTK parametrization of
    Jacot et al. 2018 / Lee et al. 2019 (REPRODUCTION.md, which-minimizer)."""

    def __init__(self, n_in: int, n_out: int, sigma: float = 1.0, bias: bool = True):
        super().__init__()
        self.n_in, self.sigma = n_in, sigma
        self.weight = nn.Parameter(torch.randn(n_out, n_in))
        self.bias = nn.Parameter(torch.randn(n_out)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight * (self.sigma / math.sqrt(self.n_in))
        b = self.bias * self.sigma if self.bias is not None else None
        return F.linear(x, w, b)

    def extra_repr(self) -> str:
        return f"{self.n_in}, {self.weight.shape[0]}, sigma={self.sigma}, bias={self.bias is not None}"


def dense(n_in: int, n_out: int, *, parametrization: str, sigma: float, bias: bool,
          init: str) -> nn.Module:
    """A fully connected layer in the requested parametrization and initialization."""
    if parametrization == "ntk":
        if init not in ("default", "ntk-normal"):
            raise ConfigError(f"model.init: {init!r} does not apply to the ntk parametrization "
                              "(its weights are always N(0, 1))")
        return NTKLinear(n_in, n_out, sigma, bias)
    layer = nn.Linear(n_in, n_out, bias=bias)
    init_weights(layer, init, sigma)
    return layer


@torch.no_grad()
def init_weights(layer: nn.Module, init: str, sigma: float = 1.0) -> None:
    """he: N(0, 2/fan_in), biases 0; ntk-normal: N(0, σ²/fan_in) weights and N(0, σ²) biases
    (the standard-parametrization twin of the NTK net); zeros: all 0; default: PyTorch's."""
    if init == "default":
        return
    w, b = layer.weight, layer.bias
    fan_in = w[0].numel()
    if init == "he":
        w.normal_(0.0, math.sqrt(2.0 / fan_in))
        if b is not None:
            b.zero_()
    elif init == "ntk-normal":
        w.normal_(0.0, sigma / math.sqrt(fan_in))
        if b is not None:
            b.normal_(0.0, sigma)
    elif init == "zeros":
        w.zero_()
        if b is not None:
            b.zero_()
    else:
        raise ValueError(init)


def flat_size(shape: tuple[int, ...]) -> int:
    return math.prod(shape)

"""Building blocks shared by the models: activations, NTK-parametrized layers, initializers."""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError


def activation(name: str) -> nn.Module:
    """A fresh activation module: relu, leaky-relu (negative slope 0.01), tanh or sigmoid."""
    table: dict[str, Callable[[], nn.Module]] = {
        "relu": nn.ReLU,
        "leaky-relu": lambda: nn.LeakyReLU(0.01),
        "tanh": nn.Tanh,
        "sigmoid": nn.Sigmoid,
    }
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
        """(σ/√n_in)·W x + σ·b over the last axis of x."""
        w = self.weight * (self.sigma / math.sqrt(self.n_in))
        b = self.bias * self.sigma if self.bias is not None else None
        return F.linear(x, w, b)

    def extra_repr(self) -> str:
        """Sizes, σ and whether there is a bias, for the module's repr."""
        return f"{self.n_in}, {self.weight.shape[0]}, sigma={self.sigma}, bias={self.bias is not None}"


def dense(n_in: int, n_out: int, *, parametrization: str, sigma: float, bias: bool, init: str) -> nn.Module:
    """A fully connected layer n_in → n_out: an NTKLinear under parametrization "ntk" (whose
    weights are N(0, 1) by definition, so only init "default" or "ntk-normal" applies), else an
    nn.Linear initialized by `init_weights(layer, init, sigma)`."""
    if parametrization == "ntk":
        if init not in ("default", "ntk-normal"):
            raise ConfigError(
                f"model.init: {init!r} does not apply to the ntk parametrization "
                "(its weights are always N(0, 1))"
            )
        return NTKLinear(n_in, n_out, sigma, bias)
    layer = nn.Linear(n_in, n_out, bias=bias)
    init_weights(layer, init, sigma)
    return layer


@torch.no_grad()
def init_weights(layer: nn.Linear | nn.Conv2d, init: str, sigma: float = 1.0) -> None:
    """he: N(0, 2/fan_in), biases 0 (He et al. 2015, "Delving deep into rectifiers");
    ntk-normal: N(0, σ²/fan_in) weights and N(0, σ²) biases (the standard-parametrization
    twin of the NTK net); zeros: all 0; default: PyTorch's, left as it is. In place; fan_in
    is the number of inputs of one output unit (n_in, or c_in·k·k for a conv)."""
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
    """Number of entries of one input of this shape: the width a dense layer sees after flatten."""
    return math.prod(shape)


# ---------------------------------------------------------------------------------------
# Conv-net helpers: input checks, spatial sizes, width scaling, heads, initialization


def image_shape(input_shape: tuple[int, ...], model: str) -> tuple[int, int, int]:
    """(channels, height, width) of an image input, or a ConfigError naming the model."""
    if len(input_shape) != 3:
        raise ConfigError(
            f"model.name: {model!r} needs image inputs (channels, height, width), "
            f"got input shape {tuple(input_shape)}"
        )
    return tuple(input_shape)  # type: ignore[return-value]


def spatial_size(
    input_shape: tuple[int, ...], ops: list[tuple[int, int, int]], model: str
) -> tuple[int, int]:
    """(height, width) after conv/pool `ops` of (kernel, stride, padding): what the flatten
    before a dense head sees. Fails when an op would see less than its kernel."""
    _, h, w = image_shape(input_shape, model)
    for kernel, stride, padding in ops:
        h, w = ((s + 2 * padding - kernel) // stride + 1 for s in (h, w))
        if h < 1 or w < 1:
            raise ConfigError(
                f"model.name: {model!r} needs larger inputs: its layers shrink "
                f"{tuple(input_shape)[1:]} below 1×1 (set data.resize)"
            )
    return h, w


def scaled(n: int, width: int, base: int) -> int:
    """Layer size n of a net whose base width `base` is changed to `width`."""
    return max(1, round(n * width / base))


def classifier(
    n_in: int, hidden: tuple[int, ...], n_outputs: int, *, act: str, dropout: float, bias: bool
) -> nn.Sequential:
    """Dense head: (Linear → act → Dropout) per hidden width, then the output Linear."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(n_in, width, bias=bias), activation(act)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        n_in = width
    layers.append(nn.Linear(n_in, n_outputs, bias=bias))
    return nn.Sequential(*layers)


def check_init(init: str, model: str) -> None:
    """A ConfigError for init "zeros", under which all units of a layer stay identical."""
    if init == "zeros":
        raise ConfigError(
            f"model.init: 'zeros' would make every unit identical in {model} (use default, he or ntk-normal)"
        )


def init_layers(model: nn.Module, init: str, output: nn.Module) -> None:
    """Apply `init` to every conv and linear layer; under he the output layer keeps
    PyTorch's init (no ReLU gain after the last layer, as in mlp)."""
    for layer in model.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            init_weights(layer, "default" if (init == "he" and layer is output) else init)


def batch_norm_2d(channels: int, on: bool) -> nn.Module:
    """BatchNorm2d over `channels` when `on`, else an Identity (so layer lists keep one shape)."""
    return nn.BatchNorm2d(channels) if on else nn.Identity()


class MaxPoolSame(nn.Module):
    """Max-pool with TensorFlow's padding="SAME": output side ⌈n/stride⌉, the padding (−∞)
    split with the larger half right/bottom — the pooling of TF's CIFAR-10 tutorial net."""

    def __init__(self, kernel: int, stride: int):
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def _pad(self, n: int) -> tuple[int, int]:
        total = max((-(-n // self.stride) - 1) * self.stride + self.kernel - n, 0)
        return total // 2, total - total // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pad H and W with −∞ as SAME padding does, then max-pool (N×C×H×W input)."""
        x = F.pad(x, (*self._pad(x.shape[-1]), *self._pad(x.shape[-2])), value=float("-inf"))
        return F.max_pool2d(x, self.kernel, self.stride)

    def extra_repr(self) -> str:
        """Kernel and stride, for the module's repr."""
        return f"kernel={self.kernel}, stride={self.stride}"


class GlobalAvgPool(nn.AdaptiveAvgPool2d):
    """The mean over each channel's H×W map, as `nn.AdaptiveAvgPool2d(1)` computes it. Under
    `torch.use_deterministic_algorithms(True)` on CUDA, whose adaptive pooling has no
    deterministic backward (torch raises), it is the plain mean over (H, W): the same value up
    to rounding, and a backward without atomic adds (config `deterministic = true`, the γ
    replay on a GPU)."""

    def __init__(self) -> None:
        super().__init__(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The channel means: [N, C, H, W] → [N, C, 1, 1]."""
        if x.is_cuda and torch.are_deterministic_algorithms_enabled():
            return x.mean(dim=(-2, -1), keepdim=True)
        return super().forward(x)

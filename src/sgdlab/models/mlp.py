"""Fully connected models: `linear` (logistic / linear regression) and `mlp`."""

from __future__ import annotations

from torch import nn

from ..errors import ConfigError
from .layers import activation, dense, flat_size, init_weights
from .registry import ModelOptions, models

MLP_OPTIONS = {
    "widths": (64,),
    "activation": "relu",
    "bias": True,
    "batch_norm": "none",
    "dropout": 0.0,
    "init": "default",
    "parametrization": "standard",
    "sigma": 1.0,
}


@models.register(
    "linear",
    help="one linear layer on the flattened input (logistic/linear regression)",
    options={"bias": True, "init": "default", "parametrization": "standard", "sigma": 1.0},
)
def linear(opts: ModelOptions, input_shape: tuple[int, ...], n_outputs: int) -> nn.Module:
    """f(x) = W vec(x) + b: logistic regression under a classification loss, linear regression
    under the squared loss. Standard or NTK parametrization; init "zeros" (θ_0 = 0) is allowed
    here, unlike in the nets with hidden units, which it would make identical."""
    layer: nn.Module
    if opts.init == "zeros":
        layer = nn.Linear(flat_size(input_shape), n_outputs, bias=opts.bias)
        init_weights(layer, "zeros")
    else:
        layer = dense(
            flat_size(input_shape),
            n_outputs,
            parametrization=opts.parametrization,
            sigma=opts.sigma,
            bias=opts.bias,
            init=opts.init,
        )
    return nn.Sequential(nn.Flatten(), layer)


@models.register(
    "mlp",
    help="multilayer perceptron with any hidden widths; standard or NTK parametrization",
    options=MLP_OPTIONS,
)
def mlp(opts: ModelOptions, input_shape: tuple[int, ...], n_outputs: int) -> nn.Module:
    """Flatten, then per hidden width (Dense → BatchNorm1d if batch_norm = "all" → act →
    Dropout if dropout > 0), then Dense → n_outputs. Parameters: Σ (n_in + 1)·n_out over the
    dense layers (without the +1 when bias = false), plus 2·width per BN layer. Under init
    "he" the output layer keeps PyTorch's init (no ReLU follows it)."""
    if opts.batch_norm not in ("all", "none"):
        raise ConfigError(f"model.batch_norm: {opts.batch_norm!r} is not one of all, none for mlp")
    if opts.init == "zeros":
        raise ConfigError("model.init: 'zeros' would make every hidden unit identical in an mlp")
    layers: list[nn.Module] = [nn.Flatten()]
    n_in = flat_size(input_shape)
    for width in opts.widths:
        layers.append(
            dense(
                n_in,
                width,
                parametrization=opts.parametrization,
                sigma=opts.sigma,
                bias=opts.bias,
                init=opts.init,
            )
        )
        if opts.batch_norm == "all":
            layers.append(nn.BatchNorm1d(width))
        layers.append(activation(opts.activation))
        if opts.dropout > 0:
            layers.append(nn.Dropout(opts.dropout))
        n_in = width
    last_init = "default" if opts.init == "he" else opts.init  # no ReLU gain on the output layer
    layers.append(
        dense(
            n_in,
            n_outputs,
            parametrization=opts.parametrization,
            sigma=opts.sigma,
            bias=opts.bias,
            init=last_init,
        )
    )
    return nn.Sequential(*layers)

"""Fully connected models: `linear` (logistic / linear regression) and `mlp`."""

from __future__ import annotations

from torch import nn

from ..config import ModelConfig
from ..errors import ConfigError
from .layers import activation, dense, flat_size, init_weights
from .registry import models

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
def linear(cfg: ModelConfig, input_shape: tuple[int, ...], n_outputs: int) -> nn.Module:
    if cfg.init == "zeros":
        layer = nn.Linear(flat_size(input_shape), n_outputs, bias=cfg.bias)
        init_weights(layer, "zeros")
    else:
        layer = dense(
            flat_size(input_shape),
            n_outputs,
            parametrization=cfg.parametrization,
            sigma=cfg.sigma,
            bias=cfg.bias,
            init=cfg.init,
        )
    return nn.Sequential(nn.Flatten(), layer)


@models.register(
    "mlp",
    help="multilayer perceptron with any hidden widths; standard or NTK parametrization",
    options=MLP_OPTIONS,
)
def mlp(cfg: ModelConfig, input_shape: tuple[int, ...], n_outputs: int) -> nn.Module:
    if cfg.batch_norm not in ("all", "none"):
        raise ConfigError(f"model.batch_norm: {cfg.batch_norm!r} is not one of all, none for mlp")
    if cfg.init == "zeros":
        raise ConfigError("model.init: 'zeros' would make every hidden unit identical in an mlp")
    layers: list[nn.Module] = [nn.Flatten()]
    n_in = flat_size(input_shape)
    for width in cfg.widths:
        layers.append(
            dense(
                n_in,
                width,
                parametrization=cfg.parametrization,
                sigma=cfg.sigma,
                bias=cfg.bias,
                init=cfg.init,
            )
        )
        if cfg.batch_norm == "all":
            layers.append(nn.BatchNorm1d(width))
        layers.append(activation(cfg.activation))
        if cfg.dropout > 0:
            layers.append(nn.Dropout(cfg.dropout))
        n_in = width
    last_init = "default" if cfg.init == "he" else cfg.init  # no ReLU gain on the output layer
    layers.append(
        dense(
            n_in,
            n_outputs,
            parametrization=cfg.parametrization,
            sigma=cfg.sigma,
            bias=cfg.bias,
            init=last_init,
        )
    )
    return nn.Sequential(*layers)

"""`lenet`: the LeNet-5-like base model of the exact-convergence study, pinned by
its 121,802 parameters on 32×32×3 inputs with 10 classes."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from ..config import ModelConfig
from .layers import activation, check_init, classifier, image_shape, init_layers, scaled, spatial_size
from .registry import models

BASE_WIDTH = 32
OPTIONS = {"width": BASE_WIDTH, "activation": "relu", "dropout": 0.0, "bias": True, "init": "default"}


@models.register(
    "lenet",
    help="seed-000 base CNN: Conv(32, 4x4, valid) → MaxPool 2 → "
    "Conv(32, 4x4, valid) → MaxPool 2 → Dense 128 → outputs (121,802 params on "
    "32x32x3, 10 classes); `width` scales every layer (32 = the paper's)",
    options=OPTIONS,
    channels_last=True,
)
def lenet(cfg: ModelConfig, input_shape: tuple[int, ...], n_outputs: int) -> nn.Module:
    check_init(cfg.init, "lenet")
    c_in = image_shape(input_shape, "lenet")[0]
    c = cfg.width
    h, w = spatial_size(input_shape, [(4, 1, 0), (2, 2, 0)] * 2, "lenet")
    features = nn.Sequential(
        nn.Conv2d(c_in, c, 4, bias=cfg.bias),
        activation(cfg.activation),
        nn.MaxPool2d(2),
        nn.Conv2d(c, c, 4, bias=cfg.bias),
        activation(cfg.activation),
        nn.MaxPool2d(2),
    )
    head = classifier(
        c * h * w,
        (scaled(128, c, BASE_WIDTH),),
        n_outputs,
        act=cfg.activation,
        dropout=cfg.dropout,
        bias=cfg.bias,
    )
    model = nn.Sequential(OrderedDict(features=features, flatten=nn.Flatten(), classifier=head))
    init_layers(model, cfg.init, output=head[-1])
    return model

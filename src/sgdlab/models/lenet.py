"""`lenet`: the LeNet-5-like base model of the exact-convergence study, pinned by
its 121,802 parameters on 32×32×3 inputs with 10 classes."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from .layers import activation, check_init, classifier, image_shape, init_layers, scaled, spatial_size
from .registry import ModelOptions, models

BASE_WIDTH = 32
OPTIONS = {"width": BASE_WIDTH, "activation": "relu", "dropout": 0.0, "bias": True, "init": "default"}


@models.register(
    "lenet",
    help='the base CNN of Nacson, Srebro & Soudry 2019 ("Stochastic gradient descent on separable data"): '
    "Conv(32, 4x4, valid) → MaxPool 2 → "
    "Conv(32, 4x4, valid) → MaxPool 2 → Dense 128 → outputs (121,802 params on "
    "32x32x3, 10 classes); `width` scales every layer (32 = the paper's)",
    options=OPTIONS,
    channels_last=True,
)
def lenet(opts: ModelOptions, input_shape: tuple[int, ...], n_outputs: int) -> nn.Module:
    """The LeNet-5-like base CNN of the exact-convergence study (Nacson, Srebro & Soudry 2019,
    "Stochastic gradient descent on separable data"): two blocks of [conv 4×4 valid → act →
    max-pool 2], then Dense 128 → n_outputs (the LeNet of LeCun, Bottou, Bengio & Haffner 1998
    only approximately). With width 32, 3×32×32 inputs and 10 outputs it has exactly 121,802
    parameters, the count the study pins it by."""
    check_init(opts.init, "lenet")
    c_in = image_shape(input_shape, "lenet")[0]
    c = opts.width
    h, w = spatial_size(input_shape, [(4, 1, 0), (2, 2, 0)] * 2, "lenet")
    features = nn.Sequential(
        nn.Conv2d(c_in, c, 4, bias=opts.bias),
        activation(opts.activation),
        nn.MaxPool2d(2),
        nn.Conv2d(c, c, 4, bias=opts.bias),
        activation(opts.activation),
        nn.MaxPool2d(2),
    )
    head = classifier(
        c * h * w,
        (scaled(128, c, BASE_WIDTH),),
        n_outputs,
        act=opts.activation,
        dropout=opts.dropout,
        bias=opts.bias,
    )
    model = nn.Sequential(OrderedDict(features=features, flatten=nn.Flatten(), classifier=head))
    init_layers(model, opts.init, output=head[-1])
    return model

"""`alexnet` (Krizhevsky et al. 2012 as the exact-convergence study built it) and
`alexnet-small` (Zhang et al. 2017's small AlexNet, used by the γ-principle study)."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from .layers import (
    MaxPoolSame,
    activation,
    check_init,
    classifier,
    image_shape,
    init_layers,
    scaled,
    spatial_size,
)
from .registry import ModelOptions, models

ALEXNET_WIDTH = 96
ALEXNET_OPTIONS = {
    "width": ALEXNET_WIDTH,
    "activation": "relu",
    "dropout": 0.0,
    "bias": True,
    "init": "default",
}
SMALL_WIDTH = 64
SMALL_OPTIONS = {"width": SMALL_WIDTH, "activation": "relu", "dropout": 0.0, "bias": True, "init": "default"}


@models.register(
    "alexnet",
    help='AlexNet as Nacson, Srebro & Soudry 2019 ("Stochastic gradient descent on separable data") '
    "built it, for 224x224 inputs (set data.resize = 224): "
    "5 valid convs (96 11x11/4, 256 5x5, 384, 384, 256 3x3) with 3 max-pools, "
    "Dense 4096 → 4096 → outputs, no BN (21,622,154 params, 10 classes); `width` "
    "scales every layer (96 = the paper's)",
    options=ALEXNET_OPTIONS,
    channels_last=True,
)
def alexnet(opts: ModelOptions, input_shape: tuple[int, ...], n_outputs: int) -> nn.Module:
    """AlexNet (Krizhevsky, Sutskever & Hinton 2012, "ImageNet classification with deep
    convolutional neural networks") as the exact-convergence study (Nacson, Srebro & Soudry
    2019, "Stochastic gradient descent on separable data") built it for 224×224 inputs: five
    valid convs with ReLU (96 11×11 stride 4, 256 5×5, 384, 384, 256 3×3), max-pools 3×3/2
    after the first, second and fifth, then Dense 4096 → 4096 → n_outputs; no LRN, no BN.
    With width 96, 3×224×224 inputs and 10 outputs it has exactly 21,622,154 parameters, the
    count the study reports. Inputs the layers would shrink below 1×1 raise a ConfigError
    (set data.resize)."""
    check_init(opts.init, "alexnet")
    c_in = image_shape(input_shape, "alexnet")[0]
    c1, c2, c3, c4, c5 = (scaled(n, opts.width, ALEXNET_WIDTH) for n in (96, 256, 384, 384, 256))
    pool = (3, 2, 0)
    h, w = spatial_size(
        input_shape, [(11, 4, 0), pool, (5, 1, 0), pool, (3, 1, 0), (3, 1, 0), (3, 1, 0), pool], "alexnet"
    )

    def conv(a: int, b: int, kernel: int, stride: int = 1) -> list[nn.Module]:
        return [nn.Conv2d(a, b, kernel, stride, bias=opts.bias), activation(opts.activation)]

    features = nn.Sequential(
        *conv(c_in, c1, 11, 4),
        nn.MaxPool2d(3, 2),
        *conv(c1, c2, 5),
        nn.MaxPool2d(3, 2),
        *conv(c2, c3, 3),
        *conv(c3, c4, 3),
        *conv(c4, c5, 3),
        nn.MaxPool2d(3, 2),
    )
    fc = scaled(4096, opts.width, ALEXNET_WIDTH)
    head = classifier(
        c5 * h * w, (fc, fc), n_outputs, act=opts.activation, dropout=opts.dropout, bias=opts.bias
    )
    model = nn.Sequential(OrderedDict(features=features, flatten=nn.Flatten(), classifier=head))
    init_layers(model, opts.init, output=head[-1])
    return model


def tf_lrn() -> nn.LocalResponseNorm:
    """TF's local_response_normalization(depth_radius=4, bias=1, alpha=0.001/9, beta=0.75):
    torch sums over `size` = 2·4+1 channels and divides alpha by size, so alpha = 0.001."""
    return nn.LocalResponseNorm(size=9, alpha=0.001, beta=0.75, k=1.0)


@models.register(
    "alexnet-small",
    help="Zhang et al. 2017's small AlexNet (TF CIFAR-10 "
    "tutorial net): 2 × [conv 5x5 64 SAME → max-pool 3x3/2 SAME → LRN], "
    "Dense 384 → 192 → outputs (1,387,786 params on 28x28x3, 10 classes); "
    "`width` scales every layer (64 = the paper's)",
    options=SMALL_OPTIONS,
    channels_last=True,
)
def alexnet_small(opts: ModelOptions, input_shape: tuple[int, ...], n_outputs: int) -> nn.Module:
    """The small AlexNet of Zhang, Bengio, Hardt, Recht & Vinyals 2017 ("Understanding deep
    learning requires rethinking generalization", the net of TensorFlow's CIFAR-10 tutorial),
    used by the γ-principle study: two modules of [conv 5×5 SAME → act → max-pool 3×3/2 SAME
    → LRN], then Dense 384 → 192 → n_outputs. With width 64, 3×28×28 inputs and 10 outputs it
    has 1,387,786 parameters, as in that paper's Table 1."""
    check_init(opts.init, "alexnet-small")
    c_in = image_shape(input_shape, "alexnet-small")[0]
    c = opts.width
    h, w = spatial_size(input_shape, [(5, 1, 2), (3, 2, 1)] * 2, "alexnet-small")

    def module(a: int) -> list[nn.Module]:
        return [
            nn.Conv2d(a, c, 5, padding=2, bias=opts.bias),
            activation(opts.activation),
            MaxPoolSame(3, 2),
            tf_lrn(),
        ]

    features = nn.Sequential(*module(c_in), *module(c))
    hidden = (scaled(384, c, SMALL_WIDTH), scaled(192, c, SMALL_WIDTH))
    head = classifier(c * h * w, hidden, n_outputs, act=opts.activation, dropout=opts.dropout, bias=opts.bias)
    model = nn.Sequential(OrderedDict(features=features, flatten=nn.Flatten(), classifier=head))
    init_layers(model, opts.init, output=head[-1])
    return model

"""`vgg11`, `vgg16`: Simonyan & Zisserman 2015's VGG ("Very deep convolutional networks for
large-scale image recognition") for CIFAR-sized inputs (3x3 convs with padding 1, a 2x2
max-pool closing each stage), with the batch-norm switch of the γ-principle study (where a
"block" is a stage) and the dense head of the exact-convergence study."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from ..errors import ConfigError
from .layers import (
    activation,
    batch_norm_2d,
    check_init,
    classifier,
    image_shape,
    init_layers,
    scaled,
    spatial_size,
)
from .registry import ModelOptions, models

BASE_WIDTH = 64
STAGES = {
    "vgg11": ((64,), (128,), (256, 256), (512, 512), (512, 512)),
    "vgg16": ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)),
}
# Hidden widths of the dense head: "linear" is the usual CIFAR head (features → outputs),
# "fc4096" the head of Nacson, Srebro & Soudry 2019 (the ImageNet classifier with a Dense-10
# added after it).
HEADS = {"linear": (), "fc4096": (4096, 4096, 1000)}
HELP = (
    "{n} convs in 5 stages of 64 to 512 channels (`width` scales every layer, 64 = the "
    "paper's), batch_norm all / "
    "first-in-block (first conv of each stage) / none; head = linear (features → outputs) "
    "or fc4096 (Dense 4096 → 4096 → 1000 → outputs, as in the exact-convergence study{extra}); "
    "dropout in the fc4096 head"
)


def vgg(
    stages: tuple[tuple[int, ...], ...],
    opts: ModelOptions,
    input_shape: tuple[int, ...],
    n_outputs: int,
    name: str,
) -> nn.Module:
    """VGG with `stages` (conv output channels per stage, at base width 64), each conv 3×3
    padding 1 → BN (per batch_norm) → act, a 2×2 max-pool closing each stage, then the dense
    head `head` names (HEADS: its hidden widths, scaled with `width`). The five pools divide
    the input side by 32, so 32×32 inputs leave 1×1×512 features."""
    check_init(opts.init, name)
    if opts.head not in HEADS:
        raise ConfigError(f"model.head: {opts.head!r} is not one of {', '.join(HEADS)} for {name}")
    if opts.dropout > 0 and not HEADS[opts.head]:
        raise ConfigError(
            f"model.dropout: {opts.dropout} needs head = 'fc4096' (the linear head "
            f"of {name} has no hidden layer to drop)"
        )
    c = image_shape(input_shape, name)[0]
    layers: list[nn.Module] = []
    for stage in stages:
        for i, channels in enumerate(stage):
            out = scaled(channels, opts.width, BASE_WIDTH)
            bn = opts.batch_norm == "all" or (opts.batch_norm == "first-in-block" and i == 0)
            layers += [
                nn.Conv2d(c, out, 3, padding=1, bias=opts.bias),
                batch_norm_2d(out, bn),
                activation(opts.activation),
            ]
            c = out
        layers.append(nn.MaxPool2d(2))
    h, w = spatial_size(input_shape, [(2, 2, 0)] * len(stages), name)  # the convs keep sizes
    hidden = tuple(scaled(n, opts.width, BASE_WIDTH) for n in HEADS[opts.head])
    head = classifier(c * h * w, hidden, n_outputs, act=opts.activation, dropout=opts.dropout, bias=opts.bias)
    features = nn.Sequential(*(m for m in layers if not isinstance(m, nn.Identity)))
    model = nn.Sequential(OrderedDict(features=features, flatten=nn.Flatten(), classifier=head))
    init_layers(model, opts.init, output=head[-1])
    return model


def options(head: str) -> dict:
    """The registered defaults of a VGG whose default head is `head`."""
    return {
        "width": BASE_WIDTH,
        "activation": "relu",
        "batch_norm": "none",
        "dropout": 0.0,
        "bias": True,
        "init": "default",
        "head": head,
    }


@models.register(
    "vgg11",
    help="VGG-11 for CIFAR: " + HELP.format(n=8, extra=""),
    options=options("linear"),
    channels_last=True,
)
def vgg11(opts: ModelOptions, input_shape: tuple[int, ...], n_outputs: int) -> nn.Module:
    """VGG-11 (configuration A: 8 convs), by default with the linear head (see `vgg`)."""
    return vgg(STAGES["vgg11"], opts, input_shape, n_outputs, "vgg11")


@models.register(
    "vgg16",
    help="VGG-16 for CIFAR: "
    + HELP.format(n=13, extra="; the default: 37,704,258 params on 32x32x3, 10 classes"),
    options=options("fc4096"),
    channels_last=True,
)
def vgg16(opts: ModelOptions, input_shape: tuple[int, ...], n_outputs: int) -> nn.Module:
    """VGG-16 (configuration D: 13 convs), by default with the fc4096 head of the
    exact-convergence study: 37,704,258 parameters on 3×32×32 inputs with 10 outputs."""
    return vgg(STAGES["vgg16"], opts, input_shape, n_outputs, "vgg16")

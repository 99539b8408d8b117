"""`resnet18`, `resnet34`: He, Zhang, Ren & Sun 2016's ResNets ("Deep residual learning for
image recognition") in their CIFAR form (3x3 stem, no max-pool, BasicBlocks, global average
pool), with the batch-norm and skip switches of the γ-principle study (§3.2–3.3 of “An
optimization principle of deep learning?”), where a "block" is a stage of BasicBlocks sharing
a width."""

from __future__ import annotations

import torch
from torch import nn

from .layers import GlobalAvgPool, activation, batch_norm_2d, check_init, image_shape, init_layers
from .registry import ModelOptions, models

OPTIONS = {"width": 64, "activation": "relu", "batch_norm": "all", "skips": "all", "init": "default"}
KEPT_SKIPS = {"all": None, "first-in-block": 1, "first-two-in-block": 2, "none": 0}
HELP = (
    "ResNet-{n} for CIFAR: 3x3 stem, stages of {blocks} BasicBlocks with width, 2·width, "
    "4·width, 8·width channels, average pool, linear head. A block is a stage: batch_norm "
    "first-in-block keeps the stem's BN and the first BN of each stage; skips "
    "first-in-block / first-two-in-block keep the shortcuts of the first one / two "
    "BasicBlocks of each stage, none removes all (no projection replaces them)"
)


def conv(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Conv2d:
    """Bias-free conv with padding kernel // 2 (a 3×3 keeps the size at stride 1)."""
    return nn.Conv2d(c_in, c_out, kernel, stride, padding=kernel // 2, bias=False)


class Subsample(nn.Module):
    """x[..., ::s, ::s]. Followed by a 1x1 conv it is a 1x1 conv of stride s, written so to
    avoid oneDNN's channels-last kernel for that case, which corrupts memory (crash, hang or
    wrong weight gradients) on AVX2 CPUs when the input has < 8 channels (oneDNN issue 6035)."""

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Every stride-th row and column of the last two axes."""
        return x[..., :: self.stride, :: self.stride]

    def extra_repr(self) -> str:
        """The stride, for the module's repr."""
        return f"stride={self.stride}"


class BasicBlock(nn.Module):
    """act(bn(conv(act(bn(conv(x))))) + shortcut(x)); the shortcut is the identity, or a 1x1
    projection (+ BN) where the shape changes, or absent (`skip=False`: two plain convs)."""

    def __init__(
        self, c_in: int, c_out: int, stride: int, *, bn: tuple[bool, bool, bool], skip: bool, act: str
    ):
        super().__init__()
        self.conv1, self.bn1 = conv(c_in, c_out, 3, stride), batch_norm_2d(c_out, bn[0])
        self.conv2, self.bn2 = conv(c_out, c_out, 3), batch_norm_2d(c_out, bn[1])
        self.act1, self.act2 = activation(act), activation(act)
        self.shortcut: nn.Module | None = None
        if skip:
            projected = stride != 1 or c_in != c_out
            self.shortcut = nn.Identity()
            if projected:
                self.shortcut = nn.Sequential(
                    Subsample(stride), conv(c_in, c_out, 1), batch_norm_2d(c_out, bn[2])
                )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """act(bn2(conv2(act(bn1(conv1(x))))) + shortcut(x)), the sum without the shortcut."""
        out = self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return self.act2(out)


def resnet(
    blocks: tuple[int, ...], opts: ModelOptions, input_shape: tuple[int, ...], n_outputs: int, name: str
) -> nn.Module:
    """A CIFAR ResNet whose stage i has blocks[i] BasicBlocks of width·2^i channels (stride 2
    at the first block of every stage after the first), then global average pool and a linear
    head. batch_norm: all, first-in-block (the stem's BN and the first BN of each stage's first
    block only) or none; skips: all, first-in-block / first-two-in-block (the shortcuts of the
    first one / two blocks of each stage) or none."""
    check_init(opts.init, name)
    c_in = image_shape(input_shape, name)[0]
    w, act, kept = opts.width, opts.activation, KEPT_SKIPS[opts.skips]
    all_bn, first_bn = opts.batch_norm == "all", opts.batch_norm == "first-in-block"
    layers: list[nn.Module] = [conv(c_in, w, 3), batch_norm_2d(w, all_bn or first_bn), activation(act)]
    c = w
    for stage, n_blocks in enumerate(blocks):
        c_out = w * 2**stage
        for i in range(n_blocks):
            bn = (all_bn or (first_bn and i == 0), all_bn, all_bn)
            skip = kept is None or i < kept
            layers.append(BasicBlock(c, c_out, 2 if stage > 0 and i == 0 else 1, bn=bn, skip=skip, act=act))
            c = c_out
    head = nn.Linear(c, n_outputs)
    model = nn.Sequential(*layers, GlobalAvgPool(), nn.Flatten(), head)
    init_layers(model, opts.init, output=head)
    return model


@models.register("resnet18", help=HELP.format(n=18, blocks="2,2,2,2"), options=OPTIONS, channels_last=True)
def resnet18(opts: ModelOptions, input_shape: tuple[int, ...], n_outputs: int) -> nn.Module:
    """ResNet-18 for CIFAR: stages of 2, 2, 2, 2 BasicBlocks (see `resnet`)."""
    return resnet((2, 2, 2, 2), opts, input_shape, n_outputs, "resnet18")


@models.register("resnet34", help=HELP.format(n=34, blocks="3,4,6,3"), options=OPTIONS, channels_last=True)
def resnet34(opts: ModelOptions, input_shape: tuple[int, ...], n_outputs: int) -> nn.Module:
    """ResNet-34 for CIFAR: stages of 3, 4, 6, 3 BasicBlocks (see `resnet`)."""
    return resnet((3, 4, 6, 3), opts, input_shape, n_outputs, "resnet34")

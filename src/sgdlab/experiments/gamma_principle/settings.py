"""What `gamma-principle` trains at each scale: four ablations, each a set of runs that differ in
one training technique, trained until the premise's loss threshold (`train.stop_loss`) with an
epoch cap.

The principle is stated for θ* a global minimizer ("we train the network for a sufficient number
of epochs to achieve an approximate global minimum", then θ* = the last iterate), so every scale
names a `Premise`: final training loss ≤ `max_loss` and training error 0. Its loss threshold is
also each run's stop rule, so a run stops where the premise is first met, and the epoch cap
bounds the runs that never get there.

smoke  seconds, digits: tiny nets and a threshold of 0.1 that some runs reach within their cap
       (ReLU-type and tanh MLPs, Adam) and others miss (sigmoid, SGD, the 3-epoch ResNets), so
       the test suite exercises both sides of the premise
cpu    minutes on 2 cores: narrow versions of the paper's nets on 256 CIFAR-10 images (64 with
       batch 16 for the two VGG ablations, whose slow runs need many cheap steps) or 512
       digits, threshold 0.01 (0.4 % of the starting ln 10 ≈ 2.30; at this level every
       training point is classified right); each ablation also trains one variant at a
       second seed, the baseline for telling speeds apart
full   the paper's settings on CIFAR-10 (and on CIFAR-100 too when the user supplied it), for a
       GPU; threshold 1e-3
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..premise import Premise

ACTIVATIONS = ("relu", "leaky-relu", "tanh", "sigmoid")
BATCH_NORMS = ("all", "first-in-block", "none")
OPTIMIZERS: dict[str, dict[str, Any]] = {
    "sgd": {"name": "sgd"},
    "momentum": {"name": "momentum", "momentum": 0.5},
    "adam": {"name": "adam", "eps": 1e-2},
}
# ResNets without any BN layer stop learning after ~25 epochs in the paper ("vanishing gradient
# occurs after around 25 epochs in the trainings of resnets without any BN layer"): the one run
# the paper itself does not report as converging.
SPREAD_SEED = 1  # the second seed of the seed-to-seed baseline of speed
NO_BN_EXCEPTION = (
    "the paper reports that ResNets without any BN layer stop learning after "
    "about 25 epochs (vanishing gradients)"
)


@dataclass(frozen=True)
class Group:
    """How one ablation's runs are trained at one scale: `model(label)` is the model config of
    a variant, the rest is shared; `spread_variant` is the variant trained again with another
    seed to measure how much speed varies with the seed alone."""

    model: Callable[[str], dict[str, Any]]
    data: dict[str, Any]
    lr: float
    max_epochs: int
    variants: tuple[str, ...]
    spread_variant: str | None = None  # trained again at SPREAD_SEED: the seed-to-seed spread of speed
    why_not_paper: str = ""  # where this scale leaves the paper's settings, and why
    batch_size: int | None = None  # None: the scale's batch size
    iterates: str = "epoch"  # when the PCA view's runs save θ_k


@dataclass(frozen=True)
class ScaleSettings:
    """One scale of `gamma-principle`: the premise, the batch size and each ablation's `Group`."""

    premise: Premise
    batch_size: int
    activation: Group
    batch_norm: Group
    skips: Group
    optimizer: Group


def _smoke() -> ScaleSettings:
    digits = {"name": "digits", "n_train": 128, "n_test": 0}
    conv = {"name": "resnet18", "width": 2}
    return ScaleSettings(
        Premise(max_loss=0.1),
        16,
        Group(
            lambda a: {"name": "mlp", "widths": [32], "activation": a}, digits, 0.1, 40, ACTIVATIONS, "relu"
        ),
        Group(lambda v: dict(conv, batch_norm=v), digits, 0.05, 3, BATCH_NORMS, "all"),
        Group(lambda v: dict(conv, skips=v), digits, 0.05, 3, ("all", "first-in-block"), "all"),
        Group(lambda o: {"name": "mlp", "widths": [32]}, digits, 0.01, 30, tuple(OPTIMIZERS), "adam"),
    )


SMALL_STEPS = (
    "64 images and batch 16 (4 steps per epoch, a quarter of the cost of the other ablations' batch-64 step)"
)
VGG_NO_BN_INIT = (
    f"VGG-11 as in the paper's VGG runs, η = 0.01, on {SMALL_STEPS}, within the 15-minute budget "
    "(on 256 images with batch 64 the same three runs took none 147, all 290, first-in-block 329 "
    "epochs: the same order). He init (N(0, 2/fan_in), torchvision's VGG initialization) for all "
    "three variants: under PyTorch's default init the narrow VGG-11 without BN sits on its initial "
    "plateau (training loss 2.31 → 2.25 in 2,400 steps, training error 83 %), while the paper's VGG "
    "runs without BN do train"
)
OPTIMIZER_STEPS = (
    f"the paper's η = 0.001 on {SMALL_STEPS}: plain SGD needs ~3,100 steps to reach the level, which "
    "256 images with batch 64 could not afford within the 15-minute budget (SGD there: loss 0.083 "
    "after 1,200 steps)"
)


def _cpu() -> ScaleSettings:
    """Measured with the threshold 0.01 (epochs to reach it): MLP relu/leaky-relu 169, tanh 240,
    sigmoid 1806; ResNet-34 width 4 skips all 64, first-two 188, first-in-block 260; VGG-11 width
    8 with 64 images and batch 16: BN (He init, η = 0.01) none 64, all 157, first-in-block 197;
    optimizers (BN, η = 0.001) Adam 38, momentum 393, SGD 778. The paper's ResNets without BN
    stop learning, so the BN ablation uses its VGG-11, whose no-BN runs train. Runs are
    deterministic on the CPU, so the epoch caps sit 15–30 % above the slowest variant's count:
    the other-seed runs get that margin, and `--plan`, which counts every run at its cap, stays
    an upper bound not far above the real time."""
    cifar = {"name": "cifar10", "n_train": 256, "n_test": 0}
    few = {"name": "cifar10", "n_train": 64, "n_test": 0}
    digits = {"name": "digits", "n_train": 512, "n_test": 0}
    return ScaleSettings(
        Premise(max_loss=0.01),
        64,
        Group(
            lambda a: {"name": "mlp", "widths": [128, 128], "activation": a},
            digits,
            0.05,
            2200,
            ACTIVATIONS,
            "relu",
        ),
        Group(
            lambda v: {"name": "vgg11", "width": 8, "batch_norm": v, "init": "he"},
            few,
            0.01,
            250,
            BATCH_NORMS,
            "none",
            VGG_NO_BN_INIT,
            batch_size=16,
        ),
        Group(
            lambda v: {"name": "resnet34", "width": 4, "skips": v},
            cifar,
            0.05,
            300,
            ("all", "first-two-in-block", "first-in-block"),
            "all",
        ),
        Group(
            lambda o: {"name": "vgg11", "width": 8, "batch_norm": "all"},
            few,
            0.001,
            950,
            tuple(OPTIMIZERS),
            "adam",
            OPTIMIZER_STEPS,
            batch_size=16,
            iterates="epoch:4",  # ~100 iterates of the 393-epoch momentum path, ~10 of Adam's
        ),
    )


def _full() -> ScaleSettings:
    cifar = {"name": "cifar10"}
    return ScaleSettings(
        Premise(max_loss=1e-3),
        128,
        Group(lambda a: {"name": "resnet18", "activation": a}, cifar, 0.05, 150, ACTIVATIONS, "relu"),
        Group(lambda v: {"name": "resnet18", "batch_norm": v}, cifar, 0.05, 150, BATCH_NORMS, "all"),
        Group(
            lambda v: {"name": "resnet34", "skips": v},
            cifar,
            0.05,
            150,
            ("all", "first-two-in-block", "first-in-block"),
            "all",
        ),
        Group(lambda o: {"name": "resnet18"}, cifar, 0.001, 150, tuple(OPTIMIZERS), "adam"),
    )


SCALE_SETTINGS: dict[str, ScaleSettings] = {"smoke": _smoke(), "cpu": _cpu(), "full": _full()}

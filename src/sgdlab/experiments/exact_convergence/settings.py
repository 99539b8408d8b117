"""What `exact-convergence` runs at each scale: the linear study and the CNN study.

smoke  seconds: 10^5 steps of the linear study, LeNet and a width-8 ResNet-18 on 64 CIFAR-10
       images (used by tests)
cpu    minutes on 2 cores: 10^6 linear steps; LeNet and a small VGG-11 (no BN, no skips), and
       for contrast a width-8 ResNet-18 (with skips), on a CIFAR-10 subset
full   the text's networks (base/LeNet-like 1000 epochs, AlexNet at 224×224 100 epochs,
       VGG-16 with its 4096-4096-1000-10 head 100 epochs — the text gives no epoch count for
       VGG-16; 100 is assumed) and ResNet-18 (width 64, 100 epochs, assumed) on all of
       CIFAR-10, meant for a GPU

Assumed where the text is silent: batch size 32 (the Keras default, the text used Keras),
reshuffled epochs, no dropout, PyTorch's default initialization for the base model and He
initialization for the deeper nets without BN (VGG, AlexNet): under PyTorch's default
(variance 1/(3·fan_in)) a VGG-11 without BN sat at loss 2.27 after 600 steps at lr 0.01, while
He init (2/fan_in, near Keras' Glorot default for equal fan-in/out) trains it at once.

The ResNet-18 with skips is the network of the run the text asks about (Soudry et al. 2018,
after He et al. 2016): the zoo's CIFAR ResNet-18 with its batch norm, trained with the same
recipe (plain SGD at lr 0.01, batch 32, same data). It differs from the nets without skips in
batch norm as well as skips; without batch norm a width-8 ResNet-18 under He init starts at
loss 15 and was still at 1.7 (error 0.63) after 42 epochs at cpu scale, where the one with batch
norm was at 0 training error from epoch 55 (measured; not a network anyone trains).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The paper's optimizer: plain SGD, constant step 0.01, no momentum, averaging or schedule.
LR = 0.01


@dataclass(frozen=True)
class LinearSettings:
    """Logistic regression on two separable sets of `n` points in `dim` dimensions (d > n: the
    over-parameterized regime), GD and SGD (batch `sgd_batch`, `sgd_seeds` seeds) with every
    fixed step of `lrs`. Inputs are scaled into the unit ball, so each per-sample loss is
    (1/4)-smooth and every lr < 8 is stable for both GD and SGD (Nacson et al.: η < 2/β)."""

    steps: int
    lrs: tuple[float, ...]
    sgd_seeds: int
    sgd_batch: int = 1
    n: int = 20
    dim: int = 50
    # The constructed set puts its non-support points ≥ 1 + margin beyond the margin: a wide
    # gap keeps their transient (∝ t^(−margin)) short. The random set keeps its default.
    datasets: tuple[tuple[str, dict[str, Any]], ...] = (
        ("separable", {"margin": 2.0}),
        ("separable-random", {}),
    )
    data_seed: int = 0
    per_decade: int = 10  # recorded steps per decade
    window: int = 2  # the claims read the last `window` decades


@dataclass(frozen=True)
class CnnModel:
    """One network of the CNN study: `key` names it in files and claims; `depth` counts its
    weight layers on the longest path (ResNet-18: 18); `skips` marks the residual network the
    nets without skips are contrasted with."""

    key: str
    title: str
    model: dict[str, Any]
    epochs: int
    depth: int
    skips: bool = False
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CnnSettings:
    """The CNN study: its networks, the CIFAR-10 subset sizes, and the batch size and threads
    per run."""

    models: tuple[CnnModel, ...]
    n_train: int | None  # None: all 50,000
    n_test: int | None  # None: all 10,000
    batch_size: int = 32
    threads: int = 1
    # A resumable state every this many steps (0: only the run's default, every 300 s): the
    # smoke run is seconds long, and a killed smoke reproduction resumes it (tests/test_exact_convergence).
    checkpoint_steps: int = 0

    @property
    def resnet(self) -> CnnModel | None:
        """The network with skip connections (None: the scale trains none)."""
        return next((m for m in self.models if m.skips), None)

    @property
    def plain(self) -> tuple[CnnModel, ...]:
        """The networks without skip connections."""
        return tuple(m for m in self.models if not m.skips)


@dataclass(frozen=True)
class Settings:
    """One scale of `exact-convergence`: the linear study and the CNN study."""

    linear: LinearSettings
    cnn: CnnSettings


BASE = {"name": "lenet"}
SMALL_VGG = {"name": "vgg11", "width": 8, "batch_norm": "none", "head": "linear", "init": "he"}


def resnet(width: int) -> dict[str, Any]:
    """ResNet-18 at channel width `width` (64: He et al.'s), as the zoo builds it: the CIFAR
    form with batch norm and every skip connection, the network of Soudry et al.'s run."""
    return {"name": "resnet18", "width": width}


SCALE_SETTINGS = {
    "smoke": Settings(
        LinearSettings(steps=10**5, lrs=(4.0,), sgd_seeds=4),
        CnnSettings(
            (
                CnnModel("base", "base (LeNet-like)", BASE, epochs=240, depth=4),
                CnnModel("resnet", "ResNet-18 (width 8)", resnet(8), epochs=80, depth=18, skips=True),
            ),
            n_train=64,
            n_test=64,
            checkpoint_steps=100,
        ),
    ),
    "cpu": Settings(
        LinearSettings(steps=10**6, lrs=(1.0, 4.0), sgd_seeds=16),
        CnnSettings(
            (
                CnnModel("base", "base (LeNet-like)", BASE, epochs=200, depth=4),
                CnnModel("vgg-small", "VGG-11 (width 8, no BN)", SMALL_VGG, epochs=150, depth=9),
                CnnModel("resnet", "ResNet-18 (width 8)", resnet(8), epochs=150, depth=18, skips=True),
            ),
            n_train=500,
            n_test=500,
        ),
    ),
    "full": Settings(
        LinearSettings(steps=10**7, lrs=(1.0, 2.0, 4.0), sgd_seeds=32),
        CnnSettings(
            (
                CnnModel("base", "base (LeNet-like)", BASE, epochs=1000, depth=4),
                CnnModel(
                    "alexnet",
                    "AlexNet",
                    {"name": "alexnet", "init": "he"},
                    epochs=100,
                    depth=8,
                    data={"resize": 224},
                ),
                CnnModel("vgg16", "VGG-16", {"name": "vgg16", "init": "he"}, epochs=100, depth=17),
                CnnModel("resnet", "ResNet-18", resnet(64), epochs=100, depth=18, skips=True),
            ),
            n_train=None,
            n_test=None,
        ),
    ),
}

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
cpu    minutes on 2 cores: narrow versions of the paper's nets on 256 CIFAR-10 images or 512
       digits, threshold 0.01 (0.4 % of the starting ln 10 ≈ 2.30; every run the paper reports
       as converging reaches it; at this level every training point is classified right)
full   the paper's settings on CIFAR-10 (and on CIFAR-100 too when the user supplied it), for a
       GPU; threshold 1e-3
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable

from ...build import resolve
from ...config import load_config
from ...data.cifar100 import locate_cifar100
from ...errors import UserError
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
NO_BN_EXCEPTION = (
    "the paper reports that ResNets without any BN layer stop learning after "
    "about 25 epochs (vanishing gradients)"
)


@dataclass(frozen=True)
class Ablation:
    """One ablation: runs that differ in one training technique (label → run config), the
    paper's speed ranking as tiers (fastest first) and its statement, and the variants the
    paper itself reports as not converging (left out of the premise check)."""

    id: str
    title: str
    variants: dict[str, dict[str, Any]]  # label → run config
    paper_tiers: tuple[tuple[str, ...], ...]  # the paper's speed order, fastest tier first
    paper_statement: str
    exceptions: dict[str, str]  # label → what the paper reports for a run that need not converge


@dataclass(frozen=True)
class Group:
    """How one ablation's runs are trained at one scale: `model(label)` is the model config of
    a variant, the rest is shared."""

    model: Callable[[str], dict[str, Any]]
    data: dict[str, Any]
    lr: float
    max_epochs: int
    variants: tuple[str, ...]


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
        Group(lambda a: {"name": "mlp", "widths": [32], "activation": a}, digits, 0.1, 60, ACTIVATIONS),
        Group(lambda v: dict(conv, batch_norm=v), digits, 0.05, 3, BATCH_NORMS),
        Group(lambda v: dict(conv, skips=v), digits, 0.05, 3, ("all", "first-in-block")),
        Group(lambda o: {"name": "mlp", "widths": [32]}, digits, 0.01, 30, tuple(OPTIMIZERS)),
    )


def _cpu() -> ScaleSettings:
    """Measured with the threshold 0.01 (epochs to reach it): MLP relu/leaky-relu 169, tanh 240,
    sigmoid 1806; ResNet-18 width 8 BN all 48, first-in-block 93, none not within 150; ResNet-34
    width 4 skips all 64, first-two 188; VGG-11 width 8 at lr 0.01 Adam 33, momentum 67, SGD 135.
    The paper's lr 0.001 for the optimizer ablation does not train the narrow VGG-11 there (SGD
    ends at loss 0.083 after 300 epochs), so all three optimizers share lr 0.01."""
    cifar = {"name": "cifar10", "n_train": 256, "n_test": 0}
    digits = {"name": "digits", "n_train": 512, "n_test": 0}
    return ScaleSettings(
        Premise(max_loss=0.01),
        64,
        Group(
            lambda a: {"name": "mlp", "widths": [128, 128], "activation": a}, digits, 0.05, 3000, ACTIVATIONS
        ),
        Group(lambda v: {"name": "resnet18", "width": 8, "batch_norm": v}, cifar, 0.05, 120, BATCH_NORMS),
        Group(
            lambda v: {"name": "resnet34", "width": 4, "skips": v},
            cifar,
            0.05,
            300,
            ("all", "first-two-in-block", "first-in-block"),
        ),
        Group(
            lambda o: {"name": "vgg11", "width": 8, "batch_norm": "all"}, cifar, 0.01, 200, tuple(OPTIMIZERS)
        ),
    )


def _full() -> ScaleSettings:
    cifar = {"name": "cifar10"}
    return ScaleSettings(
        Premise(max_loss=1e-3),
        128,
        Group(lambda a: {"name": "resnet18", "activation": a}, cifar, 0.05, 150, ACTIVATIONS),
        Group(lambda v: {"name": "resnet18", "batch_norm": v}, cifar, 0.05, 150, BATCH_NORMS),
        Group(
            lambda v: {"name": "resnet34", "skips": v},
            cifar,
            0.05,
            150,
            ("all", "first-two-in-block", "first-in-block"),
        ),
        Group(lambda o: {"name": "resnet18"}, cifar, 0.001, 150, tuple(OPTIMIZERS)),
    )


SCALES: dict[str, Callable[[], ScaleSettings]] = {"smoke": _smoke, "cpu": _cpu, "full": _full}


def settings(scale: str) -> ScaleSettings:
    """The `ScaleSettings` of `scale` (smoke, cpu or full)."""
    return SCALES[scale]()


def run_config(
    s: ScaleSettings, g: Group, model: dict[str, Any], optim: dict[str, Any], iterates: bool = False
) -> dict[str, Any]:
    """The run config of one variant: seed 0, `g`'s data and lr, SGD-type optimizer
    `optim`, at most `g.max_epochs` epochs stopping at the premise's loss threshold, and the
    `eval`, `batch_loss` and `gamma` probes; `iterates` also saves θ each epoch (for the PCA
    view)."""
    cfg = {
        "seed": 0,
        "data": dict(g.data),
        "model": model,
        "optim": {"lr": g.lr, **optim},
        "train": {"batch_size": s.batch_size, "epochs": g.max_epochs, "stop_loss": s.premise.max_loss},
        "probes": {"use": ["eval", "batch_loss", "gamma"]},
    }
    if iterates:
        cfg["checkpoint"] = {"iterates": "epoch"}
    return cfg


def _tiers_present(tiers, labels) -> tuple[tuple[str, ...], ...]:
    return tuple(t for t in (tuple(x for x in tier if x in labels) for tier in tiers) if t)


def base_ablations(scale: str) -> list[Ablation]:
    """The four ablations at `scale`, on CIFAR-10 (and digits at the small scales)."""
    s = settings(scale)
    sgd = {"name": "sgd"}
    act, bn, sk, op = s.activation, s.batch_norm, s.skips, s.optimizer
    return [
        Ablation(
            "activation",
            "activation function",
            {a: run_config(s, act, act.model(a), sgd) for a in act.variants},
            (("relu", "leaky-relu"), ("tanh",), ("sigmoid",)),
            "ReLU-type activations train faster than tanh, which trains faster than sigmoid",
            {},
        ),
        Ablation(
            "batch-norm",
            "batch normalization",
            {v: run_config(s, bn, bn.model(v), sgd) for v in bn.variants},
            (("all", "first-in-block"), ("none",)),
            "keeping all BN layers or the first of each block trains faster than none",
            {"none": NO_BN_EXCEPTION} if bn.model("none")["name"].startswith("resnet") else {},
        ),
        Ablation(
            "skips",
            "skip connections",
            {v: run_config(s, sk, sk.model(v), sgd) for v in sk.variants},
            _tiers_present((("all",), ("first-two-in-block",), ("first-in-block",)), sk.variants),
            "more skip connections per block train faster",
            {},
        ),
        Ablation(
            "optimizer",
            "optimizer",
            {o: run_config(s, op, op.model(o), OPTIMIZERS[o], iterates=o != "sgd") for o in op.variants},
            (("adam",), ("momentum",), ("sgd",)),
            "Adam trains faster than SGD with momentum, which trains faster than SGD",
            {},
        ),
    ]


def ablations(scale: str) -> list[Ablation]:
    """The runs of each ablation at `scale`; at `full`, repeated on CIFAR-100 when supplied."""
    plan = base_ablations(scale)
    if scale == "full" and cifar100_supplied():
        plan += [on_cifar100(ab) for ab in plan]
    return plan


def cifar100_supplied() -> bool:
    """Whether CIFAR-100 can be found (in SGDLAB_DATA_ROOT or the cache dir)."""
    try:
        locate_cifar100(resolve(load_config(raw={"data": {"name": "cifar100"}})).data)
    except UserError:
        return False
    return True


def on_cifar100(ab: Ablation) -> Ablation:
    """The same ablation with every run on CIFAR-100."""
    return replace(
        ab,
        id=f"{ab.id}-cifar100",
        title=f"{ab.title} (CIFAR-100)",
        variants={
            label: dict(cfg, data={**cfg["data"], "name": "cifar100"}) for label, cfg in ab.variants.items()
        },
    )

"""The run configs of `gamma-principle`: each ablation (`Ablation`) is a set of runs that differ in
one training technique, with the paper's speed ranking and one variant trained again at another
seed; at `full` the ablations are repeated on CIFAR-100 when it is supplied."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from ...build import resolve
from ...config import load_config
from ...data.cifar100 import locate_cifar100
from ...errors import UserError
from .settings import NO_BN_EXCEPTION, OPTIMIZERS, SCALE_SETTINGS, SPREAD_SEED, Group, ScaleSettings


@dataclass(frozen=True)
class Ablation:
    """One ablation: runs that differ in one training technique (label → run config), the
    paper's speed ranking as tiers (fastest first) and its statement, the variants the paper
    itself reports as not converging (left out of the premise check), and the seed-to-seed
    baseline of speed: `spread` (label → config) is one variant trained again with another seed
    (first pass only), `why_not_paper` what the scale changes from the paper's settings and why."""

    id: str
    title: str
    variants: dict[str, dict[str, Any]]  # label → run config
    paper_tiers: tuple[tuple[str, ...], ...]  # the paper's speed order, fastest tier first
    paper_statement: str
    exceptions: dict[str, str]  # label → what the paper reports for a run that need not converge
    spread: dict[str, dict[str, Any]] = field(default_factory=dict)  # variant label → its other-seed config
    why_not_paper: str = ""

    def spread_name(self, label: str) -> str:
        """The run name of `label`'s other-seed run."""
        return f"{self.id}-seed{SPREAD_SEED}-{label}"


def run_config(
    s: ScaleSettings,
    g: Group,
    model: dict[str, Any],
    optim: dict[str, Any],
    iterates: bool = False,
    seed: int = 0,
) -> dict[str, Any]:
    """The run config of one variant: `seed` (0: one initialization per comparison, as in the
    paper), `g`'s data and lr, SGD-type optimizer `optim`, at most `g.max_epochs` epochs stopping
    at the premise's loss threshold, and the `eval`, `batch_loss` and `gamma` probes (no `gamma`
    at another seed: that run only measures speed); `iterates` also saves θ on `g.iterates`'s
    schedule (for the PCA view)."""
    cfg = {
        "seed": seed,
        "data": dict(g.data),
        "model": model,
        "optim": {"lr": g.lr, **optim},
        "train": {
            "batch_size": g.batch_size or s.batch_size,
            "epochs": g.max_epochs,
            "stop_loss": s.premise.max_loss,
        },
        "probes": {"use": ["eval", "batch_loss"] + (["gamma"] if seed == 0 else [])},
    }
    if iterates:
        cfg["checkpoint"] = {"iterates": g.iterates}
    return cfg


def present_tiers(tiers: tuple[tuple[str, ...], ...], labels) -> tuple[tuple[str, ...], ...]:
    """`tiers` restricted to `labels`, empty tiers dropped."""
    return tuple(t for t in (tuple(x for x in tier if x in labels) for tier in tiers) if t)


def _spread(s: ScaleSettings, g: Group, optim: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The other-seed run of `g.spread_variant` (none when the group names none)."""
    v = g.spread_variant
    return {} if v is None else {v: run_config(s, g, g.model(v), optim[v], seed=SPREAD_SEED)}


def base_ablations(scale: str) -> list[Ablation]:
    """The four ablations at `scale`, on CIFAR-10 (and digits at the small scales)."""
    s = SCALE_SETTINGS[scale]
    act, bn, sk, op = s.activation, s.batch_norm, s.skips, s.optimizer
    sgd = {v: {"name": "sgd"} for g in (act, bn, sk) for v in g.variants}
    return [
        Ablation(
            "activation",
            "activation function",
            {a: run_config(s, act, act.model(a), sgd[a]) for a in act.variants},
            (("relu", "leaky-relu"), ("tanh",), ("sigmoid",)),
            "ReLU-type activations train faster than tanh, which trains faster than sigmoid",
            {},
            _spread(s, act, sgd),
            act.why_not_paper,
        ),
        Ablation(
            "batch-norm",
            "batch normalization",
            {v: run_config(s, bn, bn.model(v), sgd[v]) for v in bn.variants},
            (("all", "first-in-block"), ("none",)),
            "keeping all BN layers or the first of each block trains faster than none",
            {"none": NO_BN_EXCEPTION} if bn.model("none")["name"].startswith("resnet") else {},
            _spread(s, bn, sgd),
            bn.why_not_paper,
        ),
        Ablation(
            "skips",
            "skip connections",
            {v: run_config(s, sk, sk.model(v), sgd[v]) for v in sk.variants},
            present_tiers((("all",), ("first-two-in-block",), ("first-in-block",)), sk.variants),
            "more skip connections per block train faster",
            {},
            _spread(s, sk, sgd),
            sk.why_not_paper,
        ),
        Ablation(
            "optimizer",
            "optimizer",
            {o: run_config(s, op, op.model(o), OPTIMIZERS[o], iterates=o != "sgd") for o in op.variants},
            (("adam",), ("momentum",), ("sgd",)),
            "Adam trains faster than SGD with momentum, which trains faster than SGD",
            {},
            _spread(s, op, OPTIMIZERS),
            op.why_not_paper,
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


def run_configs(plan: list[Ablation]) -> dict[str, dict[str, Any]]:
    """Every run of the ablations in `plan`, named <ablation>-<variant>, and their other-seed
    runs, named <ablation>-seed<k>-<variant>."""
    configs = {f"{ab.id}-{label}": cfg for ab in plan for label, cfg in ab.variants.items()}
    return configs | {ab.spread_name(label): cfg for ab in plan for label, cfg in ab.spread.items()}

"""Reproduction of "An optimization principle of deep learning?" (anonymous ICLR 2020 submission):
DNN trainings obey the γ-optimization principle (γ_k > 0 along the path), the distance to
θ* shrinks monotonically, and training techniques that speed training up come with a larger γ.

Four ablations, each a set of runs that differ in one technique: activation, batch norm, skip
connections, optimizer. Every run records γ_k by deterministic replay (the `gamma` probe) and
the training loss per epoch. Claims per ablation: the principle holds (γ > 0 on ≥ 95% of the
defined steps) in every run; the distance is non-increasing; the Theorem 1.3 rate bound holds
on the prefix where the principle holds; larger median γ ⇔ faster training (rank agreement);
and the paper's ordering of training speed. The orderings are measured, never assumed.
Plus the PCA view of the momentum and Adam paths (Li et al. 2018) with SGD update directions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ...build import resolve
from ...config import load_config
from ...data.cifar100 import locate_cifar100
from ...errors import UserError
from ...probes.gamma import theorem_checks
from ...store import Run
from ...papers import GAMMA_2019
from ..base import Claim, Lab, Plan, decide, experiments
from ...report.gamma import gamma_figure
from . import pca

POSITIVE_FRACTION = 0.95  # "the principle holds": γ > 0 on at least this share of defined steps
DIST_TOL = 1e-6           # increases of the normalized distance below this are rounding


@dataclass(frozen=True)
class Ablation:
    id: str
    title: str
    variants: dict[str, dict[str, Any]]  # label → run config
    paper_tiers: tuple[tuple[str, ...], ...]  # the paper's speed order, fastest tier first
    paper_statement: str


def _run(data: dict, model: dict, optim: dict, epochs: int, batch: int, iterates: bool = False) -> dict:
    cfg = {"seed": 0, "data": data, "model": model, "optim": optim,
           "train": {"batch_size": batch, "epochs": epochs},
           "probes": {"use": ["eval", "batch_loss", "gamma"]}}
    if iterates:
        cfg["checkpoint"] = {"iterates": "epoch"}
    return cfg


def _tiers_present(tiers, labels) -> tuple[tuple[str, ...], ...]:
    return tuple(t for t in (tuple(x for x in tier if x in labels) for tier in tiers) if t)


def ablations(scale: str) -> list[Ablation]:
    """The runs of each ablation at `scale` (smoke: seconds; cpu: ~6 min on 2 cores; full: the
    paper's settings on CIFAR-10, and on CIFAR-100 too when the user supplied it, for a GPU)."""
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
    return replace(ab, id=f"{ab.id}-cifar100", title=f"{ab.title} (CIFAR-100)",
                   variants={label: dict(cfg, data={**cfg["data"], "name": "cifar100"})
                             for label, cfg in ab.variants.items()})


def base_ablations(scale: str) -> list[Ablation]:
    """The four ablations at `scale`, on CIFAR-10 (and digits at the small scales)."""
    if scale == "smoke":
        data = {"name": "digits", "n_train": 128, "n_test": 0}
        conv = {"name": "resnet18", "width": 2}
        e, b, sgd = 3, 16, {"name": "sgd", "lr": 0.05}
        act_model = lambda a: {"name": "mlp", "widths": [32], "activation": a}  # noqa: E731
        bn_model = lambda v: dict(conv, batch_norm=v)  # noqa: E731
        skip_model, skip_variants = lambda v: dict(conv, skips=v), ("all", "first-in-block")  # noqa: E731
        opt_model, opt_lr = {"name": "mlp", "widths": [32]}, 0.01
        act_data = bn_data = skip_data = opt_data = data
        e_act = e_bn = e_skip = e_opt = e
    elif scale == "cpu":
        # Narrow versions of the paper's nets on 256 CIFAR-10 images, long enough for the
        # training loss to fall well below its start (the principle concerns paths to a minimum).
        cifar = {"name": "cifar10", "n_train": 256, "n_test": 0}
        digits = {"name": "digits", "n_train": 512, "n_test": 0}
        b, sgd = 64, {"name": "sgd", "lr": 0.05}
        act_model = lambda a: {"name": "mlp", "widths": [128, 128], "activation": a}  # noqa: E731
        act_data, e_act = digits, 60
        bn_model = lambda v: {"name": "resnet18", "width": 8, "batch_norm": v}  # noqa: E731
        bn_data, e_bn = cifar, 40
        skip_model = lambda v: {"name": "resnet34", "width": 4, "skips": v}  # noqa: E731
        skip_variants, skip_data, e_skip = ("all", "first-two-in-block", "first-in-block"), cifar, 40
        opt_model, opt_lr, opt_data, e_opt = {"name": "vgg11", "width": 8, "batch_norm": "all"}, 0.001, cifar, 40
    elif scale == "full":
        cifar = {"name": "cifar10"}
        b, sgd = 128, {"name": "sgd", "lr": 0.05}
        act_model = lambda a: {"name": "resnet18", "activation": a}  # noqa: E731
        act_data, e_act = cifar, 150
        bn_model = lambda v: {"name": "resnet18", "batch_norm": v}  # noqa: E731
        bn_data, e_bn = cifar, 150
        skip_model = lambda v: {"name": "resnet34", "skips": v}  # noqa: E731
        skip_variants, skip_data, e_skip = ("all", "first-two-in-block", "first-in-block"), cifar, 150
        opt_model, opt_lr, opt_data, e_opt = {"name": "resnet18"}, 0.001, cifar, 150
    else:
        raise ValueError(scale)

    optimizers = {"sgd": {"name": "sgd", "lr": opt_lr},
                  "momentum": {"name": "momentum", "lr": opt_lr, "momentum": 0.5},
                  "adam": {"name": "adam", "lr": opt_lr, "eps": 1e-2}}
    return [
        Ablation("activation", "activation function",
                 {a: _run(act_data, act_model(a), sgd, e_act, b)
                  for a in ("relu", "leaky-relu", "tanh", "sigmoid")},
                 (("relu", "leaky-relu"), ("tanh",), ("sigmoid",)),
                 "ReLU-type activations train faster than tanh, which trains faster than sigmoid"),
        Ablation("batch-norm", "batch normalization",
                 {v: _run(bn_data, bn_model(v), sgd, e_bn, b) for v in ("all", "first-in-block", "none")},
                 (("all", "first-in-block"), ("none",)),
                 "keeping all BN layers or the first of each block trains faster than none"),
        Ablation("skips", "skip connections",
                 {v: _run(skip_data, skip_model(v), sgd, e_skip, b) for v in skip_variants},
                 _tiers_present((("all",), ("first-two-in-block",), ("first-in-block",)), skip_variants),
                 "more skip connections per block train faster"),
        Ablation("optimizer", "optimizer",
                 {name: _run(opt_data, opt_model, o, e_opt, b, iterates=name != "sgd")
                  for name, o in optimizers.items()},
                 (("adam",), ("momentum",), ("sgd",)),
                 "Adam trains faster than SGD with momentum, which trains faster than SGD"),
    ]


def training_speed(run: Run) -> float:
    """Mean over epochs of log10(training loss): the area under the log-loss curve (lower is
    faster); all runs of an ablation share their epoch budget."""
    _, loss = run.epochs("train_loss")
    return float(np.mean(np.log10(np.maximum(loss, 1e-30))))


def kendall_tau(a: list[float], b: list[float]) -> float:
    """Rank agreement of two score lists, −1 … 1 (1: same order)."""
    n, s = len(a), 0
    for i in range(n):
        for j in range(i + 1, n):
            s += np.sign(a[i] - a[j]) * np.sign(b[i] - b[j])
    return float(s / (n * (n - 1) / 2)) if n > 1 else math.nan


def tiers_hold(speed: dict[str, float], tiers: tuple[tuple[str, ...], ...]) -> bool:
    """Every run of an earlier tier trains faster (lower speed score) than every later one."""
    return all(speed[fast] < speed[slow] for i, tier in enumerate(tiers)
               for later in tiers[i + 1:] for fast in tier for slow in later)


def ablation_claims(ab: Ablation, runs: dict[str, Run]) -> tuple[list[Claim], dict[str, dict]]:
    checks = {label: theorem_checks(run.metrics) for label, run in runs.items()}
    speed = {label: training_speed(run) for label, run in runs.items()}
    finished = {label: run.status == "completed" for label, run in runs.items()}
    per_run = {label: {**c, "training_speed": speed[label], "status": runs[label].status}
               for label, c in checks.items()}
    claims = [
        decide(f"{ab.id}/principle", f"{ab.title}: every run obeys the γ-principle (γ_k > 0 on "
               f"≥ {POSITIVE_FRACTION:.0%} of the defined steps)",
               all(finished.values()) and all(c["positive_fraction"] >= POSITIVE_FRACTION for c in checks.values()),
               **{label: {"positive_fraction": c["positive_fraction"], "defined_steps": c["defined_steps"],
                          "undefined_steps": c["steps"] - c["defined_steps"], "gamma_median": c["gamma_median"]}
                  for label, c in checks.items()}),
        decide(f"{ab.id}/distance", f"{ab.title}: ‖θ_k − θ*‖ is non-increasing in every run "
               f"(Theorem 1.1; increases below {DIST_TOL:g} of ‖θ_0 − θ*‖ count as rounding)",
               all(c["dist_max_increase"] <= DIST_TOL for c in checks.values()),
               **{label: {"largest_increase": c["dist_max_increase"], "increases": c["dist_increases"]}
                  for label, c in checks.items()}),
        decide(f"{ab.id}/rate", f"{ab.title}: Σ_k gap_k ≤ 1/(2η γ_min) on the prefix where the "
               "principle holds (Theorem 1.3)",
               all(c["rate_bound_holds"] for c in checks.values()),
               **{label: {"gap_sum": c["gap_sum_prefix"], "bound": c["rate_bound"],
                          "prefix_steps": c["principle_prefix_steps"]} for label, c in checks.items()}),
    ]
    labels = list(runs)
    medians = [checks[x]["gamma_median"] for x in labels]
    tau = kendall_tau(medians, [-speed[x] for x in labels])
    claims.append(decide(
        f"{ab.id}/gamma-vs-speed", f"{ab.title}: a larger median γ goes with faster training "
        "(the two orderings agree)", tau == 1.0 if not math.isnan(tau) else None,
        kendall_tau=tau, by_gamma=sorted(labels, key=lambda x: -checks[x]["gamma_median"]),
        by_speed=sorted(labels, key=lambda x: speed[x]),
        median_gamma=dict(zip(labels, medians)), mean_log10_loss=speed))
    claims.append(decide(
        f"{ab.id}/paper-order", f"{ab.title}: {ab.paper_statement}",
        tiers_hold(speed, ab.paper_tiers), tiers=[list(t) for t in ab.paper_tiers],
        by_speed=sorted(labels, key=lambda x: speed[x]), mean_log10_loss=speed))
    return claims, per_run


def run_configs(plan: list[Ablation]) -> dict[str, dict]:
    return {f"{ab.id}-{label}": cfg for ab in plan for label, cfg in ab.variants.items()}


def plan(scale: str) -> Plan:
    return Plan(run_configs(ablations(scale)))


@experiments.register("gamma-principle", help="γ-optimization principle across activation, "
                      "batch-norm, skip and optimizer ablations, with the PCA view of the paths",
                      paper=GAMMA_2019, plan=plan)
def run(lab: Lab) -> list[Claim]:
    plan = ablations(lab.scale)
    configs = run_configs(plan)
    lab.log(f"{len(configs)} runs, each trained then replayed for γ")
    runs = lab.run_many(configs)
    claims: list[Claim] = []
    summary_rows: dict[str, list] = {"ablation": [], "variant": []}
    for ab in plan:
        ab_runs = {label: runs[f"{ab.id}-{label}"] for label in ab.variants}
        ab_claims, per_run = ablation_claims(ab, ab_runs)
        claims += ab_claims
        for label, values in per_run.items():
            summary_rows["ablation"].append(ab.id)
            summary_rows["variant"].append(label)
            for key, value in values.items():
                summary_rows.setdefault(key, []).append(value if not isinstance(value, bool) else float(value))
        gamma_figure(lab.figure(f"gamma-{ab.id}"), ab.title, ab_runs)
    lab.save_table("gamma_runs", summary_rows)

    pca_runs = {label: runs[f"optimizer-{label}"] for label in ("momentum", "adam")}
    claims.append(pca.pca_view(lab, pca_runs))
    return claims

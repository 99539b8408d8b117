"""Reproduction of "Exact loss convergence in convolutional networks" (a study after Nacson,
Srebro & Soudry 2019 and Soudry et al. 2018): SGD with a constant step, no averaging and no
schedule drives the training loss of separable problems to 0.

Two studies, one command:
  linear  logistic regression on separable data (a constructed set with a known max-margin
          vector ŵ, and a random one whose ŵ comes from an exact QP), GD and SGD with fixed
          steps for 10^5–10^7 steps, many runs advanced together as batched float64 tensor
          ops; claims: the theory's rates (loss ~ 1/t, ‖w‖ ~ ‖ŵ‖ ln t, direction error
          O(1/ln t), margin → 1/‖ŵ‖, no SGD loss floor), each with its measured numbers.
  cnn     LeNet-like / AlexNet / VGG-16 (full) or LeNet-like and a small VGG (cpu), all
          without skip connections, and for contrast a ResNet-18 with them, on CIFAR-10 with
          plain SGD at lr 0.01; claims per network: 0 training error, a still-falling training
          loss after it, a validation loss that rises while the validation error does not;
          across networks: the nets without skips interpolate and keep lowering the loss as
          the ResNet does, and depth without skips does not delay interpolation.

The five roles: `settings` (per scale), `configs` (the CNN runs), `measure` (the linear
simulation and curves; the CNN histories and trends), `claims` (one function per claim) and
`figures`; `rates` and `logistic` are the linear study's estimators and batched trainer.

Outputs (besides runs/): tables/linear.parquet (one row per dataset × run × recorded step),
tables/linear_sets.parquet (the datasets and their ŵ), tables/cnn.parquet (one row per
network), figures/linear-<dataset>.png, figures/cnn-<network>.png and figures/cnn-skips.png
(all networks, with and without skips, on one figure).
"""

from __future__ import annotations

import dataclasses
import time

from ...papers import NACSON_2019
from ..base import Claim, Lab, Plan, Simulation, divergence, experiments
from .claims import cnn_claims, contrast_claims, diverged_claims, linear_claims
from .configs import cnn_configs
from .figures import cnn_figure, linear_figure, skips_figure
from .measure import History, Interpolation, cnn_row, curves, set_table, simulate
from .settings import SCALE_SETTINGS, CnnSettings, LinearSettings


def linear_runs(s: LinearSettings) -> int:
    """How many GD/SGD runs the linear study simulates: per dataset, GD and `sgd_seeds` SGD
    runs at every lr."""
    return len(s.datasets) * len(s.lrs) * (1 + s.sgd_seeds)


def simulate_linear(lab: Lab, s: LinearSettings) -> None:
    """The linear study's tables (tables/linear and linear_sets), simulated once per settings."""

    def compute() -> dict[str, dict]:
        table, sets = simulate(s)
        return {"linear": table, "linear_sets": set_table(sets)}

    lab.simulate_once("linear", s, compute, f"linear: {linear_runs(s)} runs × {s.steps:,} steps, batched")


def estimate_linear(s: LinearSettings, steps: int = 20_000) -> float:
    """Seconds for the linear study, from a timed run of its first `steps` steps."""
    short = dataclasses.replace(s, steps=min(steps, s.steps))
    t0 = time.perf_counter()
    simulate(short)
    return (time.perf_counter() - t0) * s.steps / short.steps


def plan(scale: str) -> Plan:
    """What `exact-convergence` trains at `scale` (the CNN runs) and simulates (the linear study)."""
    settings = SCALE_SETTINGS[scale]
    s = settings.linear
    return Plan(
        cnn_configs(settings.cnn),
        {
            "linear": Simulation(
                f"logistic regression, {linear_runs(s)} GD/SGD runs × {s.steps:,} steps, batched float64",
                lambda: estimate_linear(s),
            )
        },
    )


def linear_part(lab: Lab, s: LinearSettings) -> list[Claim]:
    """The linear study: simulate (or reuse) the GD/SGD trajectories, draw one figure per
    dataset and decide the linear claims (`claims.linear_claims`)."""
    simulate_linear(lab, s)
    table, sets = lab.load_table("linear"), lab.load_table("linear_sets")
    cs = curves(table, sets)
    for dataset in sets["dataset"].tolist():
        lab.save_figure(linear_figure(dataset, cs, table), f"linear-{dataset}")
    return linear_claims(table, sets, s)


def cnn_part(lab: Lab, s: CnnSettings) -> list[Claim]:
    """The CNN study: train each network of `s` (skipping those `--only` leaves out), draw
    its three-panel figure and the with/without-skips figure, save one row per network to
    tables/cnn.parquet and decide its claims (`claims.cnn_claims`; `claims.diverged_claims` for
    a run that diverged), then the contrast claims (`claims.contrast_claims`)."""
    lab.log(f"cnn: {', '.join(m.key for m in s.models)} on CIFAR-10, SGD lr 0.01")
    runs = lab.run_many(cnn_configs(s))
    claims, rows, histories = [], [], {}
    nets: dict[str, Interpolation] = {}
    for m in s.models:
        if f"cnn-{m.key}" not in runs:
            continue  # not selected by --only: its claims are not made
        run = runs[f"cnn-{m.key}"]
        h = histories[m.key] = History.of(run)
        why = divergence(f"cnn-{m.key}", run)
        claims += (
            diverged_claims(m.key, m.title, h, why, m.skips)
            if why
            else cnn_claims(m.key, m.title, h, s.n_test or 10_000, m.skips)
        )
        nets[m.key] = Interpolation.of(m.title, m.depth, h, why)
        title = f"{m.title} on CIFAR-10 ({s.n_train or 50000} training images), SGD lr 0.01"
        lab.save_figure(cnn_figure(title, h.series(), nets[m.key].first_zero), f"cnn-{m.key}")
        rows.append(cnn_row(m, run, h))
    if rows:
        lab.save_table("cnn", {k: [r[k] for r in rows] for k in rows[0]})
    resnet = nets.get(s.resnet.key) if s.resnet is not None else None
    plain = [nets[m.key] for m in s.plain if m.key in nets]
    if resnet is not None and plain:
        title = (
            "with and without skip connections on CIFAR-10 "
            f"({s.n_train or 50000} training images), SGD lr 0.01"
        )
        together = {nets[k].title: (histories[k], m.skips) for m in s.models if (k := m.key) in nets}
        lab.save_figure(skips_figure(title, together), "cnn-skips")
    return claims + contrast_claims(resnet, plain)


@experiments.register(
    "exact-convergence",
    help="constant-step SGD drives the loss of separable "
    "problems to 0: linear max-margin rates (GD/SGD) and CNNs without skips "
    "(LeNet-like, AlexNet, VGG-16) reaching 0 training error as a ResNet-18 with skips does",
    paper=NACSON_2019,
    plan=plan,
)
def run(lab: Lab) -> list[Claim]:
    """Reproduce Nacson, Srebro & Soudry (2019), "Stochastic gradient descent on separable
    data: exact convergence with a fixed learning rate" (with Soudry et al. 2018): the
    linear study and the CNN study at the lab's scale; returns their claims."""
    settings = SCALE_SETTINGS[lab.scale]
    linear = linear_part(lab, settings.linear) if lab.selected("linear") else []
    return linear + cnn_part(lab, settings.cnn)

"""Reproduction of Nonnenmacher, Reeb & Steinwart (2021), "Which minimizer does my neural
network converge to?": in a strongly over-parameterized net the training procedure picks the
minimizer. Five experiments on binary 0-vs-1 tasks, mean ± std over the same inits:

  sigma     GD at a grid of initialization scales σ: test loss of the trained nets next to the
            closed-form GD limit of the linearized net; the initialization term's size vs σ
            against the predicted σ^(L+1); the procedure of Sect. 3 (`sgdlab tune-init`) run
            on the grid by validation loss
  adaptive  GD vs AdaGrad vs Adam from the same θ_0: test loss, and the distance between
            their minimizers on training vs test points, against plain SGD's
  example1  GD and AdaGrad on one training point against their closed forms, GD's kernel and
            the sign kernel (Example 1)
  batch     plain SGD vs AdaGrad at several batch sizes and two data orders, each against
            its full-batch counterpart
  later     a narrow net on more data (not lazy): linearized at a later time T the analysis
            still predicts the trained net, and σ and the optimizer still matter

Every tolerance comes from a measured baseline: the nets' finite-width gap to their closed form,
plain SGD's distance to GD from the same θ_0, and the standard errors of means over inits
(`stats`).

The five roles: `settings` (per scale), `configs` (the runs of a scale, their step sizes from
`steps`), `measure` (the trained runs against their closed forms → tables, and the per-init
numbers of each experiment), `claims` (one function per claim) and `figures`.

Outputs: runs/ (one run directory per trained config), tables/runs.parquet (every run's
measurements, output vectors as list columns), tables/targets.parquet, tables/lr_search.parquet
(every probe of the adaptive step-size searches), figures/{sigma,mitigation,adaptive,batch,
example1,later}-<dataset>.png (each with its .svg).
"""

from __future__ import annotations

import time

from ...papers import NONNENMACHER_2021
from ..base import Claim, Lab, Plan, Simulation, experiments
from . import figures as F
from .claims import adaptive_claims, batch_claims, example1_claims, later_claims, sigma_claims
from .configs import Spec, search_table, specs, trial_specs
from .measure import Table, adaptive_runs, batch_runs, later_runs, measure_runs, sigma_runs, sign_kernel_runs
from .settings import SCALE_SETTINGS, Settings


def plan(scale: str) -> Plan:
    """Every run at `scale` (step sizes computed from θ_0 and by the searches, as `run` does)."""
    planned = specs(scale) | trial_specs(scale)
    n = len(planned)
    return Plan(
        {name: spec.config for name, spec in planned.items()},
        {
            "measure": Simulation(
                f"closed-form GD limits at θ_0 (and θ_T) for {n} runs", lambda: _estimate_measure(scale)
            )
        },
    )


def _estimate_measure(scale: str) -> float:
    """Seconds for the closed forms: one timed closed form per distinct θ_0, extrapolated."""
    from ... import runner
    from ...ntk import closed_form

    planned = specs(scale)
    first = next(iter(planned.values()))
    parts = runner.prepare(first.config)
    d = parts.data
    t0 = time.perf_counter()
    closed_form(parts.model, d.train.x, d.train.y, d.test.x)
    distinct = {(sp.dataset, sp.arch.key, sp.sigma, sp.seed, sp.n_train) for sp in planned.values()}
    return (time.perf_counter() - t0) * len(distinct)


def train(lab: Lab) -> tuple[dict[str, Spec], dict]:
    """Train every planned run, then the procedure's trials below the σ grid (capped at a budget
    set by the steps the grid's runs took): the specs and runs of both."""
    s = SCALE_SETTINGS[lab.scale]
    lab.log("step sizes: GD from the NTK spectrum at θ_0, adaptive methods by search")
    planned = specs(lab.scale)
    lab.save_table("lr_search", search_table(lab.scale))
    lab.log(f"{len(planned)} runs ({s.inits} inits each setting)")
    runs = lab.run_many({name: spec.config for name, spec in planned.items()})
    if not runs:
        return planned, runs
    lab.log("the procedure's trials below the σ grid, capped at its budget")
    steps = {
        name: int(run.summary["steps"])
        for name, run in runs.items()
        if run.summary.get("stop_reason") == "stop_loss"
    }
    trials = trial_specs(lab.scale, steps)
    runs |= lab.run_many({name: spec.config for name, spec in trials.items()})
    return planned | trials, runs


def per_dataset(lab: Lab, t: Table, s: Settings, dataset: str) -> list[Claim]:
    """The σ and adaptive experiments on `dataset`, every architecture: their claims and figures."""
    claims: list[Claim] = []
    for arch in s.sigma_archs:
        claims += sigma_claims(t, s, dataset, arch)
    for arch in s.adaptive_archs:
        claims += adaptive_claims(t, s, dataset, arch)
    sigmas = [
        sigma_runs(t, dataset, a.key, a.depth) for a in s.sigma_archs if _has(t, "sigma", dataset, a.key)
    ]
    if sigmas:
        lab.save_figure(F.sigma_figure(sigmas, s, dataset), f"sigma-{dataset}")
    starting = [m for m in sigmas if F.starts_procedure(m, s)]
    if starting:
        lab.save_figure(F.mitigation_figure(starting, s, dataset), f"mitigation-{dataset}")
    adaptive = [
        adaptive_runs(t, dataset, a.key) for a in s.adaptive_archs if _has(t, "adaptive", dataset, a.key)
    ]
    if adaptive:
        lab.save_figure(F.adaptive_figure(adaptive, s, dataset), f"adaptive-{dataset}")
    return claims


def first_dataset(lab: Lab, t: Table, s: Settings) -> list[Claim]:
    """The batch, Example 1 and later experiments, on the first dataset: claims and figures."""
    dataset = s.datasets[0]
    claims = (
        batch_claims(t, s, dataset, s.batch_arch)
        + example1_claims(t, s, dataset)
        + later_claims(t, s, dataset)
    )
    if _has(t, "batch", dataset, s.batch_arch.key):
        batch = batch_runs(t, s, dataset, s.batch_arch.key)
        lab.save_figure(F.batch_figure(batch, s, dataset), f"batch-{dataset}")
    one = s.example1.arch.key
    if _has(t, "example1", dataset, one):
        lab.save_figure(
            F.example1_figure(t, sign_kernel_runs(t, dataset, one), dataset), f"example1-{dataset}"
        )
    if _has(t, "later", dataset, s.later.arch.key):
        later = later_runs(t, s, dataset, s.later.arch.key)
        lab.save_figure(F.later_figure(later, s, dataset), f"later-{dataset}")
    return claims


@experiments.register(
    "which-minimizer",
    help="the training procedure picks the minimizer of an "
    "over-parameterized net: initialization scale σ (closed-form NTK limit vs "
    "trained nets), GD vs AdaGrad/Adam, SGD batch size, less over-parameterized nets",
    paper=NONNENMACHER_2021,
    plan=plan,
)
def run(lab: Lab) -> list[Claim]:
    """Reproduce Nonnenmacher, Reeb & Steinwart (2021), "Which minimizer does my neural network
    converge to?": train every planned run, measure them against the closed-form limits of the
    linearized nets (tables/runs.parquet), and decide the σ, adaptive, batch-size, Example 1 and
    later-linearization claims, with one figure per experiment and dataset."""
    s = SCALE_SETTINGS[lab.scale]
    planned, runs = train(lab)
    if not runs:
        return []
    lab.log("closed-form limits of the linearized nets")
    t = Table(measure_runs(lab, s, planned, runs), s.stop_loss)
    claims = [c for dataset in s.datasets for c in per_dataset(lab, t, s, dataset)]
    return claims + first_dataset(lab, t, s)


def _has(t: Table, part: str, dataset: str, arch: str) -> bool:
    return bool(t.rows(part=part, dataset=dataset, arch=arch))

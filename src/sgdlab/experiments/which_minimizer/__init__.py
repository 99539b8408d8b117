"""Reproduction of Nonnenmacher, Reeb & Steinwart (2021), "Which minimizer does my neural
network converge to?": in a strongly over-parameterized net the training procedure picks the
minimizer. Four experiments on binary 0-vs-1 tasks, mean ± std over the same inits:

  sigma     GD at a grid of initialization scales σ: test error of the trained nets next to
            the closed-form GD limit of the linearized net and its σ-invariant interpolating
            part; the initialization term's size vs σ against the predicted σ^(L+1)
  adaptive  GD vs AdaGrad vs Adam from the same θ_0: test error, and the distance between
            their minimizers on training vs test points
  batch     plain SGD vs AdaGrad at several batch sizes and two data orders, each against
            its full-batch counterpart
  later     a narrow net on more data (not lazy): linearized at a later time T the analysis
            still predicts the trained net, and σ and the optimizer still matter

Outputs: runs/ (one run directory per trained config), tables/runs.parquet (every run's
measurements, output vectors as list columns), tables/targets.parquet, tables/lr_search.parquet
(every probe of the adaptive step-size searches), figures/{sigma,adaptive,batch,later}-<dataset>.png.
"""

from __future__ import annotations

import time

from ...papers import NONNENMACHER_2021
from ..base import Claim, Lab, Plan, Simulation, experiments
from . import claims as C
from .configs import search_table, specs
from .figures import adaptive_figure, batch_figure, later_figure, sigma_figure
from .measure import measure
from .settings import SCALE_SETTINGS


def plan(scale: str) -> Plan:
    """Every run at `scale` (step sizes computed from θ_0 and by the searches, as `run` does)."""
    planned = specs(scale)
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
    converge to?": train every planned run,
    measure them against the closed-form limits of the linearized nets (tables/runs.parquet),
    and decide the σ, adaptive, batch-size and later-linearization claims per dataset and
    architecture, with one figure per experiment and dataset."""
    s = SCALE_SETTINGS[lab.scale]
    lab.log("step sizes: GD from the NTK spectrum at θ_0, adaptive methods by search")
    planned = specs(lab.scale)
    lab.save_table("lr_search", search_table(lab.scale))
    lab.log(f"{len(planned)} runs ({s.inits} inits each setting)")
    runs = lab.run_many({name: spec.config for name, spec in planned.items()})
    if not runs:
        return []
    lab.log("closed-form limits of the linearized nets")
    t = C.Table(measure(lab, s, planned, runs))
    claims: list[Claim] = []
    for dataset in s.datasets:
        for arch in s.sigma_archs:
            claims += C.sigma_claims(t, s, dataset, arch.key, arch.depth)
        for arch in s.adaptive_archs:
            claims += C.adaptive_claims(t, s, dataset, arch.key)
        sigma_figure(lab.figure(f"sigma-{dataset}"), t, s, dataset)
        adaptive_figure(lab.figure(f"adaptive-{dataset}"), t, s, dataset)
    dataset = s.datasets[0]
    claims += C.batch_claims(t, s, dataset, s.batch_arch.key)
    claims += C.later_claims(t, s, dataset, s.later.arch.key)
    batch_figure(lab.figure(f"batch-{dataset}"), t, s, dataset)
    later_figure(lab.figure(f"later-{dataset}"), t, s, dataset)
    return claims

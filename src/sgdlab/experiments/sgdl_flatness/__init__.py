"""Reproduction of Zhang, Liao, Rakhlin, Miranda, Golowich & Poggio (2017), "Theory of deep
learning IIb: optimization properties of SGD", as examined by a student report (Osipov, Zharkov,
Vlasova & Kuzmina 2018), which drew its 2-D conclusion from histogram bar heights, used a broken
finite-difference gradient and never trained the random-label nets to zero error. Measured here:

  particles   ≥ 10^5 GD / SGDL runs on the flat/sharp landscape per noise level (decaying as the
              report's code did, constant as in the paper), exact gradients: basin masses with
              95 % intervals, the report's histogram beside them, constant-noise occupancy
              against the Boltzmann prediction ∫_basin exp(−f/T)
  rosenbrock  GD's distance to (1, 1): its linear rate against 1 − ηλ_min of the Hessian at the
              minimum, and whether any run stalls elsewhere
  sweep       SGDL on the report's MLP (512-512, batch 32, lr 0.01) for γ' ∈ {1e-4, …, 1e-1}, with
              constant noise (the paper) and γ'/(1 + t) (the report's code), and plain SGD on
              several seeds: training curves, the noise level at which training stops
              converging, and which γ' end within plain SGD's seed spread of training and test
              error
  labels      natural vs random labels trained to zero training error, three seeds each:
              λ_max, Hessian trace, perturbation sharpness, three-point interpolation surfaces

The five roles: `settings` (per scale), `configs` (the sweep and label runs), `measure` (the
particle and Rosenbrock simulations, the sweep runs, the minimizers' flatness), `claims` (one
function per claim) and `figures`.

Tables: toy_runs, toy_occupancy, toy_final, rosenbrock, rosenbrock_final, sweep, labels_flatness,
labels_interpolation_<kind>. Figures: toy-landscapes, toy-histogram-vs-mass, toy-occupancy,
rosenbrock, sgdl-<dataset>, labels-interpolation, labels-flatness.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import numpy as np

from ...papers import ZHANG_2017_SGD
from ..base import Claim, Lab, Plan, Simulation, experiments, one_thread
from . import figures
from .claims import Baseline, label_claims, premise, rosenbrock_claims, sweep_claims, toy_claims
from .configs import KINDS, label_configs, sweep_configs, sweep_identity
from .measure import (
    flatness_table,
    histogram,
    interpolation_surface,
    linear_regime,
    measure_run,
    particle_settings,
    run_setting,
    simulate_all,
    simulate_rosenbrock,
    split_sizes,
    sweep_curves,
    sweep_run,
)
from .settings import SCALE_SETTINGS, LabelSettings, Settings, SweepSettings, ToySettings


def particles_part(lab: Lab, s: ToySettings) -> list[Claim]:
    """The flat/sharp landscape: simulate (or reuse) the particle runs, draw the landscapes, the
    report's histogram beside the basin masses and the occupancy, and decide `claims.toy_claims`."""
    settings = particle_settings(s)
    n = sum(st.particles * st.steps for st in settings)
    message = f"particles: {len(settings)} settings, {n:,} particle-steps"
    lab.simulate_once("particles", s, lambda: _one_thread(simulate_all, s, lab.log), message)
    runs, occ, final = (
        lab.load_table("toy_runs"),
        lab.load_table("toy_occupancy"),
        lab.load_table("toy_final"),
    )
    lab.save_figure(figures.landscapes_figure(), "toy-landscapes")
    counts, xe, ye = histogram(final, s)
    lab.save_figure(figures.histogram_vs_mass_figure(counts, xe, ye, runs), "toy-histogram-vs-mass")
    lab.save_figure(figures.occupancy_figure(runs, occ), "toy-occupancy")
    return toy_claims(runs, occ, final, s)


def rosenbrock_part(lab: Lab, s: ToySettings) -> list[Claim]:
    """GD on Rosenbrock: simulate (or reuse) the runs, draw the distance figure and decide
    `claims.rosenbrock_claims`."""
    message = f"rosenbrock: {s.rosen_particles:,} runs × {s.rosen_steps:,} steps"
    lab.simulate_once("rosenbrock", s, lambda: _one_thread(simulate_rosenbrock, s), message)
    rosen = lab.load_table("rosenbrock")
    lab.save_figure(figures.rosenbrock_figure(rosen, linear_regime(s)), "rosenbrock")
    return rosenbrock_claims(rosen, lab.load_table("rosenbrock_final"), s)


def _one_thread(compute: Any, *args: Any) -> Any:
    with one_thread():
        return compute(*args)


def sweep_part(lab: Lab, s: SweepSettings) -> list[Claim]:
    """The noise sweep: SGDL on the MLP at every γ' under both noise schedules and plain SGD on
    the baseline seeds, for every dataset; one training-curve figure per dataset,
    tables/sweep.parquet, and `claims.sweep_claims` for each dataset whose whole sweep was trained."""
    configs = sweep_configs(s)
    runs = lab.run_many(configs)
    claims: list[Claim] = []
    rows: dict[str, list[Any]] = {}
    for key, _ in s.datasets:
        names = [name for name in configs if name.startswith(f"sgdl-{key}-")]
        if any(name not in runs for name in names):
            continue  # not all selected by --only: the claims need the whole sweep
        measured = {name: sweep_run(runs[name], *sweep_identity(configs[name])) for name in names}
        for name, r in measured.items():
            for k, v in {"dataset": key, "run": name, **dataclasses.asdict(r)}.items():
                rows.setdefault(k, []).append(math.nan if v is None else v)
        baseline = Baseline(tuple(r for r in measured.values() if r.noise == 0), *split_sizes(runs[names[0]]))
        curves = {name: sweep_curves(runs[name]) for name in names}
        lab.save_figure(figures.sweep_figure(key, measured, curves, baseline), f"sgdl-{key}")
        claims += sweep_claims(key, measured, baseline, s)
    if rows:
        lab.save_table("sweep", rows)
    return claims


def labels_part(lab: Lab, s: LabelSettings) -> list[Claim]:
    """Natural vs random labels: train the six runs, measure the flatness of those that
    reach zero training error (tables/labels_flatness), compute the three-point
    interpolation surface of each label kind whose three seeds all did, draw both figures
    and decide `claims.label_claims`. Empty when `--only` left some of the runs out."""
    configs = label_configs(s)
    runs = lab.run_many(configs)
    if len(runs) < len(configs):
        return []  # --only picked some of them: the comparison needs all six
    p = premise(s)
    meets = [name for name, run in runs.items() if p.check(run)["meets"]]
    with one_thread():
        measured = {name: measure_run(runs[name], s, int(name.rsplit("-", 1)[1])) for name in meets}
    table = flatness_table(measured)
    if table["run"]:
        lab.save_table("labels_flatness", table)
        columns = {k: np.asarray(v) for k, v in table.items()}
        lab.save_figure(figures.flatness_figure(columns, s.radii[0]), "labels-flatness")
    surfaces, summaries = {}, {}
    for kind in KINDS:
        names = [f"labels-{kind}-{seed}" for seed in s.seeds]
        if all(n in meets for n in names) and len(names) == 3:
            with one_thread():
                lam, values, summary = interpolation_surface([runs[n] for n in names], s)
            lab.save_table(
                f"labels_interpolation_{kind}",
                {"l1": lam[:, 0], "l2": lam[:, 1], "l3": lam[:, 2], "loss": values},
            )
            surfaces[kind], summaries[kind] = (lam, values), summary
    if surfaces:
        lab.save_figure(figures.interpolation_figure(surfaces), "labels-interpolation")
    return label_claims(runs, s, measured, summaries)


def estimate_particles(s: ToySettings) -> float:
    """Seconds for the particle study, from a timed stretch of its first setting."""
    from ...toys.particles import CHUNK

    first = particle_settings(s)[0]
    # whole chunks, so the per-op overhead is counted as the full run pays it
    short = dataclasses.replace(
        first, steps=max(1, min(50, first.steps)), particles=min(first.particles, 2 * CHUNK)
    )
    t0 = time.perf_counter()
    run_setting(short, s, 0)
    per = (time.perf_counter() - t0) / (short.steps * short.particles)
    return per * sum(st.particles * st.steps for st in particle_settings(s))


def estimate_rosenbrock(s: ToySettings) -> float:
    """Seconds for the Rosenbrock study, from a timed run of 200 steps."""
    short = dataclasses.replace(s, rosen_steps=200, rosen_records=1)
    t0 = time.perf_counter()
    simulate_rosenbrock(short)
    return (time.perf_counter() - t0) * s.rosen_steps / 200


def plan(scale: str) -> Plan:
    """What `sgdl-flatness` trains at `scale` (the noise sweep and the label runs) and
    simulates (the particles and Rosenbrock), with timed estimates."""
    st: Settings = SCALE_SETTINGS[scale]
    runs = {**sweep_configs(st.sweep), **label_configs(st.labels)}
    t = st.toy
    return Plan(
        runs,
        {
            "particles": Simulation(
                f"{len(particle_settings(t))} GD/SGDL settings × {t.particles:,} particles "
                f"on the flat/sharp landscape, vectorized",
                lambda: estimate_particles(t),
            ),
            "rosenbrock": Simulation(
                f"GD on Rosenbrock, {t.rosen_particles:,} runs × {t.rosen_steps:,} steps",
                lambda: estimate_rosenbrock(t),
            ),
        },
    )


@experiments.register(
    "sgdl-flatness",
    help="SGD vs SGD with Langevin noise: basin mass of flat vs "
    "sharp minima on 2-D landscapes (≥10^5 particles, Boltzmann check), Rosenbrock, "
    "SGDL noise sweep on an MLP, natural vs random labels compared by Hessian, "
    "sharpness and three-point interpolation",
    paper=ZHANG_2017_SGD,
    plan=plan,
)
def run(lab: Lab) -> list[Claim]:
    """Reproduce Zhang, Liao, Rakhlin, Miranda, Golowich & Poggio (2017), "Theory of deep
    learning IIb: optimization properties of SGD" (with the student report of Osipov, Zharkov,
    Vlasova & Kuzmina 2018): the 2-D particle and Rosenbrock studies, the SGDL noise sweep on an
    MLP, and natural vs random labels; returns their claims."""
    s = SCALE_SETTINGS[lab.scale]
    particles = particles_part(lab, s.toy) if lab.selected("particles") else []
    rosenbrock = rosenbrock_part(lab, s.toy) if lab.selected("rosenbrock") else []
    return particles + rosenbrock + sweep_part(lab, s.sweep) + labels_part(lab, s.labels)

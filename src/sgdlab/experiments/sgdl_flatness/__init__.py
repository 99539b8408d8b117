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

Tables: toy_runs, toy_occupancy, toy_final, rosenbrock, rosenbrock_final, sweep, labels_flatness,
labels_interpolation_<kind>. Figures: toy-landscapes, toy-histogram-vs-mass, toy-occupancy,
rosenbrock, sgdl-<dataset>, labels-interpolation, labels-flatness.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from typing import Any

import numpy as np

from ...papers import ZHANG_2017_SGD
from ...runner import prepare
from ...store.files import write_json
from ..base import Claim, Lab, Plan, Simulation, experiments, one_thread
from . import figures
from .labels import KINDS, interpolation_surface, label_claims, label_configs, measure_run, premise
from .mlp import Baseline, measure, sweep_claims, sweep_configs, sweep_curves, sweep_identity
from .settings import SCALE_SETTINGS, LabelSettings, Settings, SweepSettings, ToySettings
from .toy import (
    histogram,
    linear_regime,
    rosenbrock_claims,
    simulate_all,
    simulate_rosenbrock,
    toy_claims,
)
from .toy import (
    settings as toy_settings,
)


def _cached(lab: Lab, name: str, record: dict, compute, log: str) -> None:  # noqa: ANN001
    """Compute tables once per settings record; reuse them when the settings are unchanged."""
    path = lab.out / "tables" / f"{name}.json"
    if path.is_file() and json.loads(path.read_text()) == record:
        lab.log(f"{name}: reusing the simulated tables")
        return
    lab.log(log)
    with one_thread():
        tables = compute()
    for table, columns in tables.items():
        lab.save_table(table, columns)
    write_json(path, record)


def _record(s) -> dict:  # noqa: ANN001
    return json.loads(json.dumps(dataclasses.asdict(s)))


def toy_part(lab: Lab, s: ToySettings) -> list[Claim]:
    """The 2-D part: simulate (or reuse) the particle runs on the flat/sharp landscape and
    GD on Rosenbrock, draw their figures and decide `toy.toy_claims` and
    `toy.rosenbrock_claims` (each sub-part only when `--only` selects it)."""
    if lab.selected("particles"):
        n = sum(st.particles * st.steps for st in toy_settings(s))
        _cached(
            lab,
            "particles",
            _record(s),
            lambda: simulate_all(s, lab.log),
            f"particles: {len(toy_settings(s))} settings, {n:,} particle-steps",
        )
    if lab.selected("rosenbrock"):
        _cached(
            lab,
            "rosenbrock",
            _record(s),
            lambda: simulate_rosenbrock(s),
            f"rosenbrock: {s.rosen_particles:,} runs × {s.rosen_steps:,} steps",
        )
    claims: list[Claim] = []
    if lab.selected("particles"):
        runs, occ, final = (
            lab.load_table("toy_runs"),
            lab.load_table("toy_occupancy"),
            lab.load_table("toy_final"),
        )
        figures.landscapes_figure(lab.figure("toy-landscapes"))
        counts, xe, ye = histogram(final, s)
        figures.histogram_vs_mass_figure(lab.figure("toy-histogram-vs-mass"), counts, xe, ye, runs)
        figures.occupancy_figure(lab.figure("toy-occupancy"), runs, occ)
        claims += toy_claims(runs, occ, final, s)
    if lab.selected("rosenbrock"):
        rosen = lab.load_table("rosenbrock")
        figures.rosenbrock_figure(lab.figure("rosenbrock"), rosen, linear_regime(s))
        claims += rosenbrock_claims(rosen, lab.load_table("rosenbrock_final"), s)
    return claims


def sweep_part(lab: Lab, s: SweepSettings) -> list[Claim]:
    """The noise sweep: SGDL on the MLP at every γ' under both noise schedules and plain SGD on
    the baseline seeds, for every dataset; one training-curve figure per dataset,
    tables/sweep.parquet, and `mlp.sweep_claims` for each dataset whose whole sweep was trained."""
    configs = sweep_configs(s)
    runs = lab.run_many(configs)
    claims: list[Claim] = []
    rows: dict[str, list[Any]] = {}
    for key, _ in s.datasets:
        names = [name for name in configs if name.startswith(f"sgdl-{key}-")]
        if any(name not in runs for name in names):
            continue  # not all selected by --only: the claims need the whole sweep
        measured = {name: measure(runs[name], *sweep_identity(configs[name])) for name in names}
        for name, r in measured.items():
            for k, v in {"dataset": key, "run": name, **dataclasses.asdict(r)}.items():
                rows.setdefault(k, []).append(math.nan if v is None else v)
        data = prepare(runs[names[0]].config).data
        baseline = Baseline(
            tuple(r for r in measured.values() if r.noise == 0), len(data.train), len(data.test)
        )
        curves = {name: sweep_curves(runs[name]) for name in names}
        figures.sweep_figure(lab.figure(f"sgdl-{key}"), key, measured, curves, baseline)
        claims += sweep_claims(key, measured, baseline, s)
    if rows:
        lab.save_table("sweep", rows)
    return claims


def labels_part(lab: Lab, s: LabelSettings) -> list[Claim]:
    """Natural vs random labels: train the six runs, measure the flatness of those that
    reach zero training error (tables/labels_flatness), compute the three-point
    interpolation surface of each label kind whose three seeds all did, draw both figures
    and decide `labels.label_claims`. Empty when `--only` left some of the runs out."""
    configs = label_configs(s)
    runs = lab.run_many(configs)
    if len(runs) < len(configs):
        return []  # --only picked some of them: the comparison needs all six
    p = premise(s)
    meets = [name for name, run in runs.items() if p.check(run)["meets"]]
    measured = {}
    with one_thread():
        for name in meets:
            seed = int(name.rsplit("-", 1)[1])
            measured[name] = measure_run(runs[name], s, seed)
    table: dict[str, list[Any]] = {"run": [], "kind": [], "seed": []}
    for name, row in measured.items():
        table["run"].append(name)
        table["kind"].append(name.split("-")[1])
        table["seed"].append(int(name.rsplit("-", 1)[1]))
        for k, v in row.items():
            table.setdefault(k, []).append(float(v) if v is not None else math.nan)
    if table["run"]:
        lab.save_table("labels_flatness", table)
        figures.flatness_figure(
            lab.figure("labels-flatness"), {k: np.asarray(v) for k, v in table.items()}, s.radii[0]
        )
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
        figures.interpolation_figure(lab.figure("labels-interpolation"), surfaces)
    claims = label_claims(runs, s, measured, summaries)
    return claims


def estimate_particles(s: ToySettings) -> float:
    """Seconds for the particle study, from a timed stretch of its first setting."""
    from ...toys.particles import CHUNK
    from .toy import run_setting

    first = toy_settings(s)[0]
    # whole chunks, so the per-op overhead is counted as the full run pays it
    short = dataclasses.replace(
        first, steps=max(1, min(50, first.steps)), particles=min(first.particles, 2 * CHUNK)
    )
    t0 = time.perf_counter()
    run_setting(short, s, 0)
    per = (time.perf_counter() - t0) / (short.steps * short.particles)
    total = sum(st.particles * st.steps for st in toy_settings(s))
    return per * total


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
                f"{len(toy_settings(t))} GD/SGDL settings × {t.particles:,} particles "
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
    return toy_part(lab, s.toy) + sweep_part(lab, s.sweep) + labels_part(lab, s.labels)

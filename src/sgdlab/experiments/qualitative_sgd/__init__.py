"""Reproduction of Giselsson's lecture "Stochastic gradient descent: qualitative convergence
behavior": how the agreement of the individual gradients decides how SGD converges.

Seven parts, each a figure and claims with numbers:
  1 noise ball        f = Σ ½‖x − c_i‖², step 1/3: GD in one step, the iid noise ball
                      E‖x‖² = mean‖c‖²/5, the cyclic 3-cycle, fast outside / slow inside   (simulation)
  2 1-D pair          cyclic SGD, step 0.07, ∇f_i(0) = ±0.83 vs ±0.02: amplitude γc/(2−γ)    (simulation)
  3 least squares     200×100 vs 200×1000, SGD batch 1 with iid sampling: the minimum-norm
                      interpolator vs a floor whose exponent in the step is fitted over ≥ 3
                      steps × seeds once stationary, individual gradient norms at the solution (runs)
  4 residual nets     3x5,2,1 (does not interpolate: a premise) vs 15x25,2,1 (does), logistic
                      loss: final loss, best gradient, individual gradient norms, μ         (runs)
  5 escaping          4 functions, a flat and a not individually flat global minimum: escape
                      probability and time vs batch size 1…4 (GD never escapes)           (simulation)
  6 step-size rules   the lecture's table for the combined, damped and undamped rules on the
                      15x25 net; the undamped one ends with status `diverged`               (runs)
  7 μ                 μ against the mini-batch size and the distance from the solution, MLP on
                      digits                                                                 (run)

The five roles: `settings` (per scale), `configs` (every trained run), `measure` (plain
measured numbers from the simulations of `sgdlab.toys` and from the runs), `claims` (one function
per claim, decided from those numbers) and `figures` (each returns a figure, the Lab saves it);
`parts` chains them through the Lab, part by part: measure → tables → figure → claims.

Outputs besides runs/: tables/{noise_ball, pair, escaping, escaping_summary, least_squares,
least_squares_floors, step_size_rules, agreement_distance, agreement_batch}.parquet and
figures/{noise-ball, pair, least-squares, nets, escaping, agreement}.png.
"""

from __future__ import annotations

import functools
import time

from ... import toys
from ...papers import GISELSSON_SGD
from ..base import Claim, Lab, Plan, Simulation, experiments, one_thread
from .configs import ls_configs, run_configs
from .parts import (
    BATCH_SIZES,
    PAIR_C,
    PAIR_STEP,
    PAIR_X0,
    agreement_part,
    escaping_part,
    least_squares_part,
    nets_part,
    noise_ball_part,
    pair_part,
    rules_part,
)
from .settings import SCALE_SETTINGS, ToySettings

SIMULATIONS = ("noise-ball", "pair", "escaping")

__all__ = ["SIMULATIONS", "plan", "run", "run_configs", "simulation_seconds"]


FIGURE_SECONDS = 2.0  # drawing and saving one figure, roughly


def simulation_seconds(name: str, t: ToySettings, fraction: float = 0.1) -> float:
    """Seconds for simulation `name`, from a timed run of `fraction` of its steps, plus a figure."""
    scaled = lambda steps: max(2, int(steps * fraction))  # noqa: E731
    t0 = time.perf_counter()
    with one_thread():
        if name == "noise-ball":
            toys.simulate_noise_ball(toys.NoiseBall(), t.noise_runs, scaled(t.noise_steps), t.seed)
        elif name == "pair":
            for c in PAIR_C:
                toys.simulate_pair(c, PAIR_STEP, PAIR_X0, scaled(t.pair_steps))
        else:
            toys.simulate_escape(
                toys.Escape(), BATCH_SIZES + (1,), t.escape_runs, scaled(t.escape_steps), t.seed
            )
    return (time.perf_counter() - t0) / fraction + FIGURE_SECONDS


def plan(scale: str) -> Plan:
    """What `qualitative-sgd` trains at `scale` and its three simulations, each with a timed estimate."""
    s = SCALE_SETTINGS[scale]
    t = s.toys
    text = {
        "noise-ball": f"noise ball: {t.noise_runs:,} iid SGD runs × {t.noise_steps} steps, cyclic, GD",
        "pair": f"1-D pair: cyclic SGD, {t.pair_steps} steps, two problems",
        "escaping": f"escaping: {t.escape_runs:,} runs × {t.escape_steps} steps for each batch size 1…4",
    }
    sims = {
        name: Simulation(text[name], functools.partial(simulation_seconds, name, t)) for name in SIMULATIONS
    }
    return Plan(run_configs(s), sims)


@experiments.register(
    "qualitative-sgd",
    help="gradient agreement μ and the qualitative behaviour "
    "of SGD: noise ball, individual gradients at the solution, over- vs "
    "under-parameterized least squares and residual nets, escaping "
    "non-individually-flat minima vs batch size, step-size rules",
    paper=GISELSSON_SGD,
    plan=plan,
)
def run(lab: Lab) -> list[Claim]:
    """Reproduce Giselsson's lecture "Stochastic gradient descent: qualitative convergence
    behavior" (Lund University, undated): the three simulated parts (noise ball, 1-D pair,
    escaping), then the trained ones (least squares, residual nets, step-size rules, μ);
    returns every part's claims."""
    s = SCALE_SETTINGS[lab.scale]
    claims: list[Claim] = []
    if lab.selected("noise-ball"):
        claims += noise_ball_part(lab, s.toys)
    if lab.selected("pair"):
        claims += pair_part(lab, s.toys)
    if lab.selected("escaping"):
        claims += escaping_part(lab, s.toys)
    configs = run_configs(s)
    lab.log(f"{len(configs)} runs: least squares, residual nets and step-size rules, μ on digits")
    runs = lab.run_many(configs)
    ls_names = list(ls_configs(s.least_squares))
    if any(n in runs for n in ls_names) or lab.only is None:
        claims += least_squares_part(lab, s.least_squares, runs)
    if any(n in runs for n in ("net-3x5", "net-15x25")) or lab.only is None:
        claims += nets_part(lab, s.nets, runs)
    if any(n.startswith("rule-") for n in runs) or lab.only is None:
        rule_claims, _ = rules_part(lab, s.nets, runs)
        claims += rule_claims
    if "mu-mlp" in runs or lab.only is None:
        claims += agreement_part(lab, s.agreement, runs)
    return claims

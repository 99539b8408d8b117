"""Parts 1, 2 and 5 of `qualitative-sgd` — the noise ball, the 1-D pair and escaping — as
simulations: each part simulates (`sgdlab.toys`), measures (`measure.toys`), saves its tables,
draws its figure and decides its claims (`claims.toys`)."""

from __future__ import annotations

import numpy as np

from ....toys import Escape, NoiseBall, simulate_escape, simulate_noise_ball, simulate_pair
from ...base import Claim, Lab, one_thread
from .. import claims, figures, measure
from ..settings import ToySettings

PAIR_C = (0.83, 0.02)  # the lecture's individual gradients at the solution
PAIR_STEP = 0.07
PAIR_X0 = 1.0
PAIR_LOSS = 1e-5  # "reaches a small loss": f − f* ≤ this
BATCH_SIZES = (1, 2, 3, 4)


def noise_ball_part(lab: Lab, s: ToySettings) -> list[Claim]:
    """Part 1 (Giselsson, "Stochastic gradient descent: qualitative convergence behavior"):
    the noise ball f = Σ_{i=1}^3 ½‖x − c_i‖², step 1/3 — iid SGD (`s.noise_runs` runs), cyclic
    SGD and GD; table, figure and the claims `noise-ball/gd-one-step`, `sgd-stationary`,
    `cyclic-3-cycle` and `fast-outside-slow-inside`."""
    nb = NoiseBall()
    with one_thread():
        sim = simulate_noise_ball(nb, s.noise_runs, s.noise_steps, s.seed)
    sq = (sim["iid"] ** 2).sum(axis=-1)  # [steps+1, runs]
    lab.save_table(
        "noise_ball",
        {
            "step": np.arange(len(sq)),
            "mean_sq_dist": sq.mean(axis=1),
            "cyclic_sq_dist": (sim["cyclic"] ** 2).sum(axis=-1),
        },
    )
    lab.save_figure(figures.noise_ball_figure(nb, sim), "noise-ball")
    m = measure.noise_ball(nb, sim)
    return [
        claims.noise_ball_gd_one_step_claim(m.x0, m.gd_x1),
        claims.noise_ball_sgd_stationary_claim(m.stationary, m.ball, m.steps_averaged),
        claims.noise_ball_cyclic_cycle_claim(m.cyclic_last, m.cycle),
        claims.noise_ball_fast_outside_slow_inside_claim(
            m.outside, m.inside, m.states_outside, m.states_inside
        ),
    ]


def pair_part(lab: Lab, s: ToySettings) -> list[Claim]:
    """Part 2 (Giselsson, "Stochastic gradient descent: qualitative convergence behavior"):
    cyclic SGD on f_{1,2} = ½(x ∓ c)² at step 0.07 for c = 0.83 and 0.02; table, figure and the
    claims `pair/amplitude` and `pair/small-individual-gradients`."""
    paths = {c: simulate_pair(c, PAIR_STEP, PAIR_X0, s.pair_steps) for c in PAIR_C}
    lab.save_table(
        "pair", {"step": np.arange(s.pair_steps + 1), **{f"x_c{c:g}": x for c, x in paths.items()}}
    )
    lab.save_figure(figures.pair_figure(paths, PAIR_STEP), "pair")
    runs = {c: measure.pair_run(x, PAIR_LOSS) for c, x in paths.items()}
    return [
        claims.pair_amplitude_claim(runs, PAIR_STEP),
        claims.pair_small_individual_gradients_claim(runs, PAIR_LOSS),
    ]


def escaping_part(lab: Lab, s: ToySettings) -> list[Claim]:
    """Part 5 (Giselsson, "Stochastic gradient descent: qualitative convergence behavior"):
    mini-batch SGD from the not individually flat minimum x_L = 0.8 for K = 1…4 (and
    single-sample SGD from the flat one); tables, figure and the claims `escaping/landscape`,
    `gd-never`, `batch-size` and `flat-stays`."""
    e = Escape()
    with one_thread():
        sim = simulate_escape(e, BATCH_SIZES, s.escape_runs, s.escape_steps, s.seed)
        flat = simulate_escape(e, (1,), s.escape_runs, s.escape_steps, s.seed + 1, start=e.x_right)
    first = sim["first_escape"]
    found = measure.escapes(first, BATCH_SIZES)
    steps = np.arange(s.escape_steps + 1)
    lab.save_table(
        "escaping",
        {
            "step": steps,
            **{
                f"not_escaped_b{k}": ((first[i] < 0)[None, :] | (first[i][None, :] > steps[:, None])).mean(
                    axis=1
                )
                for i, k in enumerate(BATCH_SIZES)
            },
        },
    )
    lab.save_table(
        "escaping_summary",
        {
            "batch_size": list(found.batch_sizes),
            "escaped": found.escaped,
            "escape_probability": found.probability,
            "mean_escape_step": found.mean_step,
            "escape_step_se": found.step_se,
        },
    )
    summary, curves = lab.load_table("escaping_summary"), lab.load_table("escaping")
    lab.save_figure(figures.escaping_figure(e, summary, curves, BATCH_SIZES), "escaping")
    gd = BATCH_SIZES.index(4)
    return [
        claims.escaping_landscape_claim(measure.landscape(e)),
        claims.escaping_gd_never_claim(
            int(found.escaped[gd]), s.escape_runs, float(sim["max_move"][gd].max())
        ),
        claims.escaping_batch_size_claim(found),
        claims.escaping_flat_stays_claim(float(flat["max_move"].max()), s.escape_runs),
    ]

"""Part 3 of `qualitative-sgd`: least squares f(x) = Σ_i ½(a_i x − b_i)², A ∈ R^(200×100)
(under-parameterized: a unique solution with large individual gradients) vs R^(200×1000)
(over-parameterized: interpolation, ∇f_i(x*) = 0), single-sample SGD from x_0 = 0 with indices
drawn iid, as in the lecture.

x* is computed exactly (float64 least squares: the unique solution, or the minimum-norm
interpolator A⁺b, the point SGD from 0 must reach since its iterates stay in A's row space), and
the individual gradient norms at x* come from sgdlab.gradients on the linear model at x*. The
floor study runs the under-parameterized problem at ≥ 3 steps × several seeds and compares the
measured floors with the exact stationary excess loss of iid SGD (`measure.stationary_excess_loss`).
"""

from __future__ import annotations

import numpy as np

from ....store import Run
from ...base import Claim, Lab, divergences, missing_runs, not_applicable
from .. import claims, figures, measure
from ..configs import floor_runs, ls_configs
from ..settings import LeastSquaresSettings


def least_squares_part(lab: Lab, s: LeastSquaresSettings, runs: dict[str, Run]) -> list[Claim]:
    """Part 3 (Giselsson, "Stochastic gradient descent: qualitative convergence behavior"):
    the gap f(x_k) − f* per epoch (x* the exact solution, A⁺b when over-parameterized), table,
    figure and the claims `ls/over-interpolates`, `individual-gradients-at-solution`,
    `over-converges-faster` and `under-floor-scales-with-step`. One not-applicable claim when a
    run is missing or diverged."""
    names = list(ls_configs(s))
    missing = missing_runs(names, runs)
    if missing:
        return [
            not_applicable(
                "ls/over-interpolates",
                "least squares under vs over",
                f"runs not trained: {', '.join(missing)}",
            )
        ]
    diverged = divergences({name: runs[name] for name in names})
    if diverged:  # no final iterate to compare with A⁺b, no loss floor
        return [not_applicable("ls/over-interpolates", "least squares under vs over", "; ".join(diverged))]
    under, over = measure.least_squares_run(runs["ls-under"]), measure.least_squares_run(runs["ls-over"])
    floors = measure_floors(s, runs, under.f_star)
    lab.save_table(
        "least_squares",
        {
            f"{n}_{k}": v
            for n, r in (("ls-under", under), ("ls-over", over))
            for k, v in (("epoch", r.epochs), ("gap", r.gap))
        },
    )
    lab.save_table(
        "least_squares_floors",
        {
            "step": [f.step for f in floors for _ in f.per_seed],
            "seed": [i for f in floors for i in range(len(f.per_seed))],
            "window_first_half": [v for f in floors for v in f.first_half],
            "window_second_half": [v for f in floors for v in f.second_half],
            "theory": [f.theory for f in floors for _ in f.per_seed],
        },
    )
    fig = figures.least_squares_figure(
        {
            f"{s.n}×{s.dims[0]}, step {g:g}, seed 0": (e, gap)
            for g, (e, gap) in floor_curves(s, runs, under.f_star).items()
        }
        | {f"{s.n}×{s.dims[1]}, step {max(s.floor_steps):g}": (over.epochs, over.gap)},
        {f"{s.n}×{s.dims[0]}": under.norms, f"{s.n}×{s.dims[1]}": over.norms},
        floors,
        s.epochs - s.window_epochs,
        shapes=(f"{s.n}×{s.dims[0]}", f"{s.n}×{s.dims[1]}"),
    )
    lab.save_figure(fig, "least-squares")
    distance = float((over.theta - over.x_star).norm() / over.x_star.norm())
    return [
        claims.ls_over_interpolates_claim(
            distance, float(over.gap[0]), float(over.gap[-1]), shape=(s.n, s.dims[1])
        ),
        claims.ls_individual_gradients_claim(under.norms, over.norms),
        claims.ls_over_converges_faster_claim(
            float(under.gap[-1] / under.gap[0]), float(over.gap[-1] / over.gap[0])
        ),
        claims.ls_floor_scales_with_step_claim(
            floors,
            window=f"mean of f − f* over the last {s.window_epochs} of {s.epochs} epochs, in two halves",
            seeds=s.floor_seeds,
            sampler="iid (uniform, with replacement)",
        ),
    ]


def measure_floors(s: LeastSquaresSettings, runs: dict[str, Run], f_star: float) -> list[measure.Floor]:
    """The `Floor` of every step of `s.floor_steps`: its runs' gaps over the averaging window,
    and the exact stationary excess loss of iid SGD on the same A, b."""
    a, b, _ = measure.problem(runs["ls-under"])
    by_step: dict[float, list[np.ndarray]] = {}
    for name, (g, _) in floor_runs(s).items():
        by_step.setdefault(g, []).append(runs[name].epochs("train_loss")[1] - f_star)
    return [
        measure.floor(g, gaps, s.window_epochs, measure.stationary_excess_loss(a.numpy(), b.numpy(), g))
        for g, gaps in by_step.items()
    ]


def floor_curves(s: LeastSquaresSettings, runs: dict[str, Run], f_star: float) -> dict[float, tuple]:
    """Step → (epochs, gap) of the seed-0 floor run at every floor step, for the figure."""
    out = {}
    for name, (g, seed) in floor_runs(s).items():
        if seed == 0:
            e, loss = runs[name].epochs("train_loss")
            out[g] = (e, loss - f_star)
    return out

"""Part 3 of `qualitative-sgd`: least squares f(x) = Σ_i ½(a_i x − b_i)², A ∈ R^(200×100)
(under-parameterized: a unique solution with large individual gradients) vs R^(200×1000)
(over-parameterized: interpolation, ∇f_i(x*) = 0), single-sample SGD from x_0 = 0.

x* is computed exactly (float64 least squares: the unique solution, or the minimum-norm
interpolator A⁺b, the point SGD from 0 must reach since its iterates stay in A's row space), and
the individual gradient norms at x* come from sgdlab.gradients on the linear model at x*.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ...gradients import per_sample_gram
from ...params import set_flat_params
from ...store import Run
from ..base import Claim, Lab, decide, divergences, missing_runs, not_applicable
from . import figures
from .settings import LeastSquaresSettings

if TYPE_CHECKING:
    from ...engine import Parts


def ls_config(s: LeastSquaresSettings, dim: int, step: float) -> dict:
    """A least-squares run: f(x) = Σ_i ½(a_iᵀx − b_i)² with A ∈ R^(n×dim) scaled into the
    unit ball, a bias-free linear model from x_0 = 0, float64, single-sample SGD at `step`,
    with per-epoch evaluation and per-sample gradients every 5 epochs."""
    return {
        "seed": 0,
        "threads": 1,
        "dtype": "float64",
        "data": {
            "name": "least-squares",
            "n_train": s.n,
            "n_test": 0,
            "dim": dim,
            "noise": s.noise,
            "normalize": "unit-ball",
        },
        "model": {"name": "linear", "bias": False, "init": "zeros"},
        "optim": {"name": "sgd", "lr": step},
        "train": {"batch_size": 1, "epochs": s.epochs, "loss": "squared"},
        "probes": {
            "use": ["eval", "gradients"],
            "eval": {"schedule": "epoch"},
            "gradients": {"schedule": "epoch:5", "batch": "eval", "n_eval": s.n},
        },
    }


def configs(s: LeastSquaresSettings) -> dict[str, dict]:
    """The three runs: under-parameterized at both steps, over-parameterized at the larger one."""
    under, over = s.dims
    big, small = s.steps
    return {
        "ls-under": ls_config(s, under, big),
        "ls-under-small-step": ls_config(s, under, small),
        "ls-over": ls_config(s, over, big),
    }


def solution(run: Run) -> tuple[torch.Tensor, torch.Tensor, float, Parts]:
    """(x*, the final iterate, f(x*) as a per-sample mean, parts) of a run's problem."""
    from ... import prepare

    parts = prepare(run.config)
    a, b = parts.data.train.x.double(), parts.data.train.y.double()
    x_star = (
        torch.linalg.lstsq(a, b[:, None], driver="gelsd").solution[:, 0]
        if a.shape[0] >= a.shape[1]
        else torch.linalg.pinv(a) @ b
    )
    f_star = float((0.5 * (a @ x_star - b) ** 2).mean())
    final = run.checkpoint("final.pt")
    theta = torch.cat([v.reshape(-1) for v in final.values()]).double()
    return x_star, theta, f_star, parts


def gradient_norms_at(parts: Parts, x_star: torch.Tensor) -> np.ndarray:
    """‖∇f_i(x*)‖ of every training point, the model's parameters set to `x_star`."""
    set_flat_params(parts.model, x_star.to(next(parts.model.parameters()).dtype))
    x, y = parts.data.train.x, parts.data.train.y
    return per_sample_gram(parts.model, parts.loss, x, y).norms.numpy()


def least_squares_part(lab: Lab, s: LeastSquaresSettings, runs: dict[str, Run]) -> list[Claim]:
    """Part 3 (Giselsson, "Stochastic gradient descent: qualitative convergence behavior"):
    the gap f(x_k) − f(x*) per epoch (x* the exact solution, A⁺b when over-parameterized),
    table, figure and four claims:

    - `ls/over-interpolates`: ‖x − A⁺b‖/‖A⁺b‖ ≤ 1e-6 and the gap falls to ≤ 1e-10 of its start.
    - `ls/individual-gradients-at-solution`: max_i ‖∇f_i(x*)‖ (over) ≤ 1e-8 × (under).
    - `ls/over-converges-faster`: the over case's gap end/start is ≥ 1e6× smaller.
    - `ls/under-floor-scales-with-step`: the ratio of the under case's loss floors (mean gap
      over the last `floor_fraction` of epochs) at the two steps is within a factor 2 of the
      step ratio.

    Not applicable when a run is missing or diverged."""
    names = list(configs(s))
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
    info: dict[str, dict[str, Any]] = {}
    for name in names:
        x_star, theta, f_star, parts = solution(runs[name])
        e, loss = runs[name].epochs("train_loss")
        info[name] = {
            "x_star": x_star,
            "theta": theta,
            "f_star": f_star,
            "epochs": e,
            "gap": loss - f_star,
            "norms": gradient_norms_at(parts, x_star),
            "run": runs[name],
        }
    under, small, over = (info[n] for n in names)
    lab.save_table(
        "least_squares",
        {f"{n}_{k}": v for n in names for k, v in (("epoch", info[n]["epochs"]), ("gap", info[n]["gap"]))},
    )
    figures.least_squares(
        lab.figure("least-squares"),
        {
            f"{s.n}×{s.dims[0]}, step {s.steps[0]:g}": (under["epochs"], under["gap"]),
            f"{s.n}×{s.dims[0]}, step {s.steps[1]:g}": (small["epochs"], small["gap"]),
            f"{s.n}×{s.dims[1]}, step {s.steps[0]:g}": (over["epochs"], over["gap"]),
        },
        {f"{s.n}×{s.dims[0]}": under["norms"], f"{s.n}×{s.dims[1]}": over["norms"]},
    )
    dist = float((over["theta"] - over["x_star"]).norm() / over["x_star"].norm())
    rel_gap = {n: float(info[n]["gap"][-1] / info[n]["gap"][0]) for n in names}
    claims = [
        decide(
            "ls/over-interpolates",
            "over-parameterized (200×1000): SGD from 0 with a constant step "
            "converges to the minimum-norm interpolator A⁺b (zero loss)",
            dist <= 1e-6 and rel_gap["ls-over"] <= 1e-10,
            headline=f"‖x − A⁺b‖/‖A⁺b‖ = {dist:.1g}, loss {over['gap'][-1]:.1g}",
            meaning="with ∇f_i(x*) = 0 for every i a constant step converges, here to the minimum norm",
            distance_to_pinv=dist,
            final_loss=float(over["gap"][-1]),
            loss_relative_to_start=rel_gap["ls-over"],
            tolerance="distance ≤ 1e-6, loss ≤ 1e-10 × start",
        )
    ]
    n_under, n_over = float(np.max(under["norms"])), float(np.max(over["norms"]))
    claims.append(
        decide(
            "ls/individual-gradients-at-solution",
            "at the solution the individual gradients are "
            "large in the under-parameterized case and 0 in the over-parameterized one",
            n_over <= 1e-8 * n_under,
            headline=f"max ‖∇f_i(x*)‖ {n_under:.3g} vs {n_over:.1g}",
            meaning="individual functions agree on the minimum only when the model can interpolate",
            max_norm_under=n_under,
            median_norm_under=float(np.median(under["norms"])),
            max_norm_over=n_over,
        )
    )
    claims.append(
        decide(
            "ls/over-converges-faster",
            "SGD converges much faster in the over-parameterized case: "
            "its loss gap falls ≥ 1e6× further than the under-parameterized one over the same epochs",
            rel_gap["ls-over"] * 1e6 <= rel_gap["ls-under"],
            headline=f"(f − f*) end/start: {rel_gap['ls-under']:.2g} vs {rel_gap['ls-over']:.2g}",
            meaning="local convergence is slow where the individual functions disagree",
            gap_end_over_start=rel_gap,
        )
    )
    tail = max(1, int(len(under["gap"]) * s.floor_fraction))
    floors = {n: float(np.mean(info[n]["gap"][-tail:])) for n in ("ls-under", "ls-under-small-step")}
    ratio = floors["ls-under"] / floors["ls-under-small-step"]
    step_ratio = s.steps[0] / s.steps[1]
    claims.append(
        decide(
            "ls/under-floor-scales-with-step",
            f"under-parameterized: the loss floor of constant-step "
            f"SGD scales with the step (steps {s.steps[0]:g} and {s.steps[1]:g})",
            0.5 * step_ratio <= ratio <= 2 * step_ratio and all(v > 0 for v in floors.values()),
            headline=f"floor ratio {ratio:.2f} for a step ratio {step_ratio:g}",
            meaning="a constant step converges to a noise ball whose size is set by the step",
            floor_excess_loss=floors,
            floor_ratio=ratio,
            step_ratio=step_ratio,
            tolerance="floor ratio within a factor 2 of the step ratio (∝ γ)",
            floor_epochs=f"mean of f − f* over the last {tail} recorded epochs",
        )
    )
    return claims

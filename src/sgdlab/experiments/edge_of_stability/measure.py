"""What `edge-of-stability` measures: per run, the full-batch training loss at every step and
λ_max where the `hessian` probe measured it; and the cut's continuation, which is not a run of
its own but GD at the lowered step from the parent run's saved θ (the engine and probes of a
run, kept in memory, its numbers saved as tables/cut.parquet).

Tables (DIR/tables): edge.parquet (one row per GD run: η, onset, plateau, losses, slope — the
numbers its claims were decided from) and cut.parquet (the continuation: absolute step, loss,
λ_max, training error), with cut_end.parquet (status, divergence step) and cut.json, what it
was computed for (reused while that matches).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ...config import config_to_toml, load_config
from ...params import set_flat_params
from ...store import Run, RunDir
from ..base import Claim, Lab
from .claims import Sharpness
from .configs import continuation_config
from .settings import Settings

LAMBDA = "hessian_lambda_max"
LOSS = "batch_loss"


@dataclass(frozen=True)
class Trajectory:
    """One GD trajectory up to its horizon: the training loss at `loss_steps` (every step),
    the sharpness, how the run ended, and `goal_step`, the first step whose training accuracy
    reached the goal (None: it never did, and the trajectory runs to the step cap)."""

    name: str
    eta: float
    loss_steps: np.ndarray
    loss: np.ndarray
    sharpness: Sharpness
    status: str = "completed"
    diverged_at: int | None = None
    goal_step: int | None = None

    @property
    def time(self) -> np.ndarray:
        """Time t = η·k at the sharpness measurements (the gradient-flow clock)."""
        return self.eta * np.asarray(self.sharpness.steps, dtype=np.float64)


def goal_step(steps: np.ndarray, train_error: np.ndarray, acc_goal: float | None) -> int | None:
    """The first step whose training accuracy 1 − error is ≥ `acc_goal` (None: never, or no goal)."""
    if acc_goal is None:
        return None
    hits = np.flatnonzero(1 - np.asarray(train_error, dtype=np.float64) >= acc_goal - 1e-12)
    return int(np.asarray(steps)[hits[0]]) if len(hits) else None


def up_to(
    name: str,
    eta: float,
    series: dict[str, tuple[np.ndarray, np.ndarray]],
    acc_goal: float | None,
    status: str = "completed",
    diverged_at: int | None = None,
) -> Trajectory:
    """The trajectory from `series` (LOSS, LAMBDA and train_error, each (steps, values)),
    cut at the first step whose training accuracy reaches `acc_goal` (the paper's stopping
    rule); λ_max values that are not finite (a diverging run) are left out."""
    goal = goal_step(*series["train_error"], acc_goal)
    end = np.inf if goal is None else goal
    steps, loss = (np.asarray(a) for a in series[LOSS])
    s_steps, s_values = (np.asarray(a) for a in series[LAMBDA])
    keep = (s_steps <= end) & np.isfinite(s_values)
    return Trajectory(
        name,
        eta,
        steps[steps <= end],
        np.asarray(loss[steps <= end], dtype=np.float64),
        Sharpness(eta, s_steps[keep], np.asarray(s_values[keep], dtype=np.float64)),
        status,
        diverged_at,
        goal,
    )


def trajectory(name: str, run: Run, acc_goal: float | None) -> Trajectory:
    """The trajectory of run `name` up to its accuracy goal: its per-step loss (θ_final's
    training loss at the last step) and λ_max series, η from its config."""
    steps, loss = run.series(LOSS)
    final = run.final.get("train_loss")
    end = int(run.summary.get("steps", steps[-1] + 1 if len(steps) else 0))
    if final is not None and (not len(steps) or steps[-1] < end):
        steps, loss = np.append(steps, end), np.append(loss, final)
    series = {LOSS: (steps, loss), LAMBDA: run.series(LAMBDA), "train_error": run.series("train_error")}
    return up_to(
        name, float(run.config.optim.lr), series, acc_goal, run.status, run.summary.get("diverged_at")
    )


def parent_theta(run: Run, step: int) -> torch.Tensor:
    """θ at `step` as the run saved it (checkpoint.iterates); a ValueError when it did not."""
    for k, path in RunDir(run.path).iterates():
        if k == step:
            return torch.load(path, weights_only=True)
    raise ValueError(f"run {run.path.name} saved no iterate at step {step}")


def _cut_record(s: Settings, parent: Run) -> dict[str, Any]:
    """What the continuation depends on: its config, the cut, and the parent's config."""
    return {
        "continuation": config_to_toml(load_config(raw=continuation_config(s))),
        "at": s.drop.at,
        "parent": (parent.path / "config.toml").read_text(encoding="utf-8"),
    }


def continue_after_cut(
    s: Settings, parent: Run
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], str, int | None]:
    """GD at η' = 2/new_threshold from the parent's θ at the cut, for the cut's steps, with the
    same probes as every run (engine and probes of `runner`, in memory): its LOSS, LAMBDA and
    train_error series (absolute steps: the cut's step + k), status and divergence step."""
    from ... import runner

    parts = runner.prepare(continuation_config(s))
    theta = parent_theta(parent, s.drop.at)
    set_flat_params(parts.model, theta.to(next(parts.model.parameters()).dtype))
    result = runner.start(parts)
    table = result.metrics
    steps = np.asarray(table["step"].to_numpy(zero_copy_only=False)) + s.drop.at
    out = {}
    for key in (LOSS, LAMBDA, "train_error"):
        values = np.asarray(table[key].to_numpy(zero_copy_only=False), dtype=np.float64)
        out[key] = (steps[np.isfinite(values)], values[np.isfinite(values)])
    final = result.summary.get("final", {}).get("train_loss")
    if final is not None:
        k, v = out[LOSS]
        out[LOSS] = (np.append(k, result.summary["steps"] + s.drop.at), np.append(v, final))
    return out, result.status, result.summary.get("diverged_at")


def cut_trajectory(lab: Lab, s: Settings, parent: Run) -> Trajectory:
    """The continuation after the cut: computed once per settings and parent (`Lab.simulate_once`;
    tables/cut.json holds what it was computed for), read back from tables/cut.parquet (the
    series, long form) and tables/cut_end.parquet (how it ended)."""

    def compute() -> dict[str, dict[str, Any]]:
        series, status, diverged_at = continue_after_cut(s, parent)
        kinds = list(series)
        return {
            "cut": {
                "kind": [k for k in kinds for _ in series[k][0]],
                "step": np.concatenate([series[k][0] for k in kinds]).astype(np.int64),
                "value": np.concatenate([series[k][1] for k in kinds]),
            },
            "cut_end": {"status": [status], "diverged_at": [-1 if diverged_at is None else diverged_at]},
        }

    message = f"cut: continuing {parent.path.name} from step {s.drop.at} at η = 2/{s.drop.new_threshold:g}"
    lab.simulate_once("cut", _cut_record(s, parent), compute, message)
    c, end = lab.load_table("cut"), lab.load_table("cut_end")
    series = {
        k: (c["step"][c["kind"] == k], c["value"][c["kind"] == k]) for k in (LOSS, LAMBDA, "train_error")
    }
    diverged_at = int(end["diverged_at"][0])
    return up_to(
        "cut",
        2 / s.drop.new_threshold,
        series,
        s.acc_goal,
        str(end["status"][0]),
        None if diverged_at < 0 else diverged_at,
    )


def edge_row(study: str, threshold: float, t: Trajectory, claims: dict[str, Claim]) -> dict[str, Any]:
    """One row of tables/edge.parquet: the GD run at 2/η = `threshold` and the numbers its
    sharpening, edge and loss claims were decided from (NaN where a claim had none)."""

    def get(kind: str, key: str) -> float:
        value = claims[kind].evidence.get(key) if kind in claims else None
        return math.nan if value is None or isinstance(value, str) else float(value)

    return {
        "run": t.name,
        "study": study,
        "eta": t.eta,
        "threshold": threshold,
        "steps": int(t.loss_steps[-1]) if len(t.loss_steps) else 0,
        "accuracy_goal_step": math.nan if t.goal_step is None else t.goal_step,
        "status": t.status,
        "onset_step": get("edge", "onset_step"),
        "plateau_ratio_median": get("edge", "plateau_ratio_median"),
        "fraction_in_band": get("edge", "fraction_in_band"),
        "loss_at_onset": get("loss", "loss_at_onset"),
        "loss_at_end": get("loss", "loss_at_end"),
        "rising_steps_after_onset": get("loss", "rising_steps_after_onset"),
        "sharpening_slope": get("sharpening", "slope_per_step"),
        "sharpening_slope_se": get("sharpening", "slope_se"),
        "sharpness_at_start": float(t.sharpness.values[0]) if len(t.sharpness.values) else math.nan,
    }

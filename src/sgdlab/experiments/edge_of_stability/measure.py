"""What `edge-of-stability` measures: per run, the full-batch training loss at every step and
λ_max where the `hessian` probe measured it; and the cut's continuation, which is not a run of
its own but GD at the lowered step from the parent run's saved θ (the engine and probes of a
run, kept in memory, its numbers saved as tables/cut.parquet).

Tables (DIR/tables): edge.parquet (one row per GD run: η, onset, plateau, losses, slope — the
numbers its claims were decided from) and cut.parquet (the continuation: absolute step, loss,
λ_max), with cut.json, the settings it was computed for (reused while they match).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ...config import config_to_toml, load_config
from ...params import set_flat_params
from ...store import Run, RunDir
from ...store.files import write_json
from ..base import Claim, Lab
from .claims import Sharpness
from .configs import continuation_config
from .settings import Settings

LAMBDA = "hessian_lambda_max"
LOSS = "batch_loss"


@dataclass(frozen=True)
class Trajectory:
    """One GD trajectory: the training loss at `loss_steps` (every step, θ_final last), the
    sharpness, and how the run ended."""

    name: str
    eta: float
    loss_steps: np.ndarray
    loss: np.ndarray
    sharpness: Sharpness
    status: str = "completed"
    diverged_at: int | None = None

    @property
    def time(self) -> np.ndarray:
        """Time t = η·k at the sharpness measurements (the gradient-flow clock)."""
        return self.eta * np.asarray(self.sharpness.steps, dtype=np.float64)


def trajectory(name: str, run: Run) -> Trajectory:
    """The trajectory of run `name`: its per-step loss (with θ_final's training loss at the
    last step) and λ_max series, η from its config."""
    eta = float(run.config.optim.lr)
    steps, loss = run.series(LOSS)
    final = run.final.get("train_loss")
    end = int(run.summary.get("steps", steps[-1] + 1 if len(steps) else 0))
    if final is not None and (not len(steps) or steps[-1] < end):
        steps, loss = np.append(steps, end), np.append(loss, final)
    s_steps, s_values = run.series(LAMBDA)
    return Trajectory(
        name,
        eta,
        np.asarray(steps),
        np.asarray(loss, dtype=np.float64),
        Sharpness(eta, np.asarray(s_steps), np.asarray(s_values, dtype=np.float64)),
        run.status,
        run.summary.get("diverged_at"),
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


def continue_after_cut(s: Settings, parent: Run) -> Trajectory:
    """GD at η' = 2/new_threshold from the parent's θ at the cut, for the cut's steps, with the
    same probes as every run (engine and probes of `runner`, in memory); steps are absolute
    (the cut's step + k)."""
    from ... import runner

    parts = runner.prepare(continuation_config(s))
    theta = parent_theta(parent, s.drop.at)
    set_flat_params(parts.model, theta.to(next(parts.model.parameters()).dtype))
    result = runner.start(parts)
    table = result.metrics
    steps = np.asarray(table["step"].to_numpy(zero_copy_only=False))
    loss = np.asarray(table[LOSS].to_numpy(zero_copy_only=False), dtype=np.float64)
    lam = np.asarray(table[LAMBDA].to_numpy(zero_copy_only=False), dtype=np.float64)
    has_loss, has_lam = np.isfinite(loss), np.isfinite(lam)
    loss_steps, loss = steps[has_loss], loss[has_loss]
    final = result.summary.get("final", {}).get("train_loss")
    if final is not None:
        loss_steps, loss = np.append(loss_steps, result.summary["steps"]), np.append(loss, final)
    eta = 2 / s.drop.new_threshold
    return Trajectory(
        "cut",
        eta,
        loss_steps + s.drop.at,
        loss,
        Sharpness(eta, steps[has_lam] + s.drop.at, lam[has_lam]),
        result.status,
        result.summary.get("diverged_at"),
    )


def cut_trajectory(lab: Lab, s: Settings, parent: Run) -> Trajectory:
    """The continuation after the cut: computed once per settings and parent (tables/cut.json
    holds what it was computed for), read back from tables/cut.parquet afterwards."""
    record = lab.out / "tables" / "cut.json"
    wanted = _cut_record(s, parent)
    if not (record.is_file() and json.loads(record.read_text(encoding="utf-8")) == wanted):
        lab.log(f"cut: continuing {parent.path.name} from step {s.drop.at} at η = 2/{s.drop.new_threshold:g}")
        t = continue_after_cut(s, parent)
        n_loss, n_lam = len(t.loss_steps), len(t.sharpness.steps)
        lab.save_table(
            "cut",
            {
                "kind": ["loss"] * n_loss + ["sharpness"] * n_lam,
                "step": np.concatenate([t.loss_steps, t.sharpness.steps]).astype(np.int64),
                "value": np.concatenate([t.loss, t.sharpness.values]),
                "eta": np.full(n_loss + n_lam, t.eta),
                "status": [t.status] * (n_loss + n_lam),
            },
        )
        write_json(record, wanted)
    c = lab.load_table("cut")
    is_loss = c["kind"] == "loss"
    eta = float(c["eta"][0]) if len(c["eta"]) else 2 / s.drop.new_threshold
    diverged = str(c["status"][0]) == "diverged" if len(c["status"]) else False
    return Trajectory(
        "cut",
        eta,
        c["step"][is_loss],
        c["value"][is_loss],
        Sharpness(eta, c["step"][~is_loss], c["value"][~is_loss]),
        "diverged" if diverged else "completed",
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

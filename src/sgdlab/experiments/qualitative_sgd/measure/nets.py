"""What `qualitative-sgd` measures in parts 4 and 6: the residual nets' final loss, error,
gradients and agreement, and the lecture's step-size table of each rule."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ....gradients import per_sample_gram
from ....runner import prepare
from ....store import Run


def series(run: Run, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(epochs, values) of metric `name`, empty when the run did not record it."""
    if name not in run.metrics.column_names:
        return np.array([]), np.array([])
    return run.epochs(name)


def last(run: Run, name: str) -> float:
    """The last recorded value of metric `name` (NaN if none)."""
    _, v = series(run, name)
    return float(v[-1]) if len(v) else math.nan


def final_norms(run: Run) -> np.ndarray:
    """‖∇f_i‖ of every training point at the final iterate (sgdlab.gradients on final.pt)."""
    parts = prepare(run.config)
    parts.model.load_state_dict(run.checkpoint("final.pt"))
    x, y = parts.data.train.x, parts.data.train.y
    return per_sample_gram(parts.model, parts.loss, x, y).norms.numpy()


@dataclass(frozen=True)
class Net:
    """One trained net of part 4: status, final training loss and error, the best full-gradient
    norm so far at the end, ‖∇f_i‖ of every training point at the end, μ at the end and its
    median over the second half of training."""

    status: str
    loss: float
    error: float
    best_gradient: float
    norms: np.ndarray
    mu_end: float
    mu_second_half: float


def net(run: Run) -> Net:
    """`Net` of a trained run."""
    _, mu = series(run, "grad_mu")
    return Net(
        status=run.status,
        loss=float(run.final.get("train_loss", math.nan)),
        error=float(run.final.get("train_error", math.nan)),
        best_gradient=last(run, "grad_full_norm_best"),
        norms=final_norms(run),
        mu_end=float(mu[-1]) if len(mu) else math.nan,
        mu_second_half=float(np.median(mu[len(mu) // 2 :])) if len(mu) else math.nan,
    )


def rule_table(run: Run, epochs: tuple[int, ...]) -> list[dict[str, Any]]:
    """The lecture's table: epoch, step size η, batch-gradient norm ‖∇f_i(x_k)‖ at the epoch's
    first step, full-gradient norm; NaN past a divergence. At the final epoch (no step follows)
    η and the batch norm are the last recorded ones (the first step of the previous epoch)."""
    rows = []
    cols = {k: dict(zip(*series(run, k), strict=True)) for k in ("lr", "update_norm", "grad_full_norm")}
    final_epoch = run.summary.get("epochs")
    for e in epochs:
        row: dict[str, float] = {"epoch": e}
        for k, v in cols.items():
            value = v.get(float(e), math.nan)
            if math.isnan(value) and run.status == "completed" and e == final_epoch and v:
                value = v[max(v)]  # no step after the last epoch: its last recorded step's value
            row[k] = float(value)
        rows.append(row)
    return rows


@dataclass(frozen=True)
class RuleRun:
    """One run of part 6: status, the step where it diverged (None if it did not), the first
    and the last step size of its table, the final training loss and the last recorded
    full-gradient norm."""

    status: str
    diverged_at: int | None
    first_step: float
    loss: float
    final_gradient: float
    final_step: float = math.nan


def rule_run(run: Run, table: list[dict[str, Any]]) -> RuleRun:
    """`RuleRun` of a trained run and its `rule_table`."""
    return RuleRun(
        status=run.status,
        diverged_at=run.summary.get("diverged_at"),
        first_step=float(table[0]["lr"]),
        loss=float(run.final.get("train_loss", math.nan)),
        final_gradient=last(run, "grad_full_norm"),
        final_step=float(table[-1]["lr"]),
    )

"""The noise sweep's measurements: what the sweep claims read of one trained run (`SweepRun`),
its training curves for the figure, and the sizes of the data it trained on."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ....runner import prepare
from ....store import Run


@dataclass(frozen=True)
class SweepRun:
    """What the sweep claims read of one run: its γ', schedule and seed, status, the training
    loss at the start, its median over the last quarter of the epochs and at the end, and the
    final training and test error (fractions)."""

    noise: float
    schedule: str
    seed: int
    status: str
    initial_loss: float
    tail_loss: float  # median training loss over the last quarter of the epochs
    final_loss: float
    train_error: float
    test_error: float
    diverged_at: int | None = None


def sweep_run(run: Run, noise: float, schedule: str, seed: int) -> SweepRun:
    """The `SweepRun` of a trained run (the median, because noisy runs jump from epoch to epoch)."""
    epochs, loss = run.epochs("train_loss")
    tail = loss[epochs >= 0.75 * epochs[-1]]
    final = run.final

    def number(key: str) -> float:
        value = final.get(key)
        return math.nan if value is None else float(value)

    return SweepRun(
        noise,
        schedule,
        seed,
        run.status,
        float(loss[0]),
        float(np.median(tail)) if len(tail) else math.nan,
        number("train_loss"),
        number("train_error"),
        number("test_error"),
        run.info.diverged_at if run.status == "diverged" else None,
    )


def sweep_curves(run: Run) -> dict[str, np.ndarray]:
    """A run's per-epoch training loss, training error and test error, for the figure."""
    epochs, loss = run.epochs("train_loss")
    return {
        "epoch": epochs,
        "train_loss": loss,
        "train_error": run.epochs("train_error")[1],
        "test_error": run.epochs("test_error")[1],
    }


def split_sizes(run: Run) -> tuple[int, int]:
    """(training, test) set sizes of the data `run` trained on: an error rate's resolution."""
    data = prepare(run.config).data
    return len(data.train), len(data.test)

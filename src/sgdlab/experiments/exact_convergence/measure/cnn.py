"""The CNN study's measurements: each network's per-epoch training and validation loss and
error (`History`), the epochs at which its training error first reaches 0 (E0) and from which
it stays 0 (Z), and the least-squares trends of its losses after interpolation (`Trend`,
`LossTrend`); `Interpolation` is what the with/without-skips contrast reads of one network.

The window the regime-after-interpolation claims read is the epochs ≥ max(Z, E/2), E the last
epoch. A trend is judged against the scatter of its own fit (`stats.slope_and_error`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ....stats import slope_and_error
from ..rates import SIGNIFICANCE
from ..settings import CnnModel

SERIES = ("train_loss", "train_error", "test_loss", "test_error")
# Fewest epochs in the window for a slope and a standard error worth the name.
MIN_WINDOW = 5


@dataclass(frozen=True)
class History:
    """Per-epoch measurements of one run, aligned on `epochs`."""

    epochs: np.ndarray
    values: dict[str, np.ndarray]

    @classmethod
    def of(cls, run) -> History:
        """The per-epoch train/test loss and error of a finished run."""
        epochs, _ = run.epochs("train_loss")
        return cls(epochs, {name: run.epochs(name)[1] for name in SERIES})

    def series(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Each measurement as (epochs, values), the form `figures.cnn_figure` takes."""
        return {name: (self.epochs, v) for name, v in self.values.items()}

    @property
    def end(self) -> int:
        """The last recorded epoch E (0 when nothing was recorded)."""
        return round(float(self.epochs[-1])) if len(self.epochs) else 0


def first_zero(epochs: np.ndarray, error: np.ndarray) -> int | None:
    """The first epoch at which the error is exactly 0 (every training point classified)."""
    hit = np.flatnonzero(np.asarray(error) == 0)
    return round(float(epochs[hit[0]])) if len(hit) else None


def zero_from(epochs: np.ndarray, error: np.ndarray) -> int | None:
    """The epoch from which the error is 0 at every later epoch (None: not 0 at the end)."""
    wrong = np.flatnonzero(np.asarray(error) != 0)
    if not len(error) or (len(wrong) and wrong[-1] == len(error) - 1):
        return None
    return round(float(epochs[wrong[-1] + 1 if len(wrong) else 0]))


@dataclass(frozen=True)
class Trend:
    """The least-squares slope of a measurement against log₁₀ epoch over a window of epochs,
    with the standard error of the fit (`rates.slope_and_error`)."""

    slope: float
    stderr: float
    window: tuple[int, int]  # first and last epoch of the window
    points: int

    @property
    def falls(self) -> bool:
        """Whether slope < −SIGNIFICANCE·stderr: falling beyond the scatter about the fit."""
        return self.slope < -SIGNIFICANCE * self.stderr

    @property
    def rises(self) -> bool:
        """Whether slope > SIGNIFICANCE·stderr: rising beyond the scatter about the fit."""
        return self.slope > SIGNIFICANCE * self.stderr

    def evidence(self, name: str) -> dict[str, Any]:
        """The trend as claim evidence, its keys prefixed with `name`."""
        return {f"{name}_slope": self.slope, f"{name}_slope_stderr": self.stderr}

    def __str__(self) -> str:
        return f"{self.slope:.3g} ± {self.stderr:.2g}"


def trend(epochs: np.ndarray, values: np.ndarray, *, log: bool) -> Trend:
    """The trend of `values` (of log₁₀ values if `log`) against log₁₀ epoch (≥ 3 epochs > 0)."""
    e, v = np.asarray(epochs, np.float64), np.asarray(values, np.float64)
    b, se = slope_and_error(np.log10(e), np.log10(v) if log else v)
    return Trend(b, se, (round(float(e[0])), round(float(e[-1]))), len(e))


def after_interpolation(h: History) -> tuple[np.ndarray, str | None]:
    """The window the regime-after-interpolation claims read: the epochs ≥ max(Z, E/2) as a
    mask of `h.epochs`, or an empty mask and the reason it does not exist (no Z, or fewer
    than MIN_WINDOW epochs in it)."""
    z = zero_from(h.epochs, h.values["train_error"])
    none = np.zeros(len(h.epochs), dtype=bool)
    if z is None:
        why = (
            "0 training error never reached" if first_zero(h.epochs, h.values["train_error"]) is None else ""
        )
        return none, why or "training error not 0 at the end"
    window = (h.epochs >= max(z, h.end / 2)) & (h.epochs > 0)
    if window.sum() < MIN_WINDOW:
        return none, f"fewer than {MIN_WINDOW} epochs after 0 training error to fit a trend"
    return window, None


@dataclass(frozen=True)
class LossTrend:
    """The training loss's log-log trend over the window after interpolation (`whole`) and
    over the later half of it on a log-epoch axis (`late`): a loss that fell early in the window
    and then sat at a floor still has a falling `whole`, but not a falling `late`."""

    whole: Trend
    late: Trend

    @property
    def falls(self) -> bool:
        """Whether the loss falls (beyond the fit's noise) over the window and its later half."""
        return self.whole.falls and self.late.falls

    def evidence(self) -> dict[str, Any]:
        """Both trends as claim evidence."""
        return {
            **self.whole.evidence("log_loss_vs_log_epoch"),
            **self.late.evidence("later_half_log_loss_vs_log_epoch"),
            "window_epochs": list(self.whole.window),
            "later_half_epochs": list(self.late.window),
        }

    def __str__(self) -> str:
        return f"{self.whole} ({self.late} over the later half)"


def loss_trend(h: History) -> tuple[LossTrend | None, str | None]:
    """The training loss's `LossTrend` after interpolation, or None and why there is none
    (`after_interpolation`). The later half is the epochs ≥ the window's geometric midpoint
    (at least the last 3)."""
    window, why = after_interpolation(h)
    if why is not None:
        return None, why
    e, loss = h.epochs[window], h.values["train_loss"][window]
    late = e >= min(np.sqrt(e[0] * e[-1]), e[-3])
    return LossTrend(trend(e, loss, log=True), trend(e[late], loss[late], log=True)), None


@dataclass(frozen=True)
class Interpolation:
    """What the contrast claims read of one network: its title and depth (weight layers on
    the longest path), E0, Z, the last epoch, and the training-loss trend after Z (None without
    a window, or for a run that diverged: `why`)."""

    title: str
    depth: int
    first_zero: int | None
    zero_from: int | None
    epochs: int
    loss_trend: LossTrend | None
    why: str | None = None  # why there is no loss trend

    @classmethod
    def of(cls, title: str, depth: int, h: History, diverged: str | None = None) -> Interpolation:
        """The numbers of `h` (a diverged run has no Z and no trend, whatever it recorded)."""
        errors = h.values["train_error"]
        e0 = first_zero(h.epochs, errors) if len(errors) else None
        if diverged is not None:
            return cls(title, depth, e0, None, h.end, None, diverged)
        t, why = loss_trend(h)
        return cls(title, depth, e0, zero_from(h.epochs, errors), h.end, t, why)

    def epochs_at_zero(self) -> str:
        """E0–Z as text (one number when they agree), or "never" / "E0, not at the end"."""
        if self.zero_from is None:
            return "never" if self.first_zero is None else f"{self.first_zero}, not at the end"
        return (
            str(self.first_zero)
            if self.first_zero == self.zero_from
            else f"{self.first_zero}–{self.zero_from}"
        )


def cnn_row(m: CnnModel, run: Any, h: History) -> dict[str, object]:
    """Network `m`'s row of tables/cnn.parquet: status, size, depth, E0, Z and final values."""
    e0, z = first_zero(h.epochs, h.values["train_error"]), zero_from(h.epochs, h.values["train_error"])
    return {
        "network": m.key,
        "skips": m.skips,
        "depth": m.depth,
        "status": run.status,
        "n_params": run.info.n_params,
        "epochs": m.epochs,
        "first_zero_epoch": -1 if e0 is None else e0,
        "zero_from_epoch": -1 if z is None else z,
        **{f"final_{k}": float(v[-1]) if len(v) else math.nan for k, v in h.values.items()},
        "wall_time_s": run.info.wall_time_s,
    }

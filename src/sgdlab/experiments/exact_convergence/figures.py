"""Figures of `exact-convergence`, drawn from saved tables and runs only; each function returns
its matplotlib figure, which the Lab saves (PNG + SVG).

Linear study, one figure per dataset: loss, ‖w‖, direction error and normalized margin
against the step on log axes, with the theory drawn in (dashed): ‖ŵ‖²/(ηt) for the loss,
‖ŵ‖·ln t + c for the norm, c/ln t for the direction error, 1/‖ŵ‖ for the margin (c matched
at the last step). SGD: the median over seeds, with the range of the seeds shaded.

CNN study, one figure per network, the text's three panels: training loss and error (log
axes), training vs validation loss, training vs validation error; and one figure of all
networks together, the ResNet (with skips) dashed against the nets without skips.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from .measure import Curve, History, first_zero, select

PANELS = (
    ("loss", "training loss", "log"),
    ("w_norm", "‖w‖", "linear"),
    ("direction_error", "‖w/‖w‖ − ŵ/‖ŵ‖‖", "log"),
    ("margin", "min_n y_n wᵀx_n / ‖w‖", "linear"),
)


def _theory(name: str, c: Curve) -> np.ndarray | None:
    t, end = c.t.astype(np.float64), c.values
    if name == "loss":
        return c.w_hat_norm**2 / (c.lr * t)
    if name == "w_norm":
        return end["w_norm"][-1] + c.w_hat_norm * (np.log(t) - np.log(t[-1]))
    if name == "direction_error":
        with np.errstate(divide="ignore"):
            return end["direction_error"][-1] * np.log(t[-1]) / np.log(t)
    return None


def linear_figure(dataset: str, curves: list[Curve], table: dict[str, np.ndarray]) -> Figure:
    """The linear study's figure for one dataset: four log-time panels (training loss,
    ‖w‖, direction error ‖w/‖w‖ − ŵ/‖ŵ‖‖, normalized margin), GD solid and the SGD median
    over seeds dashed with the seeds' range shaded, and the theory dotted for GD:
    ‖ŵ‖²/(ηt), ‖ŵ‖ ln t + c, c/ln t (c matched at the last step) and the limit 1/‖ŵ‖."""
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    mine = [c for c in curves if c.dataset == dataset]
    for i, c in enumerate(mine):
        color = f"C{i}"
        label = f"{c.method.upper()} η={c.lr:g}" + (" (median of seeds)" if c.method == "sgd" else "")
        rows = select(table, dataset=dataset, method=c.method, lr=c.lr)
        for ax, (name, title, yscale) in zip(axes.flat, PANELS, strict=True):
            keep = c.t >= 1
            ax.plot(
                c.t[keep],
                c.values[name][keep],
                color=color,
                lw=1.5,
                ls="-" if c.method == "gd" else "--",
                label=label,
            )
            if c.method == "sgd":
                per_seed = np.stack(
                    [table[name][rows & (table["seed"] == seed)] for seed in np.unique(table["seed"][rows])]
                )
                ax.fill_between(
                    c.t[keep], per_seed.min(0)[keep], per_seed.max(0)[keep], color=color, alpha=0.15, lw=0
                )
            theory = _theory(name, c)
            if theory is not None and c.method == "gd":
                ax.plot(
                    c.t[c.t >= 10],
                    theory[c.t >= 10],
                    color=color,
                    lw=0.8,
                    ls=":",
                    label={"loss": "‖ŵ‖²/(ηt)", "w_norm": "‖ŵ‖ ln t + c", "direction_error": "c / ln t"}[name]
                    + f" (η={c.lr:g})",
                )
            ax.set(xscale="log", yscale=yscale, xlabel="step t", title=title)
    if mine:
        axes[1, 1].axhline(1 / mine[0].w_hat_norm, color="k", lw=0.8, ls=":", label="1/‖ŵ‖")
        axes[1, 1].set_ylim(bottom=max(axes[1, 1].get_ylim()[0], -0.5 / mine[0].w_hat_norm))
    for ax in axes.flat:
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, frameon=False)
    fig.suptitle(f"logistic regression on {dataset}: GD and SGD with a fixed step")
    fig.tight_layout()
    return fig


def cnn_figure(
    title: str, epochs: dict[str, tuple[np.ndarray, np.ndarray]], zero_epoch: int | None
) -> Figure:
    """`epochs[name]` = (epochs, values) of train_loss, train_error, test_loss, test_error."""
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(15, 4))
    e, v = epochs["train_loss"]
    left.plot(e[e > 0], v[e > 0], "C0", label="training loss")
    e, v = epochs["train_error"]
    left.plot(e[e > 0], _gaps_at_zero(v[e > 0]), "C3", marker=".", ms=3, label="training error")
    left.set(xlabel="epoch", title="training loss and error (log axes)")
    _log_scale(left, x=True)
    for ax, kind in ((middle, "loss"), (right, "error")):
        for split, color, label in (("train", "C0", "training"), ("test", "C1", "validation")):
            e, v = epochs[f"{split}_{kind}"]
            ax.plot(e, v, color, label=f"{label} {kind}")
        ax.set(xlabel="epoch", title=f"training vs validation {kind}")
    _log_scale(middle)
    for ax in (left, middle, right):
        if zero_epoch is not None:
            ax.axvline(
                zero_epoch, color="0.5", lw=0.8, ls=":", label=f"0 training error (epoch {zero_epoch})"
            )
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8, frameon=False)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


SKIPS_PANELS = (
    ("train_loss", "training loss (log axes)", True),
    ("train_error", "training error (log axes)", True),
    ("test_loss", "validation loss", False),
    ("test_error", "validation error", False),
)


def skips_figure(title: str, nets: dict[str, tuple[History, bool]]) -> Figure:
    """The with/without-skips contrast: `nets[title]` = (its History, whether it has skip
    connections), all on one set of four panels (training loss and error on log axes,
    validation loss and error), nets with skips dashed, each net's first epoch at 0 training
    error marked on the training-error panel, where the line breaks at epochs with error 0 and
    dots show lone epochs off 0."""
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    for i, (name, (h, skips)) in enumerate(nets.items()):
        style = {"color": f"C{i}", "ls": "--" if skips else "-", "lw": 1.3}
        label = f"{name} ({'with' if skips else 'no'} skips)"
        for ax, (key, _, log) in zip(axes.flat, SKIPS_PANELS, strict=True):
            e, v = h.epochs, h.values[key]
            if log:
                e, v = e[e > 0], _gaps_at_zero(v[e > 0])
            marks = {"marker": ".", "ms": 3} if key == "train_error" else {}  # a lone epoch off 0
            ax.plot(e, v, label=label, **style, **marks)
        e0 = first_zero(h.epochs, h.values["train_error"])
        if e0 is not None:
            axes[0, 1].axvline(e0, color=f"C{i}", lw=0.8, ls=":", label=f"{name}: first 0 at epoch {e0}")
    for ax, (_, panel_title, log) in zip(axes.flat, SKIPS_PANELS, strict=True):
        ax.set(xlabel="epoch", title=panel_title)
        if log:
            _log_scale(ax, x=True)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, frameon=False)
    _log_scale(axes[1, 0])
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _gaps_at_zero(values: np.ndarray) -> np.ndarray:
    """`values` with every value ≤ 0 as NaN: on a log axis the line breaks where the training
    error is 0, instead of joining the nonzero epochs on either side of a stretch at 0."""
    v = np.asarray(values, dtype=np.float64)
    return np.where(v > 0, v, np.nan)


def _log_scale(ax, x: bool = False) -> None:
    """Log axes where the plotted data allow them: a run that diverged in its first epoch
    leaves nothing positive to draw on a log scale."""
    lines = [
        (np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)) for line in ax.get_lines()
    ]
    if any(np.any((ys > 0) & np.isfinite(ys) & ((xs > 0) if x else True)) for xs, ys in lines):
        ax.set(yscale="log", **({"xscale": "log"} if x else {}))

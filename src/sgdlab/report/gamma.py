"""γ-principle curves of one or several runs: the three rows of the figures of “An optimization
principle of deep learning?” (anonymous ICLR 2020 submission)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from ..papers import GAMMA_2019  # noqa: E402
from ..store import Run  # noqa: E402
from .figures import LINESTYLES, loss_label, save_figure, spans_decades  # noqa: E402


def per_epoch_median(epoch: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The median of `values` over each whole epoch ⌊epoch⌋ (NaNs left out), placed at the
    epoch's middle: the solid per-epoch curve drawn over the faint per-step γ_k."""
    keys = np.floor(epoch).astype(int)
    ok = ~np.isnan(values)
    uniq = np.unique(keys[ok])
    return uniq + 0.5, np.array([np.median(values[ok & (keys == k)]) for k in uniq])


def gamma_figure(
    title: str,
    runs: dict[str, Run],
    *,
    level: float | None = None,
    notes: dict[str, str] | None = None,
) -> Figure:
    """Three rows as in the paper: normalized distance to θ* (dimensionless), training loss (log
    scale when it spans decades), γ (per step, faint; per-epoch median, solid; symmetric log
    scale). `level` draws a loss level on the loss row (e.g. the premise threshold); `notes`
    adds a remark to a run's legend entry. When the runs' lengths differ by more than 4×, the
    epoch axis is logarithmic past the first epoch. Returns the figure (not saved)."""
    fig, axes = plt.subplots(3, 1, figsize=(6.5, 9), sharex=True)
    notes = notes or {}
    lengths = []
    for i, (name, run) in enumerate(runs.items()):
        color = f"C{i}"
        style = {"ls": LINESTYLES[i % len(LINESTYLES)]}  # runs with equal curves stay visible
        label = f"{name} ({notes[name]})" if notes.get(name) else name
        table = run.metrics
        lengths.append(float(table["epoch"].to_numpy().max()) if table.num_rows else 0.0)
        if "gamma_dist" in table.column_names:
            e, d = run.epochs("gamma_dist")
            axes[0].plot(e, d, color=color, label=label, **style)
        if "train_loss" in table.column_names:
            e, loss = run.epochs("train_loss")
            axes[1].plot(e, np.maximum(loss, 1e-30), color=color, label=label, **style)
        if "gamma" in table.column_names:
            rows = table.filter(pc.is_valid(table["gamma"]))
            e, g = rows["epoch"].to_numpy(), rows["gamma"].to_numpy()
            axes[2].plot(e, g, ".", color=color, alpha=0.15, ms=2)
            me, mg = per_epoch_median(e, g)
            axes[2].plot(me, mg, color=color, label=label, **style)
    axes[2].axhline(0, color="k", lw=0.6)
    if level is not None:
        axes[1].axhline(level, color="k", lw=0.8, ls="--", label=f"loss level {level:g}")
    if lengths and min(lengths) > 0 and max(lengths) / min(lengths) > 4:
        axes[2].set_xscale("symlog", linthresh=1.0)
        axes[2].set_xlim(0, max(lengths))  # epochs are ≥ 0: no empty negative half
    finite = [abs(v) for line in axes[2].get_lines() for v in line.get_ydata() if np.isfinite(v) and v != 0]
    if finite:
        axes[2].set_yscale("symlog", linthresh=float(np.percentile(finite, 10)))
    axes[0].set(ylabel="‖θ_k − θ*‖ / ‖θ_0 − θ*‖", title=f"γ-principle: {title}")
    losses = [line.get_ydata() for line in axes[1].get_lines()]
    if losses and spans_decades(*losses, decades=1.0):
        axes[1].set_yscale("log")
    loss_name = loss_label(next(iter(runs.values())).config.train.loss) if runs else "loss"
    axes[1].set(ylabel=f"training {loss_name}")
    axes[2].set(ylabel="γ_k", xlabel="epoch")
    for ax in axes:
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return fig


def run_figure(run: Run, path: str | Path) -> Path | None:
    """The γ probe's figure of one run (`Probe.figure`): `gamma_figure` of the run alone,
    titled by its directory, saved at `path` (PNG, and SVG beside it); None when it holds no γ
    measurements (e.g. stopped before the replay pass)."""
    if "gamma_dist" not in run.metrics.column_names:
        return None
    fig = gamma_figure(f"{run.path.name} (after {GAMMA_2019.short})", {run.path.name: run})
    return save_figure(fig, path, dpi=110)

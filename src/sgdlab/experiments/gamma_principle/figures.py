"""Figures of `gamma-principle`, drawn from runs and saved tables only; each function returns its
matplotlib figure, which the Lab saves (PNG + SVG).

One figure per ablation, the three rows of the paper's figures (`report.gamma.gamma_figure`):
normalized distance to θ*, training loss with the common level, γ_k per step and per-epoch median.
One figure of the PCA view of the momentum and Adam paths (Li et al. 2018): log₁₀ loss contours
on the plane of each path's first two principal components, the projected path, and the SGD
update directions at its points as arrows.
"""

from __future__ import annotations

import math
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from ...report.gamma import gamma_figure
from ...store import Run


def figure_note(row: dict[str, Any], level: float) -> str:
    """A run's remark in the figure legend: whether it misses the premise or never reaches the
    common level (the slowest by definition)."""
    notes = [] if row["meets_premise"] else ["misses the premise"]
    if math.isinf(row["epochs_to_level"]):
        notes.append(f"never reaches {level:g}")
    return "; ".join(notes)


def ablation_figure(title: str, runs: dict[str, Run], level: float, rows: list[dict[str, Any]]) -> Figure:
    """The γ figure of one ablation's `runs` (label → run): distance, loss (with the common
    `level`) and γ against the epoch, each run's legend noting from its table row (`rows`, one per
    run with `variant`) whether it misses the premise or never reaches the level."""
    notes = {row["variant"]: figure_note(row, level) for row in rows}
    return gamma_figure(title, runs, level=level, notes=notes)


def _pca_panel(
    ax: Any, label: str, grid: dict[str, np.ndarray], path: dict[str, np.ndarray], numbers: dict
) -> None:
    n = int(round(math.sqrt(len(grid["a"]))))
    a, b, loss = (grid[k].reshape(n, n) for k in ("a", "b", "loss"))
    contours = ax.contour(a, b, np.log10(np.maximum(loss, 1e-12)), levels=20, cmap="viridis")
    ax.clabel(contours, fontsize=6, fmt="%.1f")
    ax.plot(path["pc1"], path["pc2"], "o-", color="C3", ms=3, label=f"{label} path")
    scale = np.hypot(path["sgd_pc1"], path["sgd_pc2"]).max() or 1.0
    span = max(np.ptp(a), np.ptp(b))
    ax.quiver(
        path["pc1"],
        path["pc2"],
        path["sgd_pc1"] / scale,
        path["sgd_pc2"] / scale,
        angles="xy",
        scale_units="xy",
        scale=8 / span,
        color="k",
        width=0.004,
        label="SGD update direction",
    )
    ax.set(
        title=f"{label}: PC1 {numbers['explained_pc1']:.0%}, PC2 {numbers['explained_pc2']:.0%} of variance",
        xlabel="PC1",
        ylabel="PC2",
    )
    ax.legend(frameon=False, fontsize=8)


def pca_figure(
    grids: dict[str, dict[str, np.ndarray]],
    paths: dict[str, dict[str, np.ndarray]],
    numbers: dict[str, dict[str, float]],
) -> Figure:
    """One panel per run (label → its tables/pca-<label>-grid, -path and PCA numbers): the loss
    contours log₁₀ L(θ* + a·pc1 + b·pc2) on the plane of the path's first two principal
    components (Li et al. 2018, "Visualizing the loss landscape of neural nets"), the projected
    path, and the SGD update directions −∇L at the path's points as arrows."""
    fig, axes = plt.subplots(1, len(grids), figsize=(6 * len(grids), 5))
    for ax, label in zip(np.atleast_1d(axes), grids, strict=True):
        _pca_panel(ax, label, grids[label], paths[label], numbers[label])
    fig.suptitle(
        "log10 training loss on the plane of the path's two principal directions (Li et al. 2018's view)"
    )
    fig.tight_layout()
    return fig

"""Figures of `edge-of-stability`, drawn as Cohen et al. (2021) draw them: training loss (top)
and sharpness λ_max (bottom) against the step, one colour per step size η, the threshold 2/η
as a dashed line of the same colour. Each function returns its matplotlib figure, which the
Lab saves (PNG + SVG).

gd-<study>.png   every GD run of one network and loss (the paper's Fig. 1)
cut.png          the run whose η is lowered mid-run, before and after the cut, with both
                 thresholds
flow.png         gradient flow (small-step GD) against the GD runs at equal time t = η·k
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from ...papers import COHEN_2021
from ...report.figures import loss_label, spans_decades
from .claims import BAND_HIGH, BAND_LOW
from .measure import Trajectory

CITE = COHEN_2021.short


def _colours(n: int) -> list:
    return [plt.get_cmap("tab10")(i % 10) for i in range(n)]


def _panels(title: str, loss: str, x: str = "step"):
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7.5, 7.0), sharex=True)
    top.set(ylabel=f"training {loss_label(loss)}")
    top.set_title(f"{title}\n{CITE}", fontsize=10)
    bottom.set(xlabel=x, ylabel="sharpness λ_max")
    return fig, top, bottom


def _threshold(ax, eta: float, colour, label: str | None = None) -> None:
    ax.axhline(2 / eta, color=colour, ls="--", lw=1.0, label=label)


def _loss_scale(ax, *losses: np.ndarray) -> None:
    if spans_decades(*losses):
        ax.set_yscale("log")


def gd_figure(title: str, loss: str, runs: dict[str, Trajectory]) -> Figure:
    """Loss and sharpness against the step for every GD run in `runs` (label → trajectory),
    one colour per η, 2/η dashed, the onset (first λ_max ≥ BAND_LOW·2/η) marked."""
    fig, top, bottom = _panels(title, loss)
    for (label, t), colour in zip(runs.items(), _colours(len(runs)), strict=True):
        top.plot(t.loss_steps, t.loss, color=colour, lw=1.0, label=label)
        bottom.plot(t.sharpness.steps, t.sharpness.values, color=colour, lw=1.2, label=label)
        _threshold(bottom, t.eta, colour)
        i = t.sharpness.onset()
        if i is not None:
            bottom.plot(t.sharpness.steps[i], t.sharpness.values[i], "o", color=colour, ms=5)
    _loss_scale(top, *(t.loss for t in runs.values()))
    top.legend(title="step size", fontsize=8)
    bottom.text(
        0.01,
        0.98,
        f"dashed: 2/η; dot: onset (λ_max ≥ {BAND_LOW:g} × 2/η)",
        transform=bottom.transAxes,
        va="top",
        fontsize=8,
    )
    fig.tight_layout()
    return fig


def cut_figure(title: str, loss: str, parent: Trajectory, after: Trajectory, at: int) -> Figure:
    """The cut: the parent run at η (its whole length) and the continuation at η' from step
    `at`, loss and sharpness, with 2/η and 2/η' dashed in their colours."""
    fig, top, bottom = _panels(f"{title}: η lowered at step {at}", loss)
    before, later = _colours(2)
    name, name_after = f"η = 2/{2 / parent.eta:g} throughout", f"η' = 2/{2 / after.eta:g} from step {at}"
    top.plot(parent.loss_steps, parent.loss, color=before, lw=1.0, label=name)
    top.plot(after.loss_steps, after.loss, color=later, lw=1.0, label=name_after)
    bottom.plot(parent.sharpness.steps, parent.sharpness.values, color=before, lw=1.2, label=name)
    bottom.plot(after.sharpness.steps, after.sharpness.values, color=later, lw=1.2, label=name_after)
    _threshold(bottom, parent.eta, before)
    _threshold(bottom, after.eta, later)
    for ax in (top, bottom):
        ax.axvline(at, color="0.5", ls=":", lw=1.0)
    _loss_scale(top, parent.loss, after.loss)
    top.legend(fontsize=8)
    fig.tight_layout()
    return fig


def flow_figure(title: str, loss: str, runs: dict[str, Trajectory], flow: Trajectory) -> Figure:
    """Gradient flow (small-step GD, black) and the GD runs (one colour per η, 2/η dashed)
    against time t = η·k; the band BAND_HIGH·2/η of the first GD run dotted."""
    fig, top, bottom = _panels(f"{title}: gradient flow vs GD", loss, "time t = η·k")
    for (label, t), colour in zip(runs.items(), _colours(len(runs)), strict=True):
        top.plot(t.eta * t.loss_steps, t.loss, color=colour, lw=1.0, label=label)
        bottom.plot(t.time, t.sharpness.values, color=colour, lw=1.2, label=label)
        _threshold(bottom, t.eta, colour)
    first = next(iter(runs.values()), None)
    if first is not None:
        bottom.axhline(BAND_HIGH * 2 / first.eta, color="0.4", ls=":", lw=1.0, label=f"{BAND_HIGH:g} × 2/η")
    label = f"gradient flow (GD at η = 2/{2 / flow.eta:g})"
    top.plot(flow.eta * flow.loss_steps, flow.loss, color="k", lw=1.4, label=label)
    bottom.plot(flow.time, flow.sharpness.values, color="k", lw=1.6, label=label)
    horizon = flow.eta * float(flow.loss_steps[-1])  # the flow's horizon: the claim compares up to it
    for ax in (top, bottom):
        ax.set_xlim(0, horizon)
    _loss_scale(top, flow.loss, *(t.loss for t in runs.values()))
    bottom.legend(fontsize=8)
    fig.tight_layout()
    return fig

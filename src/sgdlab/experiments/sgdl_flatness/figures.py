"""Figures of `sgdl-flatness`, drawn from the saved tables and runs only; each function returns
its matplotlib figure (laid out), which the Lab saves (PNG + SVG)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import matplotlib.tri as mtri
import numpy as np
import torch
from matplotlib.figure import Figure

from ...papers import LI_2018, OSIPOV_2018, ZHANG_2017_SGD
from ...toys import FLAT_SHARP, FLAT_SHARP_PRINTED, ROSENBROCK
from .claims.mlp import Baseline
from .measure.mlp import SweepRun
from .measure.toy import LinearRegime

CITE = ZHANG_2017_SGD.short


def landscapes_figure() -> Figure:
    """The three landscapes as contour maps, with their minima."""
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    for ax, ls, box in (
        (axes[0], FLAT_SHARP, (0, 12, 0, 10)),
        (axes[1], FLAT_SHARP_PRINTED, (0, 12, 0, 10)),
        (axes[2], ROSENBROCK, (-2, 2, -1, 3)),
    ):
        xs = torch.linspace(box[0], box[1], 160, dtype=torch.float64)
        ys = torch.linspace(box[2], box[3], 160, dtype=torch.float64)
        gx, gy = torch.meshgrid(xs, ys, indexing="ij")
        f = ls.value(gx, gy).numpy()
        if ls is ROSENBROCK:
            cs = ax.contourf(gx, gy, np.log10(f + 1e-3), 20, cmap="viridis")
            fig.colorbar(cs, ax=ax, label="log10(f + 10⁻³)")
        else:
            cs = ax.contourf(gx, gy, f, 20, cmap="viridis")
            fig.colorbar(cs, ax=ax, label="f(x, y)")
        for name, (mx, my) in ls.minima.items():
            ax.plot(mx, my, "r*", ms=10)
            ax.annotate(name, (mx, my), textcoords="offset points", xytext=(5, 5), color="w", fontsize=8)
        ax.set(xlabel="x", ylabel="y", title=ls.title if len(ls.title) < 60 else ls.name)
    fig.suptitle(f"toy landscapes (after {CITE}; the report's code and its printed eq. (3))")
    fig.tight_layout()
    return fig


def histogram_vs_mass_figure(
    counts: np.ndarray, xe: np.ndarray, ye: np.ndarray, runs: dict[str, np.ndarray]
) -> Figure:
    """Left: the report's picture, a histogram of GD's final positions (the tallest bar is the
    sharp minimum). Right: what the claim is about, the basin masses with 95 % intervals."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(15, 5.5), gridspec_kw={"width_ratios": [1, 1.4]})
    im = left.imshow(
        counts.T,
        origin="lower",
        extent=(xe[0], xe[-1], ye[0], ye[-1]),
        cmap="magma",
        norm=matplotlib.colors.LogNorm(vmin=1, vmax=max(counts.max(), 2)),
        aspect="auto",
    )
    fig.colorbar(im, ax=left, label="runs per bin (log scale)")
    i, j = np.unravel_index(np.argmax(counts), counts.shape)
    left.plot(
        (xe[i] + xe[i + 1]) / 2,
        (ye[j] + ye[j + 1]) / 2,
        "c^",
        ms=10,
        label=f"tallest bar: {int(counts.max())} runs",
    )
    left.legend(loc="upper left", fontsize=8)
    left.set(xlabel="x", ylabel="y", title="final positions under GD (histogram, as the report drew it)")
    hot = runs["hot"].astype(bool)
    labels = [str(lb) for lb, h in zip(runs["label"], hot, strict=True) if not h]
    idx = [i for i, h in enumerate(hot) if not h]
    pos = np.arange(len(idx))
    for offset, key, color, name in (
        (-0.2, "flat", "C0", "flat valley"),
        (0.2, "sharp", "C3", "sharp minimum"),
    ):
        mass = runs[key][idx]
        err = np.stack([mass - runs[f"{key}_lo"][idx], runs[f"{key}_hi"][idx] - mass])
        right.bar(pos + offset, mass, 0.4, yerr=err, color=color, capsize=3, label=name)
    right.bar(pos, runs["plateau"][idx], 0.15, color="0.6", label="plateau")
    right.set_xticks(pos, labels, rotation=30, ha="right", fontsize=8)
    right.set(
        ylabel="basin mass (fraction of runs), 95% CI",
        ylim=(0, 1),
        title=f"basin mass after the budget ({int(runs['particles'][0]):,} runs each)",
    )
    right.legend(fontsize=8)
    fig.suptitle(f"flat vs sharp minimum: peak height is not mass ({CITE}; {OSIPOV_2018.short})")
    fig.tight_layout()
    return fig


def occupancy_figure(runs: dict[str, np.ndarray], occ: dict[str, np.ndarray]) -> Figure:
    """Occupancy of the flat and sharp basins against the step for constant noise, with the
    Boltzmann masses as dashed lines."""
    const = [
        str(lb) for lb, d in zip(runs["label"], runs["decay"], strict=True) if d == "none" and lb != "gd"
    ]
    fig, axes = plt.subplots(1, 2, figsize=(14, 4.8))
    for k, lb in enumerate(const):
        i = list(runs["label"]).index(lb)
        for ax, basin, key in ((axes[0], "flat valley", "flat"), (axes[1], "sharp minimum", "sharp")):
            sel = (occ["label"] == lb) & (occ["basin"] == basin)
            steps, frac = occ["step"][sel], occ["fraction"][sel]
            keep = steps > 0
            ax.plot(steps[keep], frac[keep], color=f"C{k}", label=f"{lb} (T={runs['temperature'][i]:.2g})")
            ax.axhline(runs[f"boltzmann_{key}"][i], color=f"C{k}", ls="--", lw=0.8)
            ax.set(
                xscale="log",
                xlabel="step",
                ylabel=f"fraction of runs in the {basin}",
                title=f"{basin}: occupancy (solid) vs Boltzmann ∫exp(−f/T) (dashed)",
            )
    for ax in axes:
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.suptitle(f"constant-noise SGDL against its Boltzmann prediction ({CITE})")
    fig.tight_layout()
    return fig


def rosenbrock_figure(rosen: dict[str, np.ndarray], theory: LinearRegime) -> Figure:
    """GD on Rosenbrock: the median distance ‖θ − (1, 1)‖ over the runs (10–90 % band) against
    the step, log distance on a linear step axis (a geometric decay is a straight line), with
    the linear regime the rate is fitted in shaded and the predicted slope ρ^t = (1 − ηλ_min)^t
    drawn through the window's first record."""
    fig, ax = plt.subplots(figsize=(8.5, 5))
    steps, median = rosen["step"], rosen["median"]
    ax.plot(steps, median, "C0", label="median distance")
    ax.fill_between(steps, rosen["q10"], rosen["q90"], color="C0", alpha=0.2, label="10–90% of runs")
    ax.axhspan(theory.low, theory.high, color="0.85", zorder=0, label="linear regime (fit window)")
    inside = np.flatnonzero((median >= theory.low) & (median <= theory.high))
    if len(inside):
        t0, d0 = steps[inside[0]], median[inside[0]]
        t = steps[inside[0] :]
        ax.plot(t, d0 * theory.rate ** (t - t0), "k--", lw=1, label=f"(1 − ηλ_min)^t, ρ = {theory.rate:.6f}")
    ax.set(
        yscale="log",
        xlabel="step",
        ylabel="‖θ − (1, 1)‖",
    )
    ax.set_title(
        f"GD on Rosenbrock: linear convergence at κ = {theory.condition_number:.0f}\n"
        f"(after {OSIPOV_2018.short})",
        fontsize=10,
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def sweep_figure(
    dataset: str, measured: dict[str, SweepRun], curves: dict[str, dict[str, np.ndarray]], baseline: Baseline
) -> Figure:
    """Training loss, training error and test error against the epoch for each γ', one row per
    noise schedule (constant as in the paper, γ'/(1 + t) as in the report's code), with the
    plain-SGD seeds in grey and, on the error panels, the band of results "similar" to theirs
    (their mean ± the tolerance of `claims.Baseline`). `measured`: name → `measure.SweepRun`;
    `curves`: name → `measure.sweep_curves`."""
    schedules = ("constant", "decaying")
    fig, axes = plt.subplots(2, 3, figsize=(16, 8.5), squeeze=False)
    noises = sorted({r.noise for r in measured.values() if r.noise > 0})
    for row, schedule in enumerate(schedules):
        for name, r in measured.items():
            if r.noise == 0:
                style = {"color": "0.55", "lw": 0.8, "label": "γ' = 0 (seeds)" if r.seed == 0 else None}
            elif r.schedule == schedule:
                style = {"color": f"C{noises.index(r.noise)}", "lw": 1.2, "label": f"γ' = {r.noise:g}"}
            else:
                continue
            c = curves[name]
            for ax, key in zip(axes[row], ("train_loss", "train_error", "test_error"), strict=True):
                ax.plot(c["epoch"], c[key], **style)
        for ax, key in zip(axes[row][1:], ("train_error", "test_error"), strict=True):
            mean, tol = float(baseline.values(key).mean()), baseline.tolerance(key)
            floor = 0.5 / (baseline.n_train if key == "train_error" else baseline.n_test)  # log axis: > 0
            ax.axhspan(
                max(mean - tol, floor),
                mean + tol,
                color="0.8",
                alpha=0.6,
                zorder=0,
                label="similar to γ' = 0",
            )
        noise_text = "constant γ'" if schedule == "constant" else "γ'/(1 + t)"
        axes[row][0].set(
            yscale="log", ylabel="training loss (cross-entropy)", title=f"{noise_text}: training loss"
        )
        axes[row][1].set(ylabel="training error", title=f"{noise_text}: training error", yscale="log")
        axes[row][2].set(ylabel="test error", title=f"{noise_text}: test error", yscale="log")
        for ax in axes[row]:
            ax.set(xlabel="epoch")
            ax.grid(alpha=0.3, which="both")
            ax.legend(fontsize=7)
    fig.suptitle(f"SGDL on the MLP 512-512 (batch 32, lr 0.01) on {dataset} ({CITE}; {OSIPOV_2018.short})")
    fig.tight_layout()
    return fig


def interpolation_figure(surfaces: dict[str, tuple[np.ndarray, np.ndarray]]) -> Figure:
    """The three-point interpolation surfaces, natural and random labels, on one colour scale."""
    fig, axes = plt.subplots(1, len(surfaces), figsize=(6.5 * len(surfaces), 5.2), squeeze=False)
    vmax = max(float(v.max()) for _, v in surfaces.values())
    levels = np.linspace(0, vmax, 25)
    corners = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, np.sqrt(3) / 2]])
    for ax, (kind, (lam, values)) in zip(axes[0], surfaces.items(), strict=True):
        xy = lam @ corners
        tri = mtri.Triangulation(xy[:, 0], xy[:, 1])
        cs = ax.tricontourf(tri, values, levels=levels, cmap="viridis")
        ax.plot(*np.vstack([corners, corners[:1]]).T, "w-", lw=1)
        for k, c in enumerate(corners):
            ax.annotate(f"w{k + 1}", c, color="w", fontsize=10, ha="center")
        ax.set(title=f"{kind} labels: L(λ1w1 + λ2w2 + λ3w3)", aspect="equal")
        ax.set_xticks([]), ax.set_yticks([])
        fig.colorbar(cs, ax=ax, label="training loss")
    fig.suptitle(
        f"three-point interpolation between three minimizers (seeds), on and around the simplex ({CITE})"
    )
    fig.tight_layout()
    return fig


def flatness_figure(table: dict[str, np.ndarray], radius: float) -> Figure:
    """The flatness measures per seed, natural vs random labels: λ_max, the Hutchinson
    trace (±3 SE) and the mean loss increase at perturbation radius `radius`, on log axes."""
    keys = (
        ("lambda_max", "λ_max (Lanczos)"),
        ("trace", "tr H (Hutchinson)"),
        (f"sharpness_mean_{radius:g}", f"mean ΔL, filter-normalized r = {radius:g}"),
    )
    fig, axes = plt.subplots(1, len(keys), figsize=(14, 4.2))
    for ax, (key, title) in zip(axes, keys, strict=True):
        for k, kind in enumerate(("natural", "random")):
            sel = table["kind"] == kind
            vals = table[key][sel]
            ax.scatter(np.full(len(vals), k), vals, color=f"C{k}", s=40, label=kind)
            if key == "trace":
                ax.errorbar(
                    np.full(len(vals), k),
                    vals,
                    yerr=3 * table["trace_se"][sel],
                    fmt="none",
                    color=f"C{k}",
                    capsize=3,
                )
        ax.set_xticks([0, 1], ["natural", "random"])
        ax.set(yscale="log", title=title, xlim=(-0.5, 1.5))
        ax.grid(alpha=0.3, which="both")
    fig.suptitle(
        f"flatness of minimizers at zero training error, per seed ({CITE}; "
        f"perturbations after {LI_2018.short})"
    )
    fig.tight_layout()
    return fig

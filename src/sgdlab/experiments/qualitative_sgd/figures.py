"""Figures of `qualitative-sgd`, drawn from saved tables, runs and simulations; each `*_figure`
returns its matplotlib figure (the Lab saves it, PNG and SVG); titles cite Giselsson's lecture."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from ...papers import GISELSSON_SGD
from ...report.figures import LINESTYLES
from ...toys import Escape, NoiseBall

SRC = GISELSSON_SGD.short


def noise_ball_figure(nb: NoiseBall, sim: dict) -> Figure:
    """The noise-ball figure: the level sets of the f_i and f with one iid SGD run, the
    cyclic run and GD's one step, zoomed in and out, the noise ball of radius
    √(mean‖c_i‖²/5); and ‖x_k‖² against k (iid mean over runs and cyclic)."""
    c = nb.c.numpy()
    fig, axes = plt.subplots(1, 3, figsize=(16, 5))
    for ax, lim in zip(axes[:2], (1.6, 7.5), strict=True):
        grid = np.linspace(-lim, lim, 300)
        gx, gy = np.meshgrid(grid, grid)
        for i, ci in enumerate(c):
            ax.contour(
                gx, gy, np.hypot(gx - ci[0], gy - ci[1]), levels=6, colors=f"C{i}", linewidths=0.6, alpha=0.5
            )
        ax.contour(gx, gy, np.hypot(gx, gy), levels=6, colors="k", linewidths=0.6, alpha=0.3)
        tri = np.vstack([c, c[:1]])
        ax.plot(tri[:, 0], tri[:, 1], "k-", lw=0.8)
        ax.plot(c[:, 0], c[:, 1], "ko", ms=4)
        ax.plot(*sim["iid"][:60, 0].T, "C3.-", lw=0.8, ms=3, label="SGD, iid (one run)")
        ax.plot(*sim["cyclic"][:60].T, "C2.-", lw=0.8, ms=3, label="SGD, cyclic order")
        ax.plot(*sim["gd"].T, "C0o-", lw=1.5, ms=4, label="GD (one step)")
        ax.add_patch(
            plt.Circle(
                (0, 0), np.sqrt(nb.ball), fill=False, ls="--", color="C3", label="noise ball √(mean‖c‖²/5)"
            )
        )
        ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", xlabel="x₁", ylabel="x₂")
    axes[0].set_title("level sets of f_i (colours) and f (grey), zoomed in")
    axes[1].set_title("zoomed out: far away the gradients agree")
    axes[0].legend(fontsize=7, loc="upper left")
    sq = (sim["iid"] ** 2).sum(-1)
    k = np.arange(len(sq))
    axes[2].semilogy(k, sq.mean(axis=1), "C3", label="SGD iid: mean over runs of ‖x_k‖²")
    axes[2].semilogy(k, (sim["cyclic"] ** 2).sum(-1), "C2", label="SGD cyclic")
    axes[2].axhline(nb.ball, color="C3", ls="--", lw=0.8, label="mean‖c_i‖²/5")
    axes[2].set(xlabel="iteration k", ylabel="‖x_k‖²", title="distance to the solution")
    axes[2].legend(fontsize=8)
    axes[2].grid(alpha=0.3, which="both")
    fig.suptitle(f"Noise ball: f = Σ ½‖x − c_i‖², c₁ + c₂ + c₃ = 0, step 1/3 ({SRC})")
    fig.tight_layout()
    return fig


def pair_figure(paths: dict[float, np.ndarray], step: float) -> Figure:
    """The 1-D pair figure: the cyclic iterates with the predicted 2-cycle ±γc/(2 − γ) dotted,
    and the loss x_k² on a log axis, for each c."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    for i, (c, x) in enumerate(paths.items()):
        k = np.arange(len(x))
        axes[0].plot(k[:200], x[:200], f"C{i}.-", ms=2, lw=0.7, label=f"∇f₁,₂(0) = ∓{c:g}")
        amp = step * c / (2 - step)
        axes[0].axhline(amp, color=f"C{i}", ls=":", lw=0.8)
        axes[0].axhline(-amp, color=f"C{i}", ls=":", lw=0.8)
        axes[1].semilogy(k, np.maximum(x**2, 1e-300), f"C{i}", label=f"±{c:g}")
        axes[1].axhline(amp**2, color=f"C{i}", ls=":", lw=0.8)
    axes[0].set(xlabel="iteration k", ylabel="x_k", title="iterates (dotted: ±γc/(2−γ))")
    axes[1].set(xlabel="iteration k", ylabel="f(x_k) − f*", title="loss")
    for ax in axes:
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3, which="both")
    fig.suptitle(f"1-D pair f₁,₂ = ½(x ∓ c)², cyclic order, step {step:g} ({SRC})")
    fig.tight_layout()
    return fig


def escaping_figure(e: Escape, summary: dict, curves: dict, batch_sizes) -> Figure:
    """The escaping figure: the four f_i and their mean with the jump of one step on f_4,
    the escape probability per batch size, and the fraction of runs still in the left
    minimum against the iteration."""
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    x = torch.linspace(-0.3, 3.6, 600, dtype=torch.float64)
    fi = e.f_i(x).numpy()
    for i in range(4):
        axes[0].plot(x, fi[:, i], f"C{i}", lw=0.8, label=f"f_{i + 1}")
    axes[0].plot(x, fi.mean(1), "k", lw=2, label="f/4 (mean of the f_i)")
    xl = e.x_left
    jump = xl - e.step * float(e.grads(torch.tensor(xl, dtype=torch.float64))[3])
    axes[0].annotate("", xy=(jump, 0), xytext=(xl, 0), arrowprops={"arrowstyle": "->", "color": "C3"})
    axes[0].axvline(e.barrier, color="0.6", ls=":", lw=0.8)
    axes[0].set(ylim=(-3, 3), xlabel="x", title="f_i: not individually flat (left), flat (right)")
    axes[0].legend(fontsize=7)
    axes[1].bar([str(k) for k in batch_sizes], summary["escape_probability"], color="C0")
    axes[1].set(
        xlabel="mini-batch size K (4 = GD)",
        ylabel="escape probability",
        title="escape probability within the horizon",
    )
    steps = curves["step"]
    for i, k in enumerate(batch_sizes):
        axes[2].semilogx(
            np.maximum(steps, 1),
            curves[f"not_escaped_b{k}"],
            f"C{i}",
            ls=LINESTYLES[i % len(LINESTYLES)],  # K = 3 and 4 both stay at 1: one would hide the other
            label=f"K = {k}",
        )
    axes[2].set(
        xlabel="iteration",
        ylabel="fraction still in the left minimum",
        title="survival in the non-flat minimum",
    )
    for ax in axes:
        ax.grid(alpha=0.3, which="both")
    axes[2].legend(fontsize=8)
    fig.suptitle(f"Escaping a not individually flat minimum from x = {xl:g}, step {e.step:g} ({SRC})")
    fig.tight_layout()
    return fig


def least_squares_figure(
    curves: dict, norms: dict, floors: list, burn_in: int, shapes: tuple[str, str]
) -> Figure:
    """curves[label] = (epochs, loss − f*); norms[label] = per-sample gradient norms at x*;
    floors = `measure.Floor` per step (per-seed floors with their mean, the exact stationary
    theory, and the lines ∝ γ and ∝ √γ through the largest step's floor); the averaging
    window starts after `burn_in` epochs."""
    fig, axes = plt.subplots(1, 3, figsize=(18, 4.2))
    for i, (label, (e, gap)) in enumerate(curves.items()):
        axes[0].semilogy(e, np.maximum(gap, 1e-30), f"C{i}", lw=0.8, label=label)
    axes[0].axvline(burn_in, color="0.5", ls=":", lw=0.8, label="averaging window starts")
    axes[0].set(xlabel="epoch", ylabel="f(x_k) − f* (mean per sample)", title="SGD, batch 1, iid")
    axes[0].set_ylim(bottom=1e-30)  # below: float64 round-off of an interpolating run
    for i, (label, v) in enumerate(norms.items()):
        axes[1].semilogy(np.sort(v)[::-1], f"C{i}.", ms=3, label=label)
    axes[1].set(
        xlabel="sample (sorted)", ylabel="‖∇f_i(x*)‖", title="individual gradient norms at the solution"
    )
    steps = np.asarray([f.step for f in floors])
    mean = np.asarray([f.per_seed.mean() for f in floors])
    for f in floors:
        axes[2].loglog([f.step] * len(f.per_seed), f.per_seed, "C0.", ms=4, alpha=0.5)
    axes[2].loglog(steps, mean, "C0o", label="measured floor (mean over seeds; dots: seeds)")
    theory = np.asarray([f.theory for f in floors])
    if np.all(np.isfinite(theory)):
        axes[2].loglog(steps, theory, "k+", ms=10, label="exact stationary E f − f* (iid SGD)")
    top = int(np.argmax(steps))
    grid = np.geomspace(steps.min(), steps.max(), 20)
    axes[2].loglog(grid, mean[top] * grid / steps[top], "C1--", lw=0.8, label="∝ γ")
    axes[2].loglog(grid, mean[top] * np.sqrt(grid / steps[top]), "C2:", lw=0.8, label="∝ √γ")
    axes[2].set(xlabel="step γ", ylabel="loss floor f − f*", title="under-parameterized floor vs step")
    for ax in axes:
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3, which="both")
    fig.suptitle(f"Least squares: under- ({shapes[0]}) vs over-parameterized ({shapes[1]}) ({SRC})")
    fig.tight_layout()
    return fig


def nets_figure(series: dict, final_norms: dict) -> Figure:
    """series[label][name] = (epochs, values) for train_loss, grad_full_norm_best, grad_mu."""
    fig, axes = plt.subplots(1, 4, figsize=(20, 4.2))
    for i, (label, s) in enumerate(series.items()):
        for ax, key in zip(axes[:3], ("train_loss", "grad_full_norm_best", "grad_mu"), strict=True):
            if key in s:
                e, v = s[key]
                if key == "grad_mu":
                    ax.plot(e, v, f"C{i}", label=label)
                else:
                    ax.semilogy(e, v, f"C{i}", label=label)
        v = final_norms.get(label)
        if v is not None:
            axes[3].semilogy(np.sort(v)[::-1], f"C{i}.", ms=3, label=label)
    axes[0].set(xlabel="epoch", ylabel="training loss", title="loss")
    axes[1].set(xlabel="epoch", ylabel="min_{j≤k} ‖∇f(x_j)‖", title="best gradient so far")
    axes[2].set(xlabel="epoch", ylabel="μ = min_{i≠j}⟨∇f_i, ∇f_j⟩", title="agreement μ", yscale="symlog")
    axes[3].set(xlabel="sample (sorted)", ylabel="‖∇f_i‖ at the end", title="individual gradient norms")
    for ax in axes:
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3, which="both")
    fig.suptitle(f"Residual ReLU nets 3x5,2,1 vs 15x25,2,1, logistic loss, single-sample SGD ({SRC})")
    fig.tight_layout()
    return fig


def agreement_figure(by_distance: dict, by_batch: dict) -> Figure:
    """The μ figure: μ and the mean inner product, and the mean cosine, against ‖θ_k − θ*‖
    along the path; and μ_K against the mini-batch size K at θ_0, midway and at θ*."""
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.2))
    d = by_distance["distance"]
    axes[0].plot(d, by_distance["mu"], "C0.-", label="μ = min ⟨∇f_i, ∇f_j⟩")
    axes[0].plot(d, by_distance["inner_mean"], "C1.-", label="mean ⟨∇f_i, ∇f_j⟩")
    axes[0].set(xlabel="‖θ_k − θ*‖", ylabel="inner product", yscale="symlog", title="agreement vs distance")
    axes[1].plot(d, by_distance["cos_mean"], "C2.-", label="mean cosine")
    axes[1].set(xlabel="‖θ_k − θ*‖", ylabel="cosine", title="normalized agreement vs distance")
    for label, rows in by_batch.items():
        axes[2].plot(rows["batch_size"], rows["mu"], ".-", label=label)
    axes[2].set(
        xscale="log",
        xlabel="mini-batch size K",
        ylabel="μ_K = min ⟨g_B, g_B'⟩",
        yscale="symlog",
        title="agreement vs mini-batch size",
    )
    for ax in axes:
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3, which="both")
    fig.suptitle(f"Gradient agreement μ on an MLP on digits ({SRC})")
    fig.tight_layout()
    return fig

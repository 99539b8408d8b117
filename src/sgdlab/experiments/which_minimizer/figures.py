"""Figures of `which-minimizer`, drawn from the same per-init numbers the claims read
(`SigmaRuns`, `AdaptiveRuns`, …), mean ± std over inits; each function returns its matplotlib
figure (laid out), which the Lab saves (PNG + SVG):

sigma-<dataset>.png       per architecture: test loss vs σ (trained nets, closed-form GD limit)
                          and the init term's size vs σ on log axes with the σ^(L+1) law and
                          the finite-width gap it is compared with (the paper's Fig. 2)
mitigation-<dataset>.png  per architecture: validation loss vs σ per init with the σ the
                          procedure of Sect. 3 returns, and the steps each σ needs
adaptive-<dataset>.png    test loss per optimizer, and the distance of AdaGrad's and Adam's
                          outputs to GD's on training vs test points, against SGD's (Fig. 3)
batch-<dataset>.png       distance to the full-batch minimizer vs batch size, SGD vs AdaGrad,
                          reshuffled and cyclic order (Fig. 4)
example1-<dataset>.png    one training point: trained outputs on test points against the GD
                          and sign-kernel closed forms (Example 1)
later-<dataset>.png       the narrow net: gap to the closed form linearized at θ_0 vs θ_T, test
                          loss at two σ, AdaGrad vs GD on training and test points (Fig. 1)
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from ...papers import NONNENMACHER_2021
from .claims.mitigation import procedure_trials
from .measure import AdaptiveRuns, BatchRuns, LaterRuns, SigmaRuns, SignKernelRuns, Table, finite_width
from .settings import Settings
from .stats import Stat

CITE = NONNENMACHER_2021.short


def _ms(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: mean and std over the finite entries."""
    stats = [Stat.of(r) for r in np.atleast_2d(rows)]
    return np.array([s.mean for s in stats]), np.array([s.std for s in stats])


def _laid_out(fig: Figure) -> Figure:
    fig.tight_layout()
    return fig


def _sigma_axis(ax, sigmas) -> None:
    """A log σ axis labelled at the σ of the grid."""
    ax.set_xscale("log")
    ax.set_xticks(list(sigmas), [f"{x:g}" for x in sigmas])
    ax.minorticks_off()


def sigma_figure(groups: list[SigmaRuns], s: Settings, dataset: str) -> Figure:
    """Fig. 2 of Nonnenmacher et al. (2021), one row per architecture (`groups`, not empty)."""
    fig, axes = plt.subplots(len(groups), 2, figsize=(11, 3.6 * len(groups)), squeeze=False)
    for (left, right), m in zip(axes, groups, strict=True):
        for values, style, label in (
            (m.test_loss, "o-", "trained nets"),
            (m.closed_form_loss, "s--", "closed-form GD limit"),
        ):
            mean, std = _ms(values)
            left.errorbar(m.sigmas, mean, yerr=std, fmt=style, capsize=3, label=label)
        left.set(yscale="log", xlabel="initialization scale σ", ylabel="test loss ½(f − y)²")
        left.set_title(f"{m.arch}: test loss vs σ", fontsize=10)
        for values, style, label in (
            (m.init_trained, "o-", "trained: f_T − Θ̂(x,X)Θ̂⁻¹Y"),
            (m.init_closed, "s--", "closed form: f_0(x) − Θ̂(x,X)Θ̂⁻¹f_0(X)"),
        ):
            mean, std = _ms(values)
            right.errorbar(m.sigmas, mean, yerr=std, fmt=style, capsize=3, label=label)
        closed = _ms(m.init_closed)[0]
        right.plot(  # a slope guide a factor 2 below the closed form, which follows it exactly
            m.sigmas,
            0.5 * closed[-1] * (m.sigmas / m.sigmas[-1]) ** (m.depth + 1),
            "k:",
            lw=1,
            label=f"∝ σ^{m.depth + 1} (slope guide, ×½)",
        )
        if s.sigma_ref in m.sigmas:
            gap = finite_width(m, s.sigma_ref).gap.mean
            right.axhline(gap, color="C3", ls="-.", lw=1, label=f"finite-width gap at σ={s.sigma_ref:g}")
        right.set(yscale="log", xlabel="initialization scale σ", ylabel="RMS over test points")
        right.set_title(f"{m.arch}: initialization term", fontsize=10)
        for ax in (left, right):
            _sigma_axis(ax, m.sigmas)
            ax.grid(alpha=0.3, which="both")
            ax.legend(fontsize=8, frameon=False)
    fig.suptitle(
        f"{dataset} 0 vs 1, {s.n_train} training points, GD, mean ± std over {s.inits} inits "
        f"— after {CITE}, Fig. 2"
    )
    return _laid_out(fig)


def starts_procedure(m: SigmaRuns, s: Settings) -> bool:
    """Whether the σ grid of `m` holds the σ the procedure of Sect. 3 starts from at its depth."""
    return s.mitigation_start.get(m.depth) in m.sigmas


def mitigation_figure(groups: list[SigmaRuns], s: Settings, dataset: str) -> Figure:
    """Sect. 3's procedure on the σ grid and the trials below it, one row per architecture it
    starts on: each init's validation loss vs σ with the procedure's path and the σ it returns,
    and the steps each σ needs against the procedure's budget (× = not trained within it);
    `groups` being those whose grid holds the procedure's start (`starts_procedure`, not empty)."""
    fig, axes = plt.subplots(len(groups), 2, figsize=(11, 3.8 * len(groups)), squeeze=False)
    rule = s.mitigation
    for (left, right), m in zip(axes, groups, strict=True):
        start_sigma = s.mitigation_start[m.depth]
        start = int(np.flatnonzero(m.sigmas == start_sigma)[0])
        below = m.below.sigmas if m.below is not None else np.array([])
        for j in range(len(m.seeds)):
            result = rule.replay(procedure_trials(m, j, start), s.stop_loss)
            left.plot(m.sigmas, m.val_loss[:, j], color="0.8", lw=0.8)
            visited = [t for t in result.trials if t.practical]
            left.plot([t.sigma for t in visited], [t.val_loss for t in visited], color="C0", lw=1, alpha=0.7)
            left.plot([result.sigma], [result.trials[result.chosen].val_loss], "o", color="C3", ms=5)
            right.plot(m.sigmas, m.steps[:, j], color="0.6", lw=0.8, marker=".")
            for t in result.trials:
                if t.sigma in below:
                    done = t.practical
                    right.plot(
                        [t.sigma], [t.steps if done else result.budget], "." if done else "x", color="C3"
                    )
        left.plot(m.sigmas, _ms(m.test_loss)[0], "k--", lw=1.5, label="mean test loss (reported)")
        left.plot([], [], color="C0", label=f"procedure's path from σ = {start_sigma:g}")
        left.plot([], [], "o", color="C3", label="σ it returns")
        left.set(yscale="log", xlabel="initialization scale σ", ylabel="validation loss")
        left.set_title(f"{m.arch}: validation loss per init", fontsize=10)
        right.plot(
            [], [], "x", color="C3", label=f"trial below the grid not trained within {rule.max_slowdown:g}×"
        )
        right.plot([], [], ".", color="0.6", label="steps to the loss threshold")
        right.set(yscale="log", xlabel="initialization scale σ", ylabel="training steps")
        right.set_title(
            f"{m.arch}: cost of each σ (budget: {rule.max_slowdown:g}× the start's steps)", fontsize=10
        )
        for ax in (left, right):
            _sigma_axis(ax, np.concatenate([below, m.sigmas]))
            ax.grid(alpha=0.3, which="both")
            ax.legend(fontsize=8, frameon=False)
    fig.suptitle(
        f"{dataset}: shrink σ while the validation loss falls by ≥ {100 * rule.margin:g}% "
        f"— after {CITE}, Sect. 3"
    )
    return _laid_out(fig)


def adaptive_figure(groups: list[AdaptiveRuns], s: Settings, dataset: str) -> Figure:
    """Fig. 3 of Nonnenmacher et al. (2021), one row per architecture: test loss per optimizer,
    and the distance of the adaptive minimizers to GD's on training vs test points against
    SGD's and the finite-width bound (`groups`, not empty)."""
    fig, axes = plt.subplots(len(groups), 2, figsize=(11, 3.4 * len(groups)), squeeze=False)
    for (left, right), m in zip(axes, groups, strict=True):
        opts = list(m.test_loss)
        stats = [Stat.of(m.test_loss[o]) for o in opts]
        left.bar(
            range(len(opts)),
            [x.mean for x in stats],
            yerr=[x.std for x in stats],
            capsize=4,
            color=["C0", "C1", "C2"][: len(opts)],
        )
        left.set(xticks=range(len(opts)), xticklabels=opts, ylabel="test loss ½(f − y)²")
        left.set_title(f"{m.arch}: test loss", fontsize=10)
        _distance_panel(right, m)
        right.set_title(f"{m.arch}: distance to GD's minimizer", fontsize=10)
        for ax in (left, right):
            ax.grid(alpha=0.3, axis="y", which="both")
    fig.suptitle(f"{dataset} 0 vs 1, σ = {s.sigma_ref:g}: GD vs adaptive methods — after {CITE}, Fig. 3")
    return _laid_out(fig)


def _distance_panel(ax, m: AdaptiveRuns) -> None:
    """Each adaptive method's RMS distance to GD on training and test points, next to plain SGD's
    (hatched, the reference the claim compares with: another path to GD's linearized minimizer),
    its test mean drawn across the panel, and the triangle bound 2 × GD's finite-width gap."""
    names = [*m.test_distance, "sgd"]
    splits = (
        ("training points", [*m.train_distance.values(), m.sgd_train_distance]),
        ("test points", [*m.test_distance.values(), m.sgd_distance]),
    )
    width = 0.35
    for k, (label, distances) in enumerate(splits):
        stats = [Stat.of(d) for d in distances]
        bars = ax.bar(
            np.arange(len(names)) + (k - 0.5) * width,
            [x.mean for x in stats],
            width,
            yerr=[x.std for x in stats],
            capsize=4,
            color=f"C{k}",
            label=label,
        )
        bars[-1].set_hatch("//")
        bars[-1].set_alpha(0.6)
    ax.axhline(
        Stat.of(m.sgd_distance).mean, color="C3", ls="--", lw=1, label="SGD vs GD on test points (reference)"
    )
    ax.axhline(2 * Stat.of(m.gd_gap).mean, color="k", ls=":", lw=1, label="2 × GD's finite-width gap")
    ax.set(
        xticks=range(len(names)),
        xticklabels=[f"{o} vs gd" for o in names[:-1]] + ["sgd vs gd\n(reference)"],
        yscale="log",
        ylabel="RMS output distance",
    )
    low, high = ax.get_ylim()
    ax.set_ylim(low, high * 10)  # room for the legend above the bars
    ax.legend(fontsize=8, frameon=False, ncol=2, loc="upper center")


def batch_figure(m: BatchRuns, s: Settings, dataset: str) -> Figure:
    """Fig. 4 of Nonnenmacher et al. (2021): the RMS test distance to the full-batch minimizer
    against the batch size, SGD vs AdaGrad, reshuffled and cyclic."""
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for values, color, label in (
        (m.sgd, "C0", "SGD vs GD"),
        (m.adagrad, "C1", "AdaGrad vs full-batch AdaGrad"),
    ):
        sizes = [b for b in s.batch_sizes if f"b{b}" in values]
        if sizes:
            st = [Stat.of(values[f"b{b}"]) for b in sizes]
            ax.errorbar(
                sizes,
                [x.mean for x in st],
                yerr=[x.std for x in st],
                fmt="o-",
                color=color,
                capsize=3,
                label=f"{label} (reshuffled)",
            )
        small = min(s.batch_sizes)
        if f"b{small}-cyclic" in values:
            x = Stat.of(values[f"b{small}-cyclic"])
            ax.errorbar(
                [small], [x.mean], yerr=[x.std], fmt="x", color=color, ms=9, capsize=3, label="… cyclic order"
            )
    ax.axhline(m.bound, color="k", ls=":", lw=1, label="2 × GD's finite-width gap")
    ax.set(xscale="log", yscale="log", xlabel="batch size", ylabel="RMS test-output distance")
    ax.set_title(f"{m.arch}, {dataset}: minimizer vs batch size — after {CITE}, Fig. 4", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, frameon=False)
    return _laid_out(fig)


def example1_figure(t: Table, m: SignKernelRuns, dataset: str) -> Figure:
    """Example 1: for the first init, the trained nets' test outputs against the GD and
    sign-kernel limits (the diagonal is a perfect prediction)."""
    seed = int(m.seeds[0])
    rows = {
        o: t.converged(part="example1", dataset=dataset, arch=m.arch, optimizer=o).get(seed)
        for o in ("gd", "adagrad")
    }
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    for ax, opt in zip(axes, ("gd", "adagrad"), strict=True):
        i = rows[opt]
        if i is None:
            continue
        f = t["f_test"][i]
        for limit, color, label in (
            ("gd_limit", "C0", "GD's φ(x)ᵀφ_1/‖φ_1‖²"),
            ("sign_limit", "C1", "sign kernel φ(x)ᵀsign(φ_1)/‖φ_1‖₁"),
        ):
            ax.plot(t[limit][i], f, ".", color=color, ms=5, label=f"vs {label} limit")
        lo, hi = float(np.min(f)), float(np.max(f))
        ax.plot([lo, hi], [lo, hi], "k:", lw=1)
        ax.set(xlabel="closed-form limit at θ_0", ylabel=f"trained {opt} net")
        ax.set_title(f"{opt}, one training point, test points of init {seed}", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, frameon=False)
    fig.suptitle(f"{m.arch}, {dataset}: which kernel predicts the trained net — after {CITE}, Example 1")
    return _laid_out(fig)


def later_figure(m: LaterRuns, s: Settings, dataset: str) -> Figure:
    """Sect. 6 / Fig. 1 of Nonnenmacher et al. (2021), the narrow net: the gap of the closed form
    linearized at θ_0 vs at θ_T, GD's test loss at the two σ, and AdaGrad's distance to GD on
    training vs test points."""
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(14, 4))
    g0, gt = Stat.of(m.gap_theta0), Stat.of(m.gap_theta_t)
    a.bar([0, 1], [g0.mean, gt.mean], yerr=[g0.std, gt.std], capsize=4, color=["C3", "C2"])
    a.set(
        xticks=[0, 1],
        xticklabels=["linearized at θ_0", "linearized at θ_T"],
        ylabel="RMS test gap to the trained net",
    )
    a.set_title("closed-form prediction vs trained net", fontsize=10)
    losses = [Stat.of(m.test_loss[x]) for x in m.sigmas]
    b.bar([0, 1], [x.mean for x in losses], yerr=[x.std for x in losses], capsize=4)
    for k, x in enumerate(m.sigmas):
        b.annotate(
            f"error {100 * Stat.of(m.test_error[x]).mean:.1f}%",
            (k, 0),
            textcoords="offset points",
            xytext=(0, 4),
            ha="center",
            fontsize=8,
        )
    b.set(xticks=[0, 1], xticklabels=[f"σ = {x:g}" for x in m.sigmas], ylabel="test loss ½(f − y)²")
    b.set_title("GD: initialization scale", fontsize=10)
    d = [Stat.of(m.adagrad_train), Stat.of(m.adagrad_test)]
    c.bar([0, 1], [x.mean for x in d], yerr=[x.std for x in d], capsize=4, color=["C0", "C1"])
    c.axhline(
        2 * Stat.of(m.gd_gap_t).mean, color="k", ls=":", lw=1, label="2 × gap of the later linearization"
    )
    c.set(
        xticks=[0, 1],
        xticklabels=["training points", "test points"],
        yscale="log",
        ylabel="RMS distance AdaGrad vs GD",
    )
    c.set_title("optimizer", fontsize=10)
    c.legend(fontsize=8, frameon=False)
    for ax in (a, b, c):
        ax.grid(alpha=0.3, axis="y", which="both")
    fig.suptitle(
        f"less over-parameterized: {m.arch}, {s.later.n_train} points of {dataset} "
        f"— after {CITE}, Sect. 6 and Fig. 1"
    )
    return _laid_out(fig)

"""Figures of `which-minimizer`, drawn from the measured table only (mean ± std over inits):

sigma-<dataset>.png     per architecture: test error vs σ (trained nets, the closed-form GD
                        limit, its σ-invariant interpolating part) and the init term's size
                        vs σ on log axes with the σ^(L+1) law (the paper's Fig. 2)
adaptive-<dataset>.png  test error per optimizer, and the distance of AdaGrad's and Adam's
                        outputs to GD's on training vs test points (Fig. 3)
batch-<dataset>.png     distance to the full-batch minimizer vs batch size, SGD vs AdaGrad,
                        reshuffled and cyclic order (Fig. 4)
later-<dataset>.png     the narrow net: gap of the trained net to the closed form linearized
                        at θ_0 vs at a later θ_T, test loss (and error) at two σ, AdaGrad vs
                        GD on training and test points (Fig. 1)
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from ...papers import NONNENMACHER_2021
from .claims import Table, distances, error, gap_to_closed_form, rms
from .settings import Settings

CITE = NONNENMACHER_2021.short


def _stat(values) -> tuple[float, float]:
    v = np.asarray(list(values), dtype=np.float64)
    return (float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0) if len(v) else (np.nan, np.nan)


def _ok(t: Table, s: Settings, **where) -> dict[int, int]:
    return {k: i for k, i in t.by_seed(**where).items() if t.ok(i, s.stop_loss)}


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def sigma_figure(path: Path, t: Table, s: Settings, dataset: str) -> Path | None:
    """Fig. 2 of Nonnenmacher et al. (2021), per architecture: test error vs σ (trained nets,
    the closed-form GD limit, its interpolating part alone) and the initialization term's
    RMS vs σ on log axes with the σ^(L+1) law; None when no σ run of `dataset` exists."""
    archs = [a for a in s.sigma_archs if t.rows(part="sigma", dataset=dataset, arch=a.key)]
    if not archs:
        return None
    fig, axes = plt.subplots(len(archs), 2, figsize=(11, 3.6 * len(archs)), squeeze=False)
    for (left, right), arch in zip(axes, archs, strict=True):
        sigmas = sorted({float(t["sigma"][i]) for i in t.rows(part="sigma", dataset=dataset, arch=arch.key)})
        curves: dict[str, list[tuple[float, float]]] = {
            "trained nets": [],
            "closed-form GD limit": [],
            "interpolating part only": [],
        }
        init_cf, init_tr = [], []
        for sigma in sigmas:
            rows = list(_ok(t, s, part="sigma", dataset=dataset, arch=arch.key, sigma=sigma).values())
            curves["trained nets"].append(_stat(error(t["f_test"][i], t["y_test"][i]) for i in rows))
            curves["closed-form GD limit"].append(
                _stat(error(t["interpolating"][i] + t["initialization"][i], t["y_test"][i]) for i in rows)
            )
            curves["interpolating part only"].append(
                _stat(error(t["interpolating"][i], t["y_test"][i]) for i in rows)
            )
            init_cf.append(_stat(rms(t["initialization"][i]) for i in rows))
            init_tr.append(_stat(rms(t["f_test"][i] - t["interpolating"][i]) for i in rows))
        for (label, values), style in zip(curves.items(), ("o-", "s--", "^:"), strict=True):
            m, sd = np.array(values).T
            left.errorbar(sigmas, 100 * m, yerr=100 * sd, fmt=style, capsize=3, label=label)
        left.set(
            xscale="log",
            xlabel="initialization scale σ",
            ylabel="test error (%)",
            title=f"{arch.title}: test error vs σ",
        )
        for values, style, label in (
            (init_tr, "o-", "trained: f_T − Θ̂(x,X)Θ̂⁻¹Y"),
            (init_cf, "s--", "closed form: f_0(x) − Θ̂(x,X)Θ̂⁻¹f_0(X)"),
        ):
            m, sd = np.array(values).T
            right.errorbar(sigmas, m, yerr=sd, fmt=style, capsize=3, label=label)
        m = np.array(init_cf)[:, 0]
        law = m[-1] * (np.array(sigmas) / sigmas[-1]) ** (arch.depth + 1)
        right.plot(sigmas, law, "k:", lw=1, label=f"∝ σ^{arch.depth + 1} (L+1)")
        right.set(
            xscale="log",
            yscale="log",
            xlabel="initialization scale σ",
            ylabel="RMS over test points",
            title=f"{arch.title}: initialization term",
        )
        for ax in (left, right):
            ax.grid(alpha=0.3, which="both")
            ax.legend(fontsize=8, frameon=False)
    fig.suptitle(
        f"{dataset} 0 vs 1, {s.n_train} training points, GD, mean ± std over "
        f"{s.inits} inits — after {CITE}, Fig. 2"
    )
    fig.tight_layout()
    return _save(fig, path)


def adaptive_figure(path: Path, t: Table, s: Settings, dataset: str) -> Path | None:
    """Fig. 3 of Nonnenmacher et al. (2021), per architecture: test error of GD, AdaGrad and
    Adam, and the RMS output distance of the adaptive minimizers to GD's on training vs test
    points, with GD's own linearization gap; None without adaptive runs."""
    archs = [a for a in s.adaptive_archs if t.rows(part="adaptive", dataset=dataset, arch=a.key)]
    if not archs:
        return None
    fig, axes = plt.subplots(len(archs), 2, figsize=(11, 3.4 * len(archs)), squeeze=False)
    opts = ("gd", "adagrad", "adam")
    for (left, right), arch in zip(axes, archs, strict=True):
        by = {o: _ok(t, s, part="adaptive", dataset=dataset, arch=arch.key, optimizer=o) for o in opts}
        rows = [i for r in by.values() for i in r.values()]
        if not rows:
            continue
        stats = [_stat(error(t["f_test"][i], t["y_test"][i]) for i in by[o].values()) for o in opts]
        left.bar(
            range(3),
            [100 * m for m, _ in stats],
            yerr=[100 * sd for _, sd in stats],
            capsize=4,
            color=["C0", "C1", "C2"],
        )
        left.set(
            xticks=range(3),
            xticklabels=["GD", "AdaGrad", "Adam"],
            ylabel="test error (%)",
            title=f"{arch.title}: test error",
        )
        width = 0.35
        for k, (split, label) in enumerate((("f_train", "training points"), ("f_test", "test points"))):
            ms = [_stat(distances(t, by[o], by["gd"], split)) for o in ("adagrad", "adam")]
            right.bar(
                np.arange(2) + (k - 0.5) * width,
                [m for m, _ in ms],
                width,
                yerr=[sd for _, sd in ms],
                capsize=4,
                label=label,
            )
        gap = _stat(gap_to_closed_form(t, by["gd"]))[0]
        right.axhline(gap, color="k", ls=":", lw=1, label="GD vs its closed form (finite width)")
        right.set(
            xticks=range(2),
            xticklabels=["AdaGrad vs GD", "Adam vs GD"],
            yscale="log",
            ylabel="RMS output distance",
            title=f"{arch.title}: distance to GD's minimizer",
        )
        right.legend(fontsize=8, frameon=False)
        for ax in (left, right):
            ax.grid(alpha=0.3, axis="y", which="both")
    fig.suptitle(f"{dataset} 0 vs 1, σ = {s.sigma_ref:g}: GD vs adaptive methods — after {CITE}, Fig. 3")
    fig.tight_layout()
    return _save(fig, path)


def batch_figure(path: Path, t: Table, s: Settings, dataset: str) -> Path | None:
    """Fig. 4 of Nonnenmacher et al. (2021): the RMS test-output distance to the full-batch
    minimizer against the batch size, SGD vs AdaGrad, reshuffled (and one cyclic point),
    with GD's linearization gap; None without batch runs."""
    arch = s.batch_arch
    rows = t.rows(part="batch", dataset=dataset, arch=arch.key)
    if not rows:
        return None
    n = int(t["n_train"][rows[0]])
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for opt, full, color in (("sgd", "gd", "C0"), ("adagrad", "adagrad", "C1")):
        ref = _ok(t, s, part="batch", dataset=dataset, arch=arch.key, optimizer=full, batch=n, sampler="full")
        sizes, stats = [], []
        for b in sorted(s.batch_sizes):
            mine = _ok(
                t,
                s,
                part="batch",
                dataset=dataset,
                arch=arch.key,
                optimizer=opt,
                batch=b,
                sampler="reshuffle",
            )
            if mine and ref:
                sizes.append(b)
                stats.append(_stat(distances(t, mine, ref)))
        if stats:
            m, sd = np.array(stats).T
            ax.errorbar(
                sizes,
                m,
                yerr=sd,
                fmt="o-",
                color=color,
                capsize=3,
                label=f"{'SGD vs GD' if opt == 'sgd' else 'AdaGrad vs full-batch AdaGrad'} (reshuffled)",
            )
        b = min(s.batch_sizes)
        cyc = _ok(
            t, s, part="batch", dataset=dataset, arch=arch.key, optimizer=opt, batch=b, sampler="cyclic"
        )
        if cyc and ref:
            m, sd = _stat(distances(t, cyc, ref))
            ax.errorbar([b], [m], yerr=[sd], fmt="x", color=color, ms=9, capsize=3, label="… cyclic order")
    ref = _ok(t, s, part="batch", dataset=dataset, arch=arch.key, optimizer="gd", batch=n, sampler="full")
    if ref:
        ax.axhline(
            _stat(gap_to_closed_form(t, ref))[0],
            color="k",
            ls=":",
            lw=1,
            label="GD vs its closed form (finite width)",
        )
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="batch size",
        ylabel="RMS test-output distance",
        title=f"{arch.title}, {dataset}: minimizer vs batch size\nafter {CITE}, Fig. 4",
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return _save(fig, path)


def later_figure(path: Path, t: Table, s: Settings, dataset: str) -> Path | None:
    """Sect. 6 / Fig. 1 of Nonnenmacher et al. (2021), the narrow net: the gap of the closed
    form linearized at θ_0 vs at θ_T, the test loss (and error) of GD at the two σ, and
    AdaGrad's distance to GD on training vs test points; None without later runs."""
    arch = s.later.arch
    rows = t.rows(part="later", dataset=dataset, arch=arch.key)
    if not rows:
        return None
    small, big = s.later.sigmas
    gd = {
        x: _ok(t, s, part="later", dataset=dataset, arch=arch.key, optimizer="gd", sigma=x)
        for x in (small, big)
    }
    ada = _ok(t, s, part="later", dataset=dataset, arch=arch.key, optimizer="adagrad", sigma=small)
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(14, 4))
    mine = [i for r in gd.values() for i in r.values() if t["later_prediction"][i] is not None]
    if mine:
        g0 = _stat(gap_to_closed_form(t, {i: i for i in mine}))
        gt = _stat(rms(t["f_test"][i] - t["later_prediction"][i]) for i in mine)
        a.bar([0, 1], [g0[0], gt[0]], yerr=[g0[1], gt[1]], capsize=4, color=["C3", "C2"])
        a.set(
            xticks=[0, 1],
            xticklabels=["linearized at θ_0", "linearized at θ_T"],
            ylabel="RMS test gap to the trained net",
            title="closed-form prediction vs trained net",
        )
    losses = [
        _stat(0.5 * np.mean((t["f_test"][i] - t["y_test"][i]) ** 2) for i in gd[x].values())
        for x in (small, big)
    ]
    errors = [_stat(error(t["f_test"][i], t["y_test"][i]) for i in gd[x].values()) for x in (small, big)]
    b.bar([0, 1], [m for m, _ in losses], yerr=[sd for _, sd in losses], capsize=4)
    for k, (m, _) in enumerate(errors):
        b.annotate(
            f"error {100 * m:.1f}%",
            (k, 0),
            textcoords="offset points",
            xytext=(0, 4),
            ha="center",
            fontsize=8,
        )
    b.set(
        xticks=[0, 1],
        xticklabels=[f"σ = {small:g}", f"σ = {big:g}"],
        ylabel="test loss ½(f − y)²",
        title="GD: initialization scale",
    )
    if ada and gd[small]:
        d = [_stat(distances(t, ada, gd[small], split)) for split in ("f_train", "f_test")]
        c.bar([0, 1], [m for m, _ in d], yerr=[sd for _, sd in d], capsize=4, color=["C0", "C1"])
        c.set(
            xticks=[0, 1],
            xticklabels=["training points", "test points"],
            yscale="log",
            ylabel="RMS distance AdaGrad vs GD",
            title="optimizer",
        )
    for ax in (a, b, c):
        ax.grid(alpha=0.3, axis="y", which="both")
    fig.suptitle(
        f"less over-parameterized: {arch.title}, {s.later.n_train} points of {dataset} — "
        f"after {CITE}, Sect. 6 and Fig. 1"
    )
    fig.tight_layout()
    return _save(fig, path)

"""The PCA view of optimizer paths for the gamma-principle reproduction (Li et al. 2018;
Appendix D.2 of the γ-principle paper): computes the grid and arrows once, saves them as
tables, draws from them."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from ...probes.landscape import loss_grid, path_pca, projected_gradients  # noqa: E402
from ...report.figures import save_figure  # noqa: E402
from ...runner import prepare  # noqa: E402
from ...store import Run, RunDir  # noqa: E402
from ..base import Claim, Lab, decide  # noqa: E402

ANGLE = 45.0  # degrees: "the SGD direction differs from the path's direction"
CLAIM_ID = "optimizer/pca-directions"
STATEMENT = (
    f"in the PCA plane of the momentum and Adam paths, the SGD update directions differ "
    f"from the paths' own directions (median angle > {ANGLE:g}°; the paper's Appendix D.2)"
)


def _pca_tables(lab: Lab, label: str, run: Run) -> dict[str, float]:
    """PCA of the saved iterates, the loss grid on their plane and projected SGD directions."""
    run_dir = RunDir(run.path)
    iterates = run_dir.iterates()
    if len(iterates) < 3:
        raise ValueError(f"{run.path}: needs checkpoint.iterates for the PCA view")
    steps = [s for s, _ in iterates]
    thetas = torch.stack([run_dir.load(f"iterates/{p.name}") for _, p in iterates])
    final = thetas[-1]
    pca = path_pca(thetas, final)
    parts = prepare(run.config)
    model, data = parts.model, parts.data
    model.load_state_dict(RunDir(run.path).load("final.pt"))
    x, y = data.batch(data.train, slice(0, 256))
    coords = pca.coords.numpy()
    lo, hi = coords.min(axis=0), coords.max(axis=0)
    pad = 0.25 * np.maximum(hi - lo, 1e-6)
    alphas = torch.linspace(float(lo[0] - pad[0]), float(hi[0] + pad[0]), 21)
    betas = torch.linspace(float(lo[1] - pad[1]), float(hi[1] + pad[1]), 21)
    grid = (
        loss_grid(
            model, parts.loss, x, y, final.to(parts.device), pca.directions.to(parts.device), alphas, betas
        )
        .cpu()
        .numpy()
    )
    sgd = (
        -projected_gradients(
            model, parts.loss, x, y, thetas.to(parts.device), pca.directions.to(parts.device)
        )
        .cpu()
        .numpy()
    )
    motion = np.diff(coords, axis=0)
    angles = [
        math.degrees(math.acos(np.clip(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)), -1, 1)))
        for a, b in zip(sgd[:-1], motion, strict=True)
        if np.linalg.norm(a) > 0 and np.linalg.norm(b) > 0
    ]
    a, b = np.meshgrid(alphas.numpy(), betas.numpy(), indexing="ij")
    lab.save_table(f"pca-{label}-grid", {"a": a.ravel(), "b": b.ravel(), "loss": grid.ravel()})
    lab.save_table(
        f"pca-{label}-path",
        {"step": steps, "pc1": coords[:, 0], "pc2": coords[:, 1], "sgd_pc1": sgd[:, 0], "sgd_pc2": sgd[:, 1]},
    )
    return {
        "explained_pc1": float(pca.explained[0]),
        "explained_pc2": float(pca.explained[1]),
        "median_angle_deg": float(np.median(angles)) if angles else math.nan,
        "iterates": len(steps),
    }


def pca_view(lab: Lab, runs: dict[str, Run]) -> Claim:
    """The `optimizer/pca-directions` claim and figure gamma-pca.png: per run (momentum,
    Adam), the loss contours log₁₀ L(θ* + a·pc1 + b·pc2) on the plane of the path's first
    two principal components (Li et al. 2018, "Visualizing the loss landscape of neural
    nets"; rows d_k = θ_k − θ*), the projected path, and the SGD update directions −∇L at
    the path's points as arrows. Holds when, in every run, the median angle between the
    SGD direction and the path's own step in that plane exceeds ANGLE (45°)."""
    evidence = {label: _pca_tables(lab, label, run) for label, run in runs.items()}
    fig, axes = plt.subplots(1, len(runs), figsize=(6 * len(runs), 5))
    for ax, label in zip(np.atleast_1d(axes), runs, strict=True):
        grid, path = lab.load_table(f"pca-{label}-grid"), lab.load_table(f"pca-{label}-path")
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
        ev = evidence[label]
        ax.set(
            title=f"{label}: PC1 {ev['explained_pc1']:.0%}, PC2 {ev['explained_pc2']:.0%} of variance",
            xlabel="PC1",
            ylabel="PC2",
        )
        ax.legend(frameon=False, fontsize=8)
    fig.suptitle(
        "log10 training loss on the plane of the path's two principal directions (Li et al. 2018's view)"
    )
    fig.tight_layout()
    save_figure(fig, lab.figure("gamma-pca"), dpi=110)
    angles = {label: e["median_angle_deg"] for label, e in evidence.items()}
    return decide(
        CLAIM_ID,
        STATEMENT,
        None if any(math.isnan(x) for x in angles.values()) else all(x > ANGLE for x in angles.values()),
        headline=", ".join(f"{k} {v:.0f}°" for k, v in angles.items()),
        meaning="the paper's picture: SGD's own direction at points of the momentum/Adam "
        "paths points elsewhere than those paths go",
        **evidence,
    )

"""The PCA view of optimizer paths for the gamma-principle reproduction (Li et al. 2018;
Appendix D.2 of the γ-principle paper): computes the grid and arrows once, saves them as
tables, draws from them."""

from __future__ import annotations

import math
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from ...probes.landscape import loss_grid, path_pca, projected_gradients  # noqa: E402
from ...report.figures import save_figure  # noqa: E402
from ...runner import prepare  # noqa: E402
from ...store import Run, RunDir  # noqa: E402
from ..base import Claim, Lab, decide, not_applicable  # noqa: E402

ANGLE = 45.0  # degrees: "the SGD direction differs from the path's direction"
CLAIM_ID = "optimizer/pca-directions"
STATEMENT = (
    f"in the PCA plane of the momentum and Adam paths, the SGD update directions differ "
    f"from the paths' own directions (median angle > {ANGLE:g}°; the paper's Appendix D.2)"
)
MEANING = (
    "the paper's picture: SGD's own direction at points of the momentum/Adam "
    "paths points elsewhere than those paths go"
)


def step_angles(directions: np.ndarray, motion: np.ndarray) -> list[float]:
    """Angles in degrees between each SGD direction (row of `directions`) and the path's own
    step from the same point (row of `motion`), both in the PCA plane; rows where either is 0
    have no angle and are left out.

    >>> sgd = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    >>> step_angles(sgd, np.array([[0.0, 2.0], [0.0, 3.0], [1.0, 0.0]]))
    [90.0, 0.0]
    """
    out = []
    for a, b in zip(directions, motion, strict=True):
        na, nb = np.linalg.norm(a), np.linalg.norm(b)
        if na > 0 and nb > 0:
            out.append(math.degrees(math.acos(np.clip(np.dot(a, b) / (na * nb), -1, 1))))
    return out


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
    angles = step_angles(sgd[:-1], np.diff(coords, axis=0))
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
    return pca_directions_claim({label: e["median_angle_deg"] for label, e in evidence.items()}, evidence)


def pca_directions_claim(median_angle: dict[str, float], evidence: dict[str, Any]) -> Claim:
    """`optimizer/pca-directions` (Appendix D.2 of "An optimization principle of deep
    learning?", after Li et al. 2018's PCA view): in every run (momentum, Adam), the median angle
    between the SGD direction and the path's own step in the PCA plane exceeds ANGLE (45°,
    halfway between the same direction and a perpendicular one). Not applicable when a run has no
    angle (its path does not move in the plane). `evidence` holds the PCA numbers per run."""
    missing = [label for label, angle in median_angle.items() if math.isnan(angle)]
    if missing:
        reason = f"no step of the path of {', '.join(missing)} moves in its PCA plane"
        return not_applicable(CLAIM_ID, STATEMENT, reason, meaning=MEANING, **evidence)
    return decide(
        CLAIM_ID,
        STATEMENT,
        all(angle > ANGLE for angle in median_angle.values()),
        headline=", ".join(f"{k} {v:.0f}°" for k, v in median_angle.items()),
        meaning=MEANING,
        **evidence,
    )

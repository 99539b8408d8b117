"""The PCA view of an optimizer path (Li et al. 2018, "Visualizing the loss landscape of neural
nets"; Appendix D.2 of the γ-principle paper): the plane of the path's first two principal
components, the loss on a grid of that plane, the path projected on it and the SGD update
directions −∇L at the path's points."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ....probes.landscape import loss_grid, path_pca, projected_gradients
from ....runner import prepare
from ....store import Run, RunDir


@dataclass(frozen=True)
class PcaView:
    """One path's PCA view as tables (`grid`: columns a, b, loss on the plane θ* + a·pc1 + b·pc2;
    `path`: step, pc1, pc2 and the projected SGD direction sgd_pc1, sgd_pc2 per saved iterate) and
    `numbers`: the variance the two components explain, the median angle between the SGD
    direction and the path's own step, and how many iterates."""

    grid: dict[str, np.ndarray]
    path: dict[str, Any]
    numbers: dict[str, float]


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


def pca_view(run: Run, grid_points: int = 21, images: int = 256) -> PcaView:
    """The `PcaView` of `run` from its saved iterates (rows d_k = θ_k − θ*, θ* the final one):
    the loss on a `grid_points`² grid spanning the projected path plus a quarter on each side, and
    the SGD directions, both on the first `images` training images."""
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
    model.load_state_dict(run_dir.load("final.pt"))
    x, y = data.batch(data.train, slice(0, images))
    coords = pca.coords.numpy()
    lo, hi = coords.min(axis=0), coords.max(axis=0)
    pad = 0.25 * np.maximum(hi - lo, 1e-6)
    alphas = torch.linspace(float(lo[0] - pad[0]), float(hi[0] + pad[0]), grid_points)
    betas = torch.linspace(float(lo[1] - pad[1]), float(hi[1] + pad[1]), grid_points)
    directions = pca.directions.to(parts.device)
    grid = loss_grid(model, parts.loss, x, y, final.to(parts.device), directions, alphas, betas).cpu().numpy()
    sgd = -projected_gradients(model, parts.loss, x, y, thetas.to(parts.device), directions).cpu().numpy()
    angles = step_angles(sgd[:-1], np.diff(coords, axis=0))
    a, b = np.meshgrid(alphas.numpy(), betas.numpy(), indexing="ij")
    return PcaView(
        {"a": a.ravel(), "b": b.ravel(), "loss": grid.ravel()},
        {"step": steps, "pc1": coords[:, 0], "pc2": coords[:, 1], "sgd_pc1": sgd[:, 0], "sgd_pc2": sgd[:, 1]},
        {
            "explained_pc1": float(pca.explained[0]),
            "explained_pc2": float(pca.explained[1]),
            "median_angle_deg": float(np.median(angles)) if angles else math.nan,
            "iterates": len(steps),
        },
    )

"""The label comparison's measurements at each minimizer (Zhang et al. 2017, §5 of Theory IIb):

λ_max      top Hessian eigenvalue of the training loss (the `hessian` probe, Lanczos)
trace      Hutchinson's estimate of tr H, with its standard error
sharpness  mean loss increase under random filter-normalized perturbations of relative size r
(Li et al. 2018's normalization, each filter moved by r·‖filter‖)
simplex    the three-point interpolation w_λ = λ1w1 + λ2w2 + λ3w3 between the three seeds'
minimizers, summarized over the simplex and its edges (`surface_summary`)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ....probes.landscape import perturbation_sharpness, simplex_lambdas, three_point_interpolation
from ....runner import prepare
from ....store import Run
from ..settings import LabelSettings


def minimizer(run: Run):
    """(model at the final iterate, flat θ, training inputs, their labels, loss) of a run."""
    parts = prepare(run.config)
    parts.model.load_state_dict(run.checkpoint("final.pt"))
    theta = torch.cat([p.detach().reshape(-1) for p in parts.model.parameters() if p.requires_grad])
    return parts.model, theta, parts.data.train.x, parts.data.train.y, parts.loss


def measure_run(run: Run, s: LabelSettings, seed: int) -> dict[str, float]:
    """The flatness measures of one minimizer, each with its estimator's standard error where
    it has one (Hutchinson's trace; the mean over random perturbation directions)."""
    model, theta, x, y, loss = minimizer(run)
    last = run.metrics.to_pylist()[-1]
    row = {
        "lambda_max": last.get("hessian_lambda_max", math.nan),
        "trace": last.get("hessian_trace", math.nan),
        "trace_se": last.get("hessian_trace_se", math.nan),
        "train_loss": run.final.get("train_loss"),
        "epochs": run.info.epochs,
        "weight_norm": float(torch.linalg.vector_norm(theta)),
    }
    for r in s.radii:
        sh = perturbation_sharpness(
            model, loss, x, y, theta, r, s.directions, torch.Generator().manual_seed(1000 + seed), chunk=8
        )
        row[f"sharpness_mean_{r:g}"] = sh.mean_increase
        row[f"sharpness_se_{r:g}"] = float(sh.increases.std() / math.sqrt(len(sh.increases)))
        row[f"sharpness_max_{r:g}"] = sh.max_increase
    return row


def simplex_corners(lam: np.ndarray) -> np.ndarray:
    """Row indices in `lam` [G, 3] of the simplex's corners λ = e_1, e_2, e_3, in that order: the
    three minimizers themselves. The whole row must match: on the enlarged grid of
    `simplex_lambdas` other rows have some λ_i = 1 too."""
    out = []
    for corner in np.eye(3):
        rows = np.flatnonzero(np.abs(lam - corner).max(axis=1) < 1e-12)
        if len(rows) != 1:
            raise ValueError(f"the λ grid holds corner {corner.tolist()} {len(rows)} times, not once")
        out.append(int(rows[0]))
    return np.array(out)


def surface_summary(lam: np.ndarray, values: np.ndarray, flat_level: float) -> dict[str, Any]:
    """Summaries of the interpolated loss L(w_λ) (`values`, one per row of `lam`) over the simplex
    (λ ≥ 0): its mean above the mean of the three corners (`simplex_excess`); for each edge
    (λ_k = 0, the path between the other two minimizers) its mean above the mean of its two
    corners (`edge_excess`); the corners' mean, the value at the lattice point nearest the
    centroid, the maximum, and the fraction of the simplex's lattice points with loss ≤
    `flat_level`."""
    inside = (lam >= -1e-12).all(axis=1)
    corners = values[simplex_corners(lam)]
    centroid = values[np.argmin(np.abs(lam - 1 / 3).sum(axis=1))]
    edges = []
    for k in range(3):
        on_edge = inside & (np.abs(lam[:, k]) < 1e-12)
        edges.append(float(values[on_edge].mean() - np.delete(corners, k).mean()))
    return {
        "corner_mean": float(corners.mean()),
        "simplex_mean": float(values[inside].mean()),
        "simplex_excess": float(values[inside].mean() - corners.mean()),
        "edge_excess": edges,
        "centroid": float(centroid),
        "simplex_max": float(values[inside].max()),
        "flat_fraction": float((values[inside] <= flat_level).mean()),
    }


def interpolation_surface(runs: list[Run], s: LabelSettings) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """L(w_λ) on `simplex_lambdas` for the three runs' minimizers, and its `surface_summary`."""
    parts = [minimizer(r) for r in runs]
    model, _, x, y, loss = parts[0]
    w = torch.stack([p[1] for p in parts])
    lam = simplex_lambdas(s.simplex_steps, s.simplex_margin)
    values = three_point_interpolation(model, loss, x, y, w, lam, chunk=8).double().numpy()
    lam_np = lam.numpy()
    return lam_np, values, surface_summary(lam_np, values, s.flat_level)


def flatness_table(measured: dict[str, dict[str, Any]]) -> dict[str, list[Any]]:
    """tables/labels_flatness: one row per measured run (labels-<kind>-<seed>): its kind, seed
    and every measure of `measure_run` (NaN where missing)."""
    table: dict[str, list[Any]] = {"run": [], "kind": [], "seed": []}
    for name, row in measured.items():
        table["run"].append(name)
        table["kind"].append(name.split("-")[1])
        table["seed"].append(int(name.rsplit("-", 1)[1]))
        for k, v in row.items():
            table.setdefault(k, []).append(float(v) if v is not None else math.nan)
    return table

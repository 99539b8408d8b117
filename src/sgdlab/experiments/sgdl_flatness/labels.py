"""Natural vs random labels (Zhang et al. 2017, §5 of Theory IIb): the report's MLP trained by
SGD to zero training error on the same images with their labels and with uniformly random
labels (data.label_noise = 1), three seeds each, then compared by four flatness measures at the
minimizers:

  λ_max      top Hessian eigenvalue of the training loss (the `hessian` probe, Lanczos)
  trace      Hutchinson's estimate of tr H, with its standard error
  sharpness  mean loss increase under random filter-normalized perturbations of relative size r
             (Li et al. 2018's normalization, each filter moved by r·‖filter‖)
  simplex    the three-point interpolation w_λ = λ1w1 + λ2w2 + λ3w3 between the three seeds'
             minimizers: the mean loss over the simplex (λ ≥ 0) above the corners' mean

Runs that miss zero training error are named in the premise claim and left out."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ...probes.landscape import perturbation_sharpness, simplex_lambdas, three_point_interpolation
from ...runner import prepare
from ...store import Run
from ..base import Claim, decide, not_applicable
from ..premise import Premise, premise_claim
from .settings import BATCH, MLP, LabelSettings

KINDS = ("natural", "random")


def label_configs(s: LabelSettings) -> dict[str, dict[str, Any]]:
    """The six label runs: the report's MLP trained by SGD on the same images with natural
    or uniformly random labels (label_noise 1), seeds `s.seeds`, until the training loss is
    below `s.stop_loss` (or the epoch cap), with the Hessian probe at the end."""
    out = {}
    for kind in KINDS:
        data = dict(s.data, seed=0, label_noise=1.0 if kind == "random" else 0.0)
        for seed in s.seeds:
            out[f"labels-{kind}-{seed}"] = {
                "seed": seed,
                "data": data,
                "model": dict(MLP),
                "optim": {"name": "sgd", "lr": s.lr},
                "train": {"batch_size": BATCH, "epochs": s.max_epochs, "stop_loss": s.stop_loss},
                "probes": {
                    "use": ["eval", "hessian"],
                    "eval": {"schedule": "epoch:10"},
                    "hessian": {
                        "schedule": "final",
                        "subset": int(s.data.get("n_train") or 10**9),
                        "tol": 1e-4,
                        **s.hessian,
                    },
                },
            }
    return out


def premise(s: LabelSettings) -> Premise:
    """Zero training error at a training loss ≤ `s.stop_loss`: the minimizers compared."""
    return Premise(max_loss=s.stop_loss, max_error=0.0)


def minimizer(run: Run):
    """(model at the final iterate, flat θ, training inputs, their labels, loss) of a run."""
    parts = prepare(run.config)
    parts.model.load_state_dict(run.checkpoint("final.pt"))
    theta = torch.cat([p.detach().reshape(-1) for p in parts.model.parameters() if p.requires_grad])
    return parts.model, theta, parts.data.train.x, parts.data.train.y, parts.loss


def measure_run(run: Run, s: LabelSettings, seed: int) -> dict[str, float]:
    """The flatness measures of one minimizer."""
    model, theta, x, y, loss = minimizer(run)
    last = run.metrics.to_pylist()[-1]
    row = {
        "lambda_max": last.get("hessian_lambda_max", math.nan),
        "trace": last.get("hessian_trace", math.nan),
        "trace_se": last.get("hessian_trace_se", math.nan),
        "train_loss": run.final.get("train_loss"),
        "epochs": run.summary.get("epochs"),
        "weight_norm": float(torch.linalg.vector_norm(theta)),
    }
    for r in s.radii:
        sh = perturbation_sharpness(
            model, loss, x, y, theta, r, s.directions, torch.Generator().manual_seed(1000 + seed), chunk=8
        )
        row[f"sharpness_mean_{r:g}"] = sh.mean_increase
        row[f"sharpness_max_{r:g}"] = sh.max_increase
    return row


def interpolation_surface(
    runs: list[Run], s: LabelSettings
) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """L(w_λ) on `simplex_lambdas` for the three runs' minimizers, and its summaries."""
    parts = [minimizer(r) for r in runs]
    model, _, x, y, loss = parts[0]
    w = torch.stack([p[1] for p in parts])
    lam = simplex_lambdas(s.simplex_steps, s.simplex_margin)
    values = three_point_interpolation(model, loss, x, y, w, lam, chunk=8).double().numpy()
    lam_np = lam.numpy()
    inside = (lam_np >= -1e-12).all(axis=1)
    corners = values[(np.abs(lam_np - 1) < 1e-12).any(axis=1)]
    centroid = values[np.argmin(np.abs(lam_np - 1 / 3).sum(axis=1))]
    summary = {
        "corner_mean": float(corners.mean()),
        "simplex_mean": float(values[inside].mean()),
        "simplex_excess": float(values[inside].mean() - corners.mean()),
        "centroid": float(centroid),
        "simplex_max": float(values[inside].max()),
        "flat_fraction": float((values[inside] <= s.flat_level).mean()),
    }
    return lam_np, values, summary


MEASURES = (
    ("lambda_max", "top Hessian eigenvalue λ_max"),
    ("trace", "Hessian trace (Hutchinson)"),
    ("sharpness", "mean loss increase under filter-normalized perturbations"),
    ("simplex_excess", "mean loss over the three-point simplex above its corners"),
)


def label_claims(
    runs: dict[str, Run],
    s: LabelSettings,
    measured: dict[str, dict[str, float]],
    surfaces: dict[str, dict[str, float]],
) -> list[Claim]:
    """The label-comparison claims (after Zhang, Liao, Rakhlin, Miranda, Golowich & Poggio 2017,
    "Theory of deep learning IIb: optimization properties of SGD", §5):

    - `labels/zero-train-error`: the premise, every run reaching zero training error.
    - `labels/lambda_max`, `labels/trace`, `labels/sharpness`: every natural-label seed's
      measure (λ_max, Hutchinson tr H, mean loss increase under filter-normalized
      perturbations of relative size r = `s.radii[0]`) is below every random-label seed's.
    - `labels/simplex_excess`: the natural surface's mean loss over the simplex above its
      corners is below the random one's.
    - `labels/measures-agree`: the measures decided agree on which kind is flatter (by mean).

    A measure is not applicable without runs (or, for the simplex, three minimizers) of
    both kinds at zero training error."""
    claim, meets = premise_claim("labels/zero-train-error", "natural and random labels", premise(s), runs)
    claims = [claim]
    r0 = f"sharpness_mean_{s.radii[0]:g}"
    groups = {kind: [lb for lb in meets if lb.startswith(f"labels-{kind}-")] for kind in KINDS}
    directions = {}
    for key, title in MEASURES:
        statement = (
            f"Natural-label minimizers are flatter than random-label ones by the {title}"
            + (f" (r = {s.radii[0]:g})" if key == "sharpness" else "")
            + (
                " (one surface per label kind, through its three seeds' minimizers)"
                if key == "simplex_excess"
                else " (every natural seed below every random one)"
            )
        )
        if key == "simplex_excess":
            if not all(kind in surfaces for kind in KINDS):
                claims.append(
                    not_applicable(
                        f"labels/{key}",
                        statement,
                        "the interpolation needs three minimizers of each label kind at zero training error",
                        meets=meets,
                    )
                )
                continue
            nat, rnd = [surfaces["natural"]["simplex_excess"]], [surfaces["random"]["simplex_excess"]]
        else:
            field = r0 if key == "sharpness" else key
            if not groups["natural"] or not groups["random"]:
                claims.append(
                    not_applicable(
                        f"labels/{key}",
                        statement,
                        "needs runs of both label kinds at zero training error",
                        meets=meets,
                    )
                )
                continue
            nat = [measured[lb][field] for lb in groups["natural"]]
            rnd = [measured[lb][field] for lb in groups["random"]]
        mean_n, mean_r = float(np.mean(nat)), float(np.mean(rnd))
        directions[key] = "natural" if mean_n < mean_r else "random"
        claims.append(
            decide(
                f"labels/{key}",
                statement,
                max(nat) < min(rnd),
                headline=f"natural {mean_n:.3g} vs random {mean_r:.3g} (×{mean_r / mean_n:.2g})"
                if mean_n
                else f"natural {mean_n:.3g} vs random {mean_r:.3g}",
                meaning="Zhang et al.: minimizers that generalize (natural labels) sit in flatter regions "
                "than those that memorize (random labels)",
                natural=nat,
                random=rnd,
                natural_mean=mean_n,
                random_mean=mean_r,
                flatter_by_mean=directions[key],
            )
        )
    statement = "The flatness measures agree on which label kind gives the flatter minimizers"
    if len(directions) < 2:
        claims.append(not_applicable("labels/measures-agree", statement, "fewer than two measures decided"))
    else:
        agree = len(set(directions.values())) == 1
        claims.append(
            decide(
                "labels/measures-agree",
                statement,
                agree,
                headline=", ".join(f"{k}: {v}" for k, v in directions.items()),
                meaning="curvature (λ_max, trace), random-direction sharpness and the simplex surface "
                "are different summaries; agreement makes the flatness verdict robust",
                flatter_by_mean=directions,
            )
        )
    return claims

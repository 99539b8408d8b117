"""SGDL on the report's MLP (Dense 512 → ReLU → Dense 512 → ReLU → Dense 10, batch 32, lr 0.01)
for each noise level γ' (constant, as in the paper), on each dataset of the scale: the training
curves, and the noise level at which training stops converging."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...store import Run
from ..base import Claim, decide
from .settings import BATCH, LR, MLP, SweepSettings


def sweep_configs(s: SweepSettings) -> dict[str, dict[str, Any]]:
    """One SGDL run per (dataset, γ'): the report's MLP 512-512, batch 32, lr 0.01, constant
    noise γ' (θ ← θ − η∇V(θ; z) + γ'W, W ~ N(0, I)), evaluated every epoch; named
    sgdl-<dataset>-<γ'>."""
    out = {}
    for key, data in s.datasets:
        for noise in s.noises:
            out[f"sgdl-{key}-{noise:g}"] = {
                "seed": 0,
                "data": dict(data),
                "model": dict(MLP),
                "optim": {"name": "sgdl", "lr": LR, "noise": noise, "noise_decay": "none"},
                "train": {"batch_size": BATCH, "epochs": s.epochs},
                "probes": {"use": ["eval"], "eval": {"schedule": "epoch"}},
            }
    return out


def converges(run: Run, fraction: float) -> tuple[bool, float, float, float]:
    """(converged, initial loss, final loss, median loss over the last quarter of the epochs):
    converged when that median is ≤ fraction × the initial loss (the median, because noisy runs
    jump from epoch to epoch); a diverged run does not converge."""
    epochs, loss = run.epochs("train_loss")
    first, last = float(loss[0]), float(run.final.get("train_loss") or math.nan)
    tail = loss[epochs >= 0.75 * epochs[-1]]
    median = float(np.median(tail)) if len(tail) else math.nan
    ok = run.status == "completed" and math.isfinite(last) and median <= fraction * first
    return ok, first, last, median


def sweep_claims(key: str, runs: dict[float, Run], s: SweepSettings) -> list[Claim]:
    """The two noise-sweep claims on dataset `key` (after Zhang, Liao, Rakhlin, Miranda,
    Golowich & Poggio 2017, "Theory of deep learning IIb: optimization properties of SGD"):

    - `mlp/<key>-noise-threshold`: SGDL converges (median training loss over the last
      quarter of the epochs ≤ `converge_fraction` × the initial loss, run completed) for
      some γ' and not for some larger one, with every converging γ' below the smallest
      failing one.
    - `mlp/<key>-report-all-similar`: the report's reading, that every swept γ' converges."""
    noises = sorted(runs)
    results = {n: converges(runs[n], s.converge_fraction) for n in noises}
    ok = [n for n in noises if results[n][0]]
    bad = [n for n in noises if not results[n][0]]
    threshold = min(bad) if bad else None
    monotone = all(n < threshold for n in ok) if threshold is not None else True
    evidence = {
        f"{n:g}": {
            "converges": results[n][0],
            "initial_train_loss": results[n][1],
            "final_train_loss": results[n][2],
            "last_quarter_median_loss": results[n][3],
            "final_train_error": runs[n].final.get("train_error"),
            "final_test_error": runs[n].final.get("test_error"),
            "status": runs[n].status,
            **({"diverged_at": runs[n].summary.get("diverged_at")} if runs[n].status == "diverged" else {}),
        }
        for n in noises
    }
    where = (
        f"converges for γ' ≤ {max(ok):g}, not for γ' ≥ {threshold:g}"
        if ok and threshold is not None
        else "converges at every γ'"
        if not bad
        else "converges at no γ'"
    )
    diverged = [
        f"γ' = {n:g} diverged at step {runs[n].summary.get('diverged_at')}"
        for n in noises
        if runs[n].status == "diverged"
    ]
    where = "; ".join([where] + diverged)
    claims = [
        decide(
            f"mlp/{key}-noise-threshold",
            f"{key}: SGDL on the MLP converges (median training loss over "
            f"the last quarter of the epochs ≤ {s.converge_fraction:.0%} of the initial) below "
            "some noise level and stops converging "
            "above it, within the swept γ'",
            bool(ok) and threshold is not None and monotone,
            headline=where,
            meaning="the noise SGDL tolerates is bounded: past it the Langevin term "
            "swamps the gradient step (γ'·√P per step against η‖∇L‖)",
            threshold=threshold,
            runs=evidence,
        )
    ]
    claims.append(
        decide(
            f"mlp/{key}-report-all-similar",
            f"{key}: every swept γ' gives similarly good convergence "
            "(the report: “all of them have similar good results”)",
            not bad,
            headline=where,
            meaning="the report's reading of its SGDL curves, checked at each level",
            runs=evidence,
        )
    )
    return claims

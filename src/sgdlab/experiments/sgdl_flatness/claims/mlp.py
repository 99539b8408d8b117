"""The noise sweep's claims: SGDL on the report's MLP (Dense 512 → ReLU → Dense 512 → ReLU →
Dense 10, batch 32, lr 0.01) for each noise level γ', under the paper's constant noise and under
the report's code's decaying noise γ'/(1 + t), on each dataset of the scale; plain SGD (γ' = 0)
on several seeds as the baseline whose seed-to-seed spread says what "similar" results are.

Each claim is one function of plain measured numbers (`SweepRun`, `Baseline`):

  noise_threshold_claim  constant noise: training converges below some γ' and not above it
  all_similar_claim      every γ' of a schedule converges and ends with training and test
                         error within the baseline's spread of plain SGD's (the report: "all of
                         them have similar good results")
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ...base import Claim, decide, not_applicable
from ..configs import SCHEDULES
from ..measure.mlp import SweepRun
from ..settings import SweepSettings


def converges(r: SweepRun, fraction: float) -> bool:
    """Converged: the run completed with a finite final loss and its last-quarter median
    training loss ≤ `fraction` × the initial loss."""
    return (
        r.status == "completed" and math.isfinite(r.final_loss) and r.tail_loss <= fraction * r.initial_loss
    )


@dataclass(frozen=True)
class Baseline:
    """Plain SGD (γ' = 0) on several seeds: its final training and test errors, and how far a
    run may lie from their mean and still be "similar": `sigmas` × their standard deviation
    across seeds, but at least one example's worth (1/n_train, 1/n_test: the resolution of an
    error rate)."""

    runs: tuple[SweepRun, ...]
    n_train: int
    n_test: int
    sigmas: float = 3.0

    def values(self, metric: str) -> np.ndarray:
        """`metric` ("train_error" or "test_error") of every seed."""
        return np.array([getattr(r, metric) for r in self.runs], dtype=float)

    def tolerance(self, metric: str) -> float:
        """max(sigmas · sd across seeds, 1/n) for `metric`."""
        n = self.n_train if metric == "train_error" else self.n_test
        return max(self.sigmas * float(np.std(self.values(metric), ddof=1)), 1 / n)

    def describe(self) -> dict[str, Any]:
        """The baseline as evidence: per metric the seeds' values, mean, sd and tolerance."""
        out: dict[str, Any] = {"seeds": [r.seed for r in self.runs], "rule": self.rule()}
        for metric in ("train_error", "test_error"):
            v = self.values(metric)
            out[metric] = {
                "values": v.tolist(),
                "mean": float(v.mean()),
                "sd": float(np.std(v, ddof=1)),
                "tolerance": self.tolerance(metric),
            }
        return out

    def rule(self) -> str:
        """The tolerance rule in words."""
        return (
            f"|error − mean over the γ' = 0 seeds| ≤ max({self.sigmas:g} × their sd, one example: "
            f"1/{self.n_train} train, 1/{self.n_test} test)"
        )


def _evidence(r: SweepRun, fraction: float) -> dict[str, Any]:
    return {**asdict(r), "converges": converges(r, fraction)}


def noise_threshold_claim(key: str, runs: list[SweepRun], fraction: float) -> Claim:
    """Claim `mlp/<key>-noise-threshold` (constant noise, the paper's SGDL): training converges
    (`converges`) for some γ' and not for some larger one, with every converging γ' below the
    smallest failing one. `runs`: one per γ' (γ' = 0 included)."""
    by_noise = {r.noise: r for r in runs}
    noises = sorted(by_noise)
    ok = [n for n in noises if converges(by_noise[n], fraction)]
    bad = [n for n in noises if n not in ok]
    threshold = min(bad) if bad else None
    monotone = threshold is not None and all(n < threshold for n in ok)
    where = (
        f"converges for γ' ≤ {max(ok):g}, not for γ' ≥ {threshold:g}"
        if ok and threshold is not None
        else "converges at every γ'"
        if not bad
        else "converges at no γ'"
    )
    diverged = [f"γ' = {r.noise:g} diverged at step {r.diverged_at}" for r in runs if r.status == "diverged"]
    return decide(
        f"mlp/{key}-noise-threshold",
        f"{key}: SGDL with constant noise on the MLP converges (median training loss over the last "
        f"quarter of the epochs ≤ {fraction:.0%} of the initial) below some noise level and stops "
        "converging above it, within the swept γ'",
        bool(ok) and monotone,
        headline="; ".join([where, *diverged]),
        meaning="the noise SGDL tolerates is bounded: past it the Langevin term "
        "swamps the gradient step (γ'·√P per step against η‖∇L‖)",
        threshold=threshold,
        runs={f"{r.noise:g}": _evidence(r, fraction) for r in sorted(runs, key=lambda r: r.noise)},
    )


def similar(r: SweepRun, baseline: Baseline, fraction: float) -> dict[str, Any]:
    """Whether run `r` has "similar good results" to plain SGD: it converges, and its final
    training and test errors each lie within the baseline's tolerance of the seeds' mean."""
    out: dict[str, Any] = {"converges": converges(r, fraction)}
    for metric in ("train_error", "test_error"):
        gap = getattr(r, metric) - float(baseline.values(metric).mean())
        out[f"{metric}_gap"] = gap
        out[f"{metric}_within"] = bool(abs(gap) <= baseline.tolerance(metric))
    out["similar"] = bool(out["converges"] and out["train_error_within"] and out["test_error_within"])
    out["how"] = difference(out)
    return out


def difference(check: dict[str, Any]) -> str:
    """How a `similar` check differs from plain SGD, in a word: "similar", "no convergence", or
    "better" / "worse" / "mixed" by the signs of the error gaps outside the tolerance."""
    if check["similar"]:
        return "similar"
    if not check["converges"]:
        return "no convergence"
    signs = {check[f"{m}_gap"] > 0 for m in ("train_error", "test_error") if not check[f"{m}_within"]}
    return "mixed" if len(signs) > 1 else ("worse" if signs.pop() else "better")


def all_similar_claim(
    claim_id: str, schedule_text: str, runs: list[SweepRun], baseline: Baseline, fraction: float
) -> Claim:
    """Claim `claim_id`: every noisy run of one schedule (`runs`, γ' > 0) has "similar good
    results" to plain SGD (`similar`). Premise: plain SGD itself converges on every baseline
    seed (else "similar good" has no reference), with at least two seeds to measure the spread."""
    statement = (
        f"Every swept γ' > 0 with {schedule_text} gives results similar to plain SGD's (γ' = 0): "
        "it converges, and its final training and test errors lie within the seed-to-seed spread "
        "of plain SGD (the report: “all of them have similar good results”)"
    )
    if len(baseline.runs) < 2:
        return not_applicable(
            claim_id, statement, "fewer than two plain-SGD seeds: no spread to compare with"
        )
    base = baseline.describe()
    unconverged = [r.seed for r in baseline.runs if not converges(r, fraction)]
    if unconverged:
        return not_applicable(
            claim_id,
            statement,
            f"plain SGD (γ' = 0) did not converge on seed(s) {unconverged}: no good result to be similar to",
            baseline=base,
        )
    checks = {f"{r.noise:g}": {**_evidence(r, fraction), **similar(r, baseline, fraction)} for r in runs}
    failing = [n for n, c in checks.items() if not c["similar"]]
    failing_text = [f"γ' = {n}, {checks[n]['how']}" for n in failing]
    mean_test = base["test_error"]["mean"]
    return decide(
        claim_id,
        statement,
        not failing,
        headline=f"{len(checks) - len(failing)}/{len(checks)} noise levels similar"
        + (f" (not: {'; '.join(failing_text)})" if failing else "")
        + f"; test error at γ' = 0 {mean_test:.1%} ± {base['test_error']['tolerance']:.1%}, at γ' > 0 "
        + ", ".join(f"{c['test_error']:.1%}" for c in checks.values()),
        meaning="the report's reading of its SGDL curves, checked in accuracy and loss against the "
        "measured seed noise of plain SGD",
        baseline=base,
        tolerance=baseline.rule(),
        runs=checks,
        failing=failing,
    )


def sweep_claims(key: str, runs: dict[str, SweepRun], baseline: Baseline, s: SweepSettings) -> list[Claim]:
    """The noise-sweep claims of dataset `key` (after Zhang, Liao, Rakhlin, Miranda, Golowich &
    Poggio 2017, "Theory of deep learning IIb: optimization properties of SGD", and the report of
    Osipov et al. 2018), from the `SweepRun`s by name and the plain-SGD `Baseline`:

    - `mlp/<key>-noise-threshold`: `noise_threshold_claim` under constant noise (seed 0).
    - `mlp/<key>-report-all-similar`: `all_similar_claim` under the report's decaying γ'/(1 + t).
    - `mlp/<key>-constant-all-similar`: the same under the paper's constant γ'."""
    seed0 = [r for r in baseline.runs if r.seed == 0]
    noisy = {sch: [r for r in runs.values() if r.schedule == sch and r.noise > 0] for sch in SCHEDULES}
    return [
        noise_threshold_claim(key, seed0 + noisy["constant"], s.converge_fraction),
        all_similar_claim(
            f"mlp/{key}-report-all-similar",
            "the report's decaying noise γ'/(1 + t)",
            noisy["decaying"],
            baseline,
            s.converge_fraction,
        ),
        all_similar_claim(
            f"mlp/{key}-constant-all-similar",
            "the paper's constant noise",
            noisy["constant"],
            baseline,
            s.converge_fraction,
        ),
    ]

"""One ablation's runs → the plain numbers its claims are decided from: how fast each run reaches
the common loss level, γ before that point, Theorem 1 on each run that meets the premise, and the
seed-to-seed baseline of speed.

Speed and γ describe the same stretch of each path: the *common level* is the premise threshold
L, which every premise-satisfying run reaches. Speed is the number of epochs a run takes to first
reach L (interpolated in log loss between the two epochs around the crossing; ∞ if it never
does); γ is summarized (median, fraction > 0) over the steps before that point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ....probes.gamma_theorem import RateCheck, rate_check_of, theorem_checks
from ....store import Run
from ...premise import Premise
from ..configs import Ablation


@dataclass(frozen=True)
class SeedSpread:
    """The seed-to-seed baseline of speed: epochs to the common level of one variant trained with
    two seeds (`variant` None when the scale trains no second seed). Two runs count as differing
    in speed only when their epochs differ by more than this spread."""

    variant: str | None
    epochs: tuple[float, float]

    @property
    def tie(self) -> float:
        """|e_0 − e_1| / max(e_0, e_1): the relative speed difference the seed alone made (NaN
        when either run is missing or never reached the level)."""
        a, b = self.epochs
        if not (math.isfinite(a) and math.isfinite(b)) or max(a, b) <= 0:
            return math.nan
        return abs(a - b) / max(a, b)

    def evidence(self) -> dict[str, Any]:
        """The baseline as evidence: the variant, its two epochs and the relative spread."""
        return {
            "variant": self.variant,
            "epochs_seed_0_and_1": list(self.epochs),
            "relative_spread": self.tie,
        }

    def missing(self) -> str:
        """Why there is no tie (for a not-applicable reason)."""
        if self.variant is None:
            return "this scale trains no second seed, so speed differences have no baseline"
        return (
            f"no seed-to-seed baseline: {self.variant} did not reach the level at both seeds "
            "(or was not trained here)"
        )


def epochs_to_level(run: Run, level: float) -> float:
    """Epochs until the full training loss first reaches `level`, interpolated linearly in
    log10(loss) between the last recorded epoch above it and the first at or below (inf if
    never)."""
    epochs, loss = run.epochs("train_loss")
    hit = np.flatnonzero(loss <= level)
    if not len(hit):
        return math.inf
    i = int(hit[0])
    if i == 0:
        return float(epochs[0])
    lo, hi = math.log10(max(loss[i - 1], 1e-300)), math.log10(max(loss[i], 1e-300))
    frac = (lo - math.log10(level)) / (lo - hi) if lo > hi else 1.0
    return float(epochs[i - 1] + frac * (epochs[i] - epochs[i - 1]))


def gamma_before(run: Run, epoch: float) -> dict[str, float]:
    """Median γ and the fraction of defined steps with γ > 0, over the steps before `epoch`."""
    table = run.metrics
    if "gamma" not in table.column_names:
        return {"gamma_median": math.nan, "gamma_positive_fraction": math.nan, "gamma_steps": 0}
    e = table["epoch"].to_numpy()
    gamma = table["gamma"].to_numpy(zero_copy_only=False)
    defined = (
        table["gamma_defined"].to_numpy(zero_copy_only=False)
        if "gamma_defined" in table.column_names
        else np.ones(len(e))
    )
    keep = (e < epoch) & np.isfinite(gamma) & (np.nan_to_num(defined) > 0)
    g = gamma[keep]
    return {
        "gamma_median": float(np.median(g)) if len(g) else math.nan,
        "gamma_positive_fraction": float((g > 0).mean()) if len(g) else math.nan,
        "gamma_steps": int(len(g)),
    }


def seed_spread(ab: Ablation, runs: dict[str, Run], level: float) -> SeedSpread:
    """The seed-to-seed baseline of `ab`: epochs to `level` of its spread variant at seed 0 and
    at the other seed (`runs` by run name; NaN for a run not trained here; no variant when the
    scale names none)."""
    if not ab.spread:
        return SeedSpread(None, (math.nan, math.nan))
    label = next(iter(ab.spread))
    names = (f"{ab.id}-{label}", ab.spread_name(label))
    epochs = tuple(epochs_to_level(runs[n], level) if n in runs else math.nan for n in names)
    return SeedSpread(label, (epochs[0], epochs[1]))


@dataclass(frozen=True)
class AblationMeasures:
    """One ablation's measured numbers, by variant label: `speed`, epochs to the common level
    (every run); for the runs that meet the premise, `checks` (Theorem 1 columns summarized,
    `theorem_checks`), `rates` (Theorem 1.3 per stretch, `rate_check_of`) and `before` (γ before
    the level, `gamma_before`)."""

    level: float
    speed: dict[str, float]
    checks: dict[str, dict[str, Any]]
    rates: dict[str, RateCheck]
    before: dict[str, dict[str, float]]

    def each(self, key: str) -> dict[str, Any]:
        """Value `key` of `checks`, per run that meets the premise."""
        return {label: c[key] for label, c in self.checks.items()}


def measure_ablation(runs: dict[str, Run], meets: list[str], level: float) -> AblationMeasures:
    """The `AblationMeasures` of an ablation's `runs` (label → run); `meets`: the labels that
    meet the premise; `level`: the common loss level."""
    speed = {label: epochs_to_level(run, level) for label, run in runs.items()}
    return AblationMeasures(
        level,
        speed,
        {label: theorem_checks(runs[label].metrics) for label in meets},
        {label: rate_check_of(runs[label].metrics) for label in meets},
        {label: gamma_before(runs[label], speed[label]) for label in meets},
    )


def run_rows(
    ab: Ablation, runs: dict[str, Run], premise: Premise, m: AblationMeasures
) -> list[dict[str, Any]]:
    """One row per run of `ab` for tables/gamma_runs: the premise's numbers, status, epochs, speed,
    and for a run that meets the premise its Theorem 1 and γ-before-the-level numbers."""
    rows = []
    for label, run in runs.items():
        check = premise.check(run)
        row = {
            "ablation": ab.id,
            "variant": label,
            "final_train_loss": check["final_train_loss"],
            "final_train_error": check["final_train_error"],
            "meets_premise": check["meets"],
            "status": run.status,
            "epochs": run.summary.get("epochs"),
            "epochs_to_level": m.speed[label],
        }
        if label in m.checks:
            row |= {**m.checks[label], **m.before[label]}
        rows.append(row)
    return rows


def columns(records: list[dict[str, Any]]) -> dict[str, list]:
    """One column per key of any record; numbers as floats, NaN where a record lacks the key."""
    keys = list(dict.fromkeys(k for r in records for k in r))

    def value(r: dict[str, Any], k: str) -> Any:
        v = r.get(k, float("nan"))
        if v is None:  # a summary field the run did not record
            return float("nan")
        return float(v) if isinstance(v, (bool, int)) else v

    return {k: [value(r, k) for r in records] for k in keys}

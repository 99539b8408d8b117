"""Reproduction of "An optimization principle of deep learning?" (anonymous ICLR 2020
submission): DNN trainings obey the γ-optimization principle (γ_k > 0 along the path to a
minimizer θ*), the distance to θ* shrinks monotonically, and training techniques that speed
training up come with a larger γ.

Four ablations, each a set of runs that differ in one technique: activation, batch norm, skip
connections, optimizer (settings.py). Every run trains until its loss threshold (the premise:
an approximate global minimum) with an epoch cap and records γ_k by deterministic replay (the
`gamma` probe); one variant per ablation is trained again at a second seed, the baseline for
telling two speeds apart. Claims per ablation (claims.py, one function each): the premise per
run; over the runs that meet it, the principle (γ_k > 0 on every defined step), the
non-increasing distance, the Theorem 1.3 rate bound on every stretch where the principle holds,
and larger median γ ⇔ fewer epochs to the common loss level; over every run, the paper's
ordering of speeds (a run that never reaches the level is the slowest). Plus the PCA view of
the momentum and Adam paths (Li et al. 2018) with SGD update directions (pca.py).

Outputs (besides runs/): tables/gamma_runs.parquet (one row per run), figures/gamma-<ablation>.png,
figures/gamma-pca.png and the PCA tables.
"""

from __future__ import annotations

import math
from typing import Any

from ...papers import GAMMA_2019
from ...report.gamma import gamma_figure
from ..base import Claim, Lab, Plan, divergences, experiments, not_applicable
from . import pca
from .claims import SeedSpread, ablation_claims, epochs_to_level
from .settings import Ablation, ablations, settings

PCA_RUNS = ("optimizer-momentum", "optimizer-adam")


def run_configs(plan: list[Ablation]) -> dict[str, dict[str, Any]]:
    """Every run of the ablations in `plan`, named <ablation>-<variant>, and their other-seed
    runs, named <ablation>-seed<k>-<variant>."""
    configs = {f"{ab.id}-{label}": cfg for ab in plan for label, cfg in ab.variants.items()}
    return configs | {ab.spread_name(label): cfg for ab in plan for label, cfg in ab.spread.items()}


def plan(scale: str) -> Plan:
    """What `gamma-principle` trains at `scale`: every run of its ablations."""
    return Plan(run_configs(ablations(scale)))


def seed_spread(ab: Ablation, runs: dict, level: float) -> SeedSpread:
    """The seed-to-seed baseline of `ab`: epochs to `level` of its spread variant at seed 0 and
    at the other seed (NaN for a run not trained here; no variant when the scale names none)."""
    if not ab.spread:
        return SeedSpread(None, (math.nan, math.nan))
    label = next(iter(ab.spread))
    names = (f"{ab.id}-{label}", ab.spread_name(label))
    epochs = tuple(epochs_to_level(runs[n], level) if n in runs else math.nan for n in names)
    return SeedSpread(label, (epochs[0], epochs[1]))


@experiments.register(
    "gamma-principle",
    help="γ-optimization principle across activation, "
    "batch-norm, skip and optimizer ablations, with the PCA view of the paths",
    paper=GAMMA_2019,
    plan=plan,
)
def run(lab: Lab) -> list[Claim]:
    """Reproduce "An optimization principle of deep learning?" (anonymous, 2019, ICLR 2020
    submission): train every ablation's runs to the premise's loss threshold, decide each
    ablation's premise, Theorem-1 and ordering claims (`claims.ablation_claims`), draw one
    γ figure per ablation, save tables/gamma_runs.parquet, and add the PCA claim when the
    momentum or Adam run was trained."""
    plan = ablations(lab.scale)
    premise = settings(lab.scale).premise
    configs = run_configs(plan)
    lab.log(
        f"{sum(lab.selected(n) for n in configs)} runs, each trained until training loss "
        f"< {premise.max_loss:g} (or its epoch cap), then replayed for γ (except the other-seed "
        "runs, which measure speed only)"
    )
    runs = lab.run_many(configs)
    claims: list[Claim] = []
    records: list[dict[str, Any]] = []
    for ab in plan:
        ab_runs = {label: runs[f"{ab.id}-{label}"] for label in ab.variants if f"{ab.id}-{label}" in runs}
        if not ab_runs:
            continue  # the whole ablation is outside --only
        ab_claims, per_run = ablation_claims(ab, ab_runs, premise, seed_spread(ab, runs, premise.max_loss))
        claims += ab_claims
        records += [{"ablation": ab.id, "variant": label, **values} for label, values in per_run.items()]
        notes = {label: figure_note(values, premise.max_loss) for label, values in per_run.items()}
        gamma_figure(
            lab.figure(f"gamma-{ab.id}"),
            f"{ab.title} ({GAMMA_2019.short})",
            ab_runs,
            level=premise.max_loss,
            notes=notes,
        )
    if records:
        lab.save_table("gamma_runs", columns(records))
    if any(name in runs for name in PCA_RUNS):
        claims.append(pca_claim(lab, runs))
    return claims


def figure_note(row: dict[str, Any], level: float) -> str:
    """A run's remark in the figure legend: whether it misses the premise or never reaches the
    common level (the slowest by definition)."""
    notes = [] if row["meets_premise"] else ["misses the premise"]
    if math.isinf(row["epochs_to_level"]):
        notes.append(f"never reaches {level:g}")
    return "; ".join(notes)


def pca_claim(lab: Lab, runs: dict) -> Claim:
    """The `optimizer/pca-directions` claim (`pca.pca_view`), or not applicable when the
    momentum or Adam run was not trained here or diverged."""
    absent = [name for name in PCA_RUNS if name not in runs]
    if absent:
        return not_applicable(pca.CLAIM_ID, pca.STATEMENT, f"not trained here (--only): {', '.join(absent)}")
    diverged = divergences({name: runs[name] for name in PCA_RUNS})
    if diverged:  # a diverged path has no iterates to take principal directions of
        return not_applicable(pca.CLAIM_ID, pca.STATEMENT, "; ".join(diverged))
    return pca.pca_view(lab, {name.split("-", 1)[1]: runs[name] for name in PCA_RUNS})


def columns(records: list[dict[str, Any]]) -> dict[str, list]:
    """One column per key of any record; numbers as floats, NaN where a record lacks the key."""
    keys = list(dict.fromkeys(k for r in records for k in r))

    def value(r: dict[str, Any], k: str) -> Any:
        v = r.get(k, float("nan"))
        if v is None:  # a summary field the run did not record
            return float("nan")
        return float(v) if isinstance(v, (bool, int)) else v

    return {k: [value(r, k) for r in records] for k in keys}

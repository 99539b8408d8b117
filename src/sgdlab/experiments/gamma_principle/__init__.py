"""Reproduction of "An optimization principle of deep learning?" (anonymous ICLR 2020
submission): DNN trainings obey the γ-optimization principle (γ_k > 0 along the path to a
minimizer θ*), the distance to θ* shrinks monotonically, and training techniques that speed
training up come with a larger γ.

Four ablations, each a set of runs that differ in one technique: activation, batch norm, skip
connections, optimizer. Every run trains until its loss threshold (the premise: an approximate
global minimum) with an epoch cap and records γ_k by deterministic replay (the `gamma` probe);
one variant per ablation is trained again at a second seed, the baseline for telling two speeds
apart. Claims per ablation: the premise per run; over the runs that meet it, the principle
(γ_k > 0 on every defined step), the non-increasing distance, the Theorem 1.3 rate bound on every
stretch where the principle holds, and larger median γ ⇔ fewer epochs to the common loss level;
over every run, the paper's ordering of speeds (a run that never reaches the level is the
slowest). Plus the PCA view of the momentum and Adam paths (Li et al. 2018) with SGD update
directions.

The five roles: `settings` (per scale), `configs` (the ablations and their runs), `measure`
(speed, γ and Theorem 1 per run, the seed-to-seed baseline, the PCA view), `claims` (one
function per claim) and `figures` (one γ figure per ablation, the PCA view).

Outputs (besides runs/): tables/gamma_runs.parquet (one row per run), figures/gamma-<ablation>.png,
figures/gamma-pca.png and the PCA tables.
"""

from __future__ import annotations

from typing import Any

from ...papers import GAMMA_2019
from ..base import Claim, Lab, Plan, divergences, experiments, missing_runs
from ..premise import Premise, premise_claim
from .claims import ablation_claims, pca_directions_claim, pca_untrained_claim
from .configs import Ablation, ablations, run_configs
from .figures import ablation_figure, pca_figure
from .measure import columns, measure_ablation, pca_view, run_rows, seed_spread
from .settings import SCALE_SETTINGS

PCA_RUNS = ("optimizer-momentum", "optimizer-adam")


def plan(scale: str) -> Plan:
    """What `gamma-principle` trains at `scale`: every run of its ablations."""
    return Plan(run_configs(ablations(scale)))


def ablation_part(
    lab: Lab, ab: Ablation, runs: dict[str, Any], premise: Premise
) -> tuple[list[Claim], list[dict[str, Any]]]:
    """One ablation from the trained `runs` (by run name): its premise claim, its measured
    numbers, its γ figure (figures/gamma-<ablation>) and claims (`claims.ablation_claims`), and
    its rows of tables/gamma_runs. Nothing when --only left out all of its runs."""
    ab_runs = {label: runs[f"{ab.id}-{label}"] for label in ab.variants if f"{ab.id}-{label}" in runs}
    if not ab_runs:
        return [], []
    level = premise.max_loss
    premise_c, meets = premise_claim(f"{ab.id}/premise", ab.title, premise, ab_runs, ab.exceptions)
    measured = measure_ablation(ab_runs, meets, level)
    rows = run_rows(ab, ab_runs, premise, measured)
    figure = ablation_figure(f"{ab.title} ({GAMMA_2019.short})", ab_runs, level, rows)
    lab.save_figure(figure, f"gamma-{ab.id}")
    absent = missing_runs(list(ab.variants), ab_runs)
    claims = ablation_claims(ab, premise_c, meets, absent, measured, seed_spread(ab, runs, level))
    return claims, rows


def pca_part(lab: Lab, runs: dict[str, Any]) -> Claim:
    """The PCA view of the momentum and Adam paths (`measure.pca_view`): tables
    pca-<optimizer>-grid and -path, figures/gamma-pca and the `optimizer/pca-directions` claim;
    the claim not applicable when either run was not trained here (--only) or diverged."""
    absent = [name for name in PCA_RUNS if name not in runs]
    if absent:
        return pca_untrained_claim(f"not trained here (--only): {', '.join(absent)}")
    diverged = divergences({name: runs[name] for name in PCA_RUNS})
    if diverged:  # a diverged path has no iterates to take principal directions of
        return pca_untrained_claim("; ".join(diverged))
    numbers = {}
    for name in PCA_RUNS:
        label = name.split("-", 1)[1]
        view = pca_view(runs[name])
        lab.save_table(f"pca-{label}-grid", view.grid)
        lab.save_table(f"pca-{label}-path", view.path)
        numbers[label] = view.numbers
    grids = {label: lab.load_table(f"pca-{label}-grid") for label in numbers}
    paths = {label: lab.load_table(f"pca-{label}-path") for label in numbers}
    lab.save_figure(pca_figure(grids, paths, numbers), "gamma-pca")
    return pca_directions_claim({label: n["median_angle_deg"] for label, n in numbers.items()}, numbers)


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
    ablation's claims (`ablation_part`), save tables/gamma_runs.parquet, and add the PCA claim
    when the momentum or Adam run was trained (`pca_part`)."""
    premise = SCALE_SETTINGS[lab.scale].premise
    configs = run_configs(ablations(lab.scale))
    lab.log(
        f"{sum(lab.selected(n) for n in configs)} runs, each trained until training loss "
        f"< {premise.max_loss:g} (or its epoch cap), then replayed for γ (except the other-seed "
        "runs, which measure speed only)"
    )
    runs = lab.run_many(configs)
    claims: list[Claim] = []
    records: list[dict[str, Any]] = []
    for ab in ablations(lab.scale):
        ab_claims, rows = ablation_part(lab, ab, runs, premise)
        claims += ab_claims
        records += rows
    if records:
        lab.save_table("gamma_runs", columns(records))
    if any(name in runs for name in PCA_RUNS):
        claims.append(pca_part(lab, runs))
    return claims

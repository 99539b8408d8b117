"""Reproduction of Cohen, Kaur, Li, Kolter & Talwalkar (2021), "Gradient descent on neural
networks typically occurs at the edge of stability": under full-batch GD with step size η the
sharpness λ_max (top eigenvalue of the training-loss Hessian) rises until it reaches 2/η —
where GD on a quadratic would diverge — and then hovers there while the loss keeps falling,
non-monotonically.

Three parts, one command:
  gd    per network and loss (fully connected tanh / ReLU, a small CNN; MSE and cross-entropy)
        GD at several η = 2/x from the same θ_0, λ_max on the whole training subset every few
        steps; claims per run: progressive sharpening before the onset, λ_max in a band around
        2/η for most of the steps after it, a non-monotone yet falling loss after it
  cut   one run at the edge continued from θ at a later step with a lower η': λ_max rises to
        the new 2/η'
  flow  gradient flow (GD at a step small enough to stay stable) from the same θ_0: λ_max keeps
        rising past the band around 2/η where GD stops

The five roles: `settings` (per scale), `configs` (the GD and flow runs, the cut's config),
`measure` (trajectories up to the accuracy goal, the cut's continuation, the table rows),
`claims` (one function per claim) and `figures`.

Outputs (besides runs/): tables/edge.parquet (one row per GD run: η, onset step, plateau
λ_max·η/2, fraction in the band, loss at onset and end, sharpening slope), tables/cut.parquet
(the continuation after the cut) with tables/cut_end.parquet (how it ended),
figures/gd-<study>.png, figures/cut.png, figures/flow.png.
"""

from __future__ import annotations

from typing import Any

from ...papers import COHEN_2021
from ...store import Run
from ..base import Claim, Lab, Plan, Simulation, experiments
from . import claims as C
from .configs import configs, continuation_config, flow_name, gd_configs, gd_name, number
from .figures import cut_figure, flow_figure, gd_figure
from .measure import Trajectory, cut_trajectory, edge_row, trajectory
from .settings import LOSSES, SCALE_SETTINGS, Settings, Study


def _estimate_cut(scale: str) -> float:
    """Seconds for the cut's continuation: timed steps of its config (as `--plan` times a run)."""
    from ..planning import Planner, estimate_run, plan_device

    row = estimate_run("cut", continuation_config(SCALE_SETTINGS[scale]), Planner(plan_device("auto")))
    return row.seconds or 0.0


def plan(scale: str) -> Plan:
    """Every run at `scale` (the GD runs and the flow run) and the cut's continuation."""
    s = SCALE_SETTINGS[scale]
    d = s.drop
    parent = gd_name(s.study(d.study), d.threshold)
    return Plan(
        configs(s),
        {
            "cut": Simulation(
                f"GD continued from {parent} at step {d.at} with η = 2/{number(d.new_threshold)}, "
                f"{d.steps:,} steps",
                lambda: _estimate_cut(scale),
            )
        },
    )


def gd_part(
    lab: Lab, s: Settings, study: Study, runs: dict[str, Run]
) -> tuple[list[Claim], list[dict[str, Any]]]:
    """One study: the sharpening, edge and loss claims of each of its GD runs that was trained
    (`--only` may leave some out), its figure, and its rows of tables/edge.parquet."""
    claims: list[Claim] = []
    rows: list[dict[str, Any]] = []
    trajectories: dict[str, Trajectory] = {}
    for threshold in study.thresholds:
        name = gd_name(study, threshold)
        if name not in runs:
            continue
        t = trajectories[f"η = 2/{number(threshold)}"] = trajectory(name, runs[name], s.acc_goal)
        prefix = f"{study.key}/2over{number(threshold)}"
        made = {
            "sharpening": C.sharpening_claim(f"{prefix}/sharpening", t.sharpness),
            "edge": C.edge_claim(f"{prefix}/edge", t.sharpness, t.diverged_at, t.goal_step),
            "loss": C.loss_claim(
                f"{prefix}/loss", t.loss_steps, t.loss, t.sharpness.onset_step(), t.goal_step
            ),
        }
        claims += made.values()
        rows.append(edge_row(study.key, threshold, t, made))
    if trajectories:
        fig = gd_figure(study_title(study), train_loss(study), trajectories)
        lab.save_figure(fig, f"gd-{study.key}")
    return claims, rows


def study_title(study: Study) -> str:
    """The title of a study's figures: GD, <network>, <LOSS>."""
    return f"GD, {study.net.title}, {study.loss.upper()}"


def train_loss(study: Study) -> str:
    """The study's `train.loss` (squared or cross-entropy), for axis labels."""
    return LOSSES[study.loss][0]


def _needed(lab: Lab, s: Settings, runs: dict[str, Run], study: Study, threshold: float) -> Run:
    """The GD run at 2/η = `threshold` of `study`: from `runs`, or trained (reused) now when
    `--only` left it out but a selected part needs it."""
    name = gd_name(study, threshold)
    return runs[name] if name in runs else lab.run(name, gd_configs(s)[name])


def cut_part(lab: Lab, s: Settings, runs: dict[str, Run]) -> list[Claim]:
    """The cut: continue the parent run from θ at the cut's step with the lower η', decide the
    drop claim and draw figures/cut.png."""
    d = s.drop
    study = s.study(d.study)
    parent_run = _needed(lab, s, runs, study, d.threshold)
    parent = trajectory(gd_name(study, d.threshold), parent_run, s.acc_goal)
    after = cut_trajectory(lab, s, parent_run)
    lab.save_figure(cut_figure(study_title(study), train_loss(study), parent, after, d.at), "cut")
    claim_id = f"{study.key}/cut-2over{number(d.threshold)}-to-2over{number(d.new_threshold)}"
    return [C.cut_claim(claim_id, parent.sharpness, d.at, after.sharpness)]


def flow_part(lab: Lab, s: Settings, runs: dict[str, Run]) -> list[Claim]:
    """Gradient flow against the GD runs of its study: the flow claim and figures/flow.png."""
    f = s.flow
    study = s.study(f.study)
    name = flow_name(f)
    if name not in runs:
        return []
    flow = trajectory(name, runs[name], s.acc_goal)
    gd = trajectory(gd_name(study, f.threshold), _needed(lab, s, runs, study, f.threshold), s.acc_goal)
    compared = {f"η = 2/{number(f.threshold)}": gd}
    for threshold in study.thresholds:
        other = gd_name(study, threshold)
        if threshold != f.threshold and other in runs:
            compared[f"η = 2/{number(threshold)}"] = trajectory(other, runs[other], s.acc_goal)
    lab.save_figure(flow_figure(study_title(study), train_loss(study), compared, flow), "flow")
    return [C.flow_claim(f"{study.key}/flow-vs-2over{number(f.threshold)}", gd.sharpness, flow.sharpness)]


@experiments.register(
    "edge-of-stability",
    help="full-batch GD trains at the edge of stability: the sharpness λ_max rises to 2/η "
    "and hovers there while the loss falls non-monotonically (fully connected tanh/ReLU nets "
    "and a small CNN on CIFAR-10, MSE and cross-entropy); lowering η lets it rise again, "
    "gradient flow keeps sharpening",
    paper=COHEN_2021,
    plan=plan,
)
def run(lab: Lab) -> list[Claim]:
    """Reproduce Cohen, Kaur, Li, Kolter & Talwalkar (2021), "Gradient descent on neural
    networks typically occurs at the edge of stability": train the GD and flow runs, decide
    the per-run claims per study, then the cut and the flow claims; returns the claims."""
    s = SCALE_SETTINGS[lab.scale]
    lab.log(f"{len(configs(s))} runs: GD at several η per network and loss, and gradient flow")
    runs = lab.run_many(configs(s))
    claims: list[Claim] = []
    rows: list[dict[str, Any]] = []
    for study in s.studies:
        made, table = gd_part(lab, s, study, runs)
        claims, rows = claims + made, rows + table
    if rows:
        lab.save_table("edge", {k: [r[k] for r in rows] for k in rows[0]})
    if lab.selected("cut"):
        claims += cut_part(lab, s, runs)
    claims += flow_part(lab, s, runs)
    return claims

"""The runs of `edge-of-stability`, deterministic functions of the settings (so `--plan` lists
exactly what the experiment trains):

  gd-<study>-2over<x>    GD at η = 2/x on the study's network and loss; the run the cut
                         starts from also saves θ at the cut's step
  flow-<study>-2over<x>  gradient flow approximated by GD at η_f = 2/x from the same θ_0

Every run of a study starts from the same θ_0 (the same seed and data subset); the cut's
continuation is not a run but a part (`measure.continue_after_cut`).
"""

from __future__ import annotations

from typing import Any

from .settings import LOSSES, Drop, Flow, Settings, Study


def number(x: float) -> str:
    """`x` as a name part: 90 for 90.0, 12.5 for 12.5."""
    return f"{x:g}"


def gd_name(study: Study, threshold: float) -> str:
    """The run name of GD at 2/η = `threshold` in `study`."""
    return f"gd-{study.key}-2over{number(threshold)}"


def flow_name(flow: Flow) -> str:
    """The run name of the gradient-flow run."""
    return f"flow-{flow.study}-2over{number(flow.flow_threshold)}"


def run_config(
    s: Settings, study: Study, eta: float, steps: int, every: int, iterates: str = "never"
) -> dict[str, Any]:
    """Full-batch GD at step `eta` for `steps` steps on the study's network, loss and the
    scale's CIFAR-10 subset; λ_max of the whole training subset and the training accuracy
    every `every` steps, the training loss every step; θ saved on the `iterates` schedule."""
    loss, targets = LOSSES[study.loss]
    data: dict[str, Any] = {"name": "cifar10", "n_train": s.n_train, "n_test": s.n_test, "targets": targets}
    if study.net.resize is not None:
        data["resize"] = study.net.resize
    return {
        "seed": s.seed,
        "threads": s.threads,
        "data": data,
        "model": dict(study.net.model),
        "optim": {"name": "gd", "lr": eta},
        "train": {"loss": loss, "batch_size": s.n_train, "max_steps": steps},
        "checkpoint": {"iterates": iterates},
        "probes": {
            "use": ["batch_loss", "hessian", "eval"],
            "eval": {"schedule": f"every:{every}"},
            "hessian": {
                "schedule": f"every:{every}",
                "subset": s.n_train,
                "k": 1,
                "trace_probes": 0,
                "tol": s.lanczos_tol,
            },
        },
    }


def cut_schedule(drop: Drop) -> str:
    """The iterate schedule of the run the cut starts from: θ at the cut's step (and θ_0)."""
    return f"every:{drop.at}"


def gd_configs(s: Settings) -> dict[str, dict[str, Any]]:
    """Every GD run of every study, by name."""
    out = {}
    for study in s.studies:
        for threshold, steps in zip(study.thresholds, study.steps, strict=True):
            cut = s.drop.study == study.key and s.drop.threshold == threshold
            iterates = cut_schedule(s.drop) if cut else "never"
            out[gd_name(study, threshold)] = run_config(s, study, 2 / threshold, steps, study.every, iterates)
    return out


def flow_config(s: Settings) -> dict[str, Any]:
    """The small-step GD run that stands for gradient flow."""
    f = s.flow
    return run_config(s, s.study(f.study), 2 / f.flow_threshold, f.steps, f.every)


def configs(s: Settings) -> dict[str, dict[str, Any]]:
    """Every run of the scale: the GD runs, then the flow run."""
    return {**gd_configs(s), flow_name(s.flow): flow_config(s)}


def continuation_config(s: Settings) -> dict[str, Any]:
    """The config the cut continues with: the parent's, at η' = 2/new_threshold, for the
    continuation's steps (θ itself comes from the parent's saved iterate)."""
    d = s.drop
    return run_config(s, s.study(d.study), 2 / d.new_threshold, d.steps, d.every)

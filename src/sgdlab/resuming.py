"""What `runner.resume` continues a run from: θ_0 as recorded (checked against the config's),
the newest intact resumable state, or — when the records are damaged — a clean start over.
Each damaged file is reported through `warn`, one line naming it and what is done about it."""

from __future__ import annotations

import shutil
from typing import Any, Callable

import torch

from .engine import Parts
from .errors import DamagedFile, UserError
from .store import MetricsLog, Recorder, RunDir
from .store.files import remove_checkpoint
from .store.run_dir import REPLAY_DIR

Warn = Callable[[str], None]


def recorded_init(run_dir: RunDir, parts: Parts, warn: Warn) -> dict[str, torch.Tensor] | None:
    """θ_0 as init.pt recorded it, checked against the one the config builds now; None (with a
    warning) when init.pt is damaged, so that the run starts over."""
    try:
        init = run_dir.load("init.pt")
    except DamagedFile as exc:
        warn(f"{exc}; training the run again from θ_0, rebuilt from the config")
        return None
    except UserError:  # no init.pt: deleted, or killed before it was written
        warn(f"{run_dir.checkpoints / 'init.pt'}: missing; training the run again from θ_0")
        return None
    rebuilt = parts.model.state_dict()
    if (
        not isinstance(init, dict)
        or init.keys() != rebuilt.keys()
        or any(not torch.equal(init[k].cpu(), rebuilt[k].cpu()) for k in init)
    ):
        raise UserError(
            f"{run_dir.path}: this sgdlab builds a different θ_0 for the run's config than the "
            "run recorded (the code changed?); cannot resume it bit-identically"
        )
    return init


def start_over(run_dir: RunDir, parts: Parts, recorder: Recorder) -> dict[str, torch.Tensor]:
    """Clear what a run trained (states, iterates, final.pt, replay pass, metrics) and record
    θ_0 again: a run whose records are damaged is trained again from the start."""
    for _, path in run_dir.states():
        remove_checkpoint(path)
    remove_checkpoint(run_dir.checkpoints / "final.pt")
    shutil.rmtree(run_dir.checkpoints / "iterates", ignore_errors=True)
    shutil.rmtree(run_dir.path / REPLAY_DIR, ignore_errors=True)
    run_dir.metrics_path.unlink(missing_ok=True)
    recorder.metrics = MetricsLog()
    recorder.summary.update(steps=0)
    for key in ("phase", "final", "stop_reason", "diverged_at", "last_finite", "probes", "skipped_states"):
        recorder.summary.pop(key, None)
    init = {k: v.detach().clone() for k, v in parts.model.state_dict().items()}
    recorder.save("init.pt", init)
    return init


def latest_state(
    run_dir: RunDir, summary: dict[str, Any] | None = None, warn: Warn | None = None
) -> dict[str, Any] | None:
    """The newest good resumable state; damaged newer ones are skipped, noted in `summary`
    and reported through `warn`, one line naming the state used instead."""
    state, used, skipped = run_dir.latest_state()
    if skipped and summary is not None:
        summary.setdefault("skipped_states", []).extend(exc.path.name for exc in skipped)
    if skipped and warn is not None:
        instead = f"resuming from {used} instead" if used else "no intact state is left: resuming from θ_0"
        names = ", ".join(exc.problem if i else str(exc) for i, exc in enumerate(skipped))
        warn(f"{names}; {instead}")
    return state

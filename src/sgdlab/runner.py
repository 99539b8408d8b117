"""Running and resuming: config → parts → engine → store. The library API behind the CLI."""

from __future__ import annotations

import datetime as dt
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from torch import nn

from . import __version__
from .build import build_parts, resolve
from .config import Config, config_to_toml, load_config
from .data import Dataset
from .engine import Parts, train
from .engine.loop import Progress
from .errors import UserError
from .params import flat_params
from .store import MetricsLog, Recorder, RunDir

FINAL_KEYS = ("train_loss", "train_error", "test_loss", "test_error")


@dataclass
class RunResult:
    path: Path | None
    summary: dict[str, Any]
    metrics: pa.Table
    parts: Parts | None  # None when there was nothing to do

    @property
    def status(self) -> str:
        return self.summary.get("status", "unknown")


def versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "torch": torch.__version__,
           "numpy": np.__version__, "sgdlab": __version__}
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "-C", str(here), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=5)
        if commit.returncode == 0:
            out["sgdlab_git"] = commit.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def as_config(config: Config | str | Path | dict, overrides: tuple[str, ...] | list[str] = ()) -> Config:
    if isinstance(config, Config):
        if overrides:
            raise ValueError("overrides apply to a TOML file or dict, not to a Config")
        return config
    if isinstance(config, dict):
        return load_config(raw=config, overrides=overrides)
    return load_config(config, overrides)


def prepare(config: Config | str | Path | dict, overrides: tuple[str, ...] | list[str] = (), *,
            model: nn.Module | None = None, data: Dataset | None = None) -> Parts:
    """Validate and build everything a run needs, without running or writing anything."""
    return build_parts(resolve(as_config(config, overrides)), model=model, data=data)


def run(config: Config | str | Path | dict, out: str | Path | None = None, *,
        overrides: tuple[str, ...] | list[str] = (), overwrite: bool = False,
        progress: Progress | None = None, model: nn.Module | None = None,
        data: Dataset | None = None) -> RunResult:
    """Train from a config (a Config, a TOML path or a dict). With `out`, everything is written
    to that run directory; without, results stay in memory."""
    parts = prepare(config, overrides, model=model, data=data)
    return start(parts, out, overwrite=overwrite, progress=progress)


def start(parts: Parts, out: str | Path | None = None, *, overwrite: bool = False,
          progress: Progress | None = None) -> RunResult:
    """Train freshly built `parts` (from `prepare`); the run directory is created only now."""
    cfg = parts.config
    run_dir = RunDir.create(out, config_to_toml(cfg), overwrite=overwrite) if out is not None else None
    if run_dir is not None:
        run_dir.lock()
    recorder = Recorder(run_dir, cfg.checkpoint)
    recorder.summary = {"status": "running", "seed": cfg.seed, "n_params": parts.n_params,
                        "steps": 0, "steps_per_epoch": parts.sampler.steps_per_epoch,
                        "device": cfg.device, "threads": cfg.threads, "versions": versions(),
                        "started_at": _now(), "resumes": 0}
    theta0 = flat_params(parts.model)
    recorder.save("init.pt", parts.model.state_dict())
    return _execute(parts, recorder, theta0, None, progress)


def resume(path: str | Path, *, progress: Progress | None = None, model: nn.Module | None = None,
           data: Dataset | None = None) -> RunResult:
    """Continue a run that was killed or interrupted, from its latest saved state; the result
    is bit-identical to an uninterrupted run (same machine kind and thread count)."""
    run_dir = RunDir.open(path)
    summary = run_dir.read_summary()
    status = summary.get("status")
    if status in ("completed", "diverged"):
        metrics = run_dir.read_metrics()
        return RunResult(run_dir.path, summary, metrics, None)
    run_dir.lock()
    cfg = resolve(load_config(run_dir.config_path))
    parts = build_parts(cfg, model=model, data=data)
    init = run_dir.load("init.pt")
    rebuilt = parts.model.state_dict()
    if init.keys() != rebuilt.keys() or any(not torch.equal(init[k].cpu(), rebuilt[k].cpu()) for k in init):
        raise UserError(f"{path}: this sgdlab builds a different θ_0 for the run's config than the "
                        "run recorded (the code changed?); cannot resume it bit-identically")
    parts.model.load_state_dict(init)
    theta0 = flat_params(parts.model)
    states = run_dir.states()
    state = run_dir.load(states[-1][1].name) if states else None
    metrics = MetricsLog(run_dir.read_metrics())
    metrics.truncate(int(state["step"]) if state is not None else 0)
    recorder = Recorder(run_dir, cfg.checkpoint, metrics)
    recorder.summary = dict(summary, status="running", resumes=summary.get("resumes", 0) + 1,
                            steps=int(state["step"]) if state is not None else 0)
    recorder.summary.pop("error", None)
    return _execute(parts, recorder, theta0, state, progress)


def _execute(parts: Parts, recorder: Recorder, theta0: torch.Tensor, state: dict[str, Any] | None,
             progress: Progress | None) -> RunResult:
    summary = recorder.summary
    recorder.flush()
    try:
        outcome = train(parts, recorder, theta0=theta0, state=state, progress=progress)
    except BaseException as exc:
        interrupted = isinstance(exc, KeyboardInterrupt)
        summary.update(status="interrupted" if interrupted else "failed",
                       error=f"{type(exc).__name__}: {exc}", finished_at=_now())
        recorder.flush()
        raise
    finally:
        if recorder.run_dir is not None:
            recorder.run_dir.unlock()
    spe = parts.sampler.steps_per_epoch
    summary.update(status=outcome.status, steps=outcome.steps, epochs=outcome.steps / spe,
                   stop_reason=outcome.stop_reason, wall_time_s=round(outcome.wall_time, 3),
                   finished_at=_now())
    if outcome.status != "interrupted":
        summary["final"] = {k: outcome.final.get(k) for k in FINAL_KEYS} | outcome.final
        recorder.save("final.pt", parts.model.state_dict())
    if outcome.diverged_at is not None:
        summary["diverged_at"] = outcome.diverged_at
    recorder.flush()
    path = recorder.run_dir.path if recorder.run_dir is not None else None
    return RunResult(path, summary, recorder.metrics.table(), parts)

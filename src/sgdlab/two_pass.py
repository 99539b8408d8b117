"""The second pass of a two-pass run. Probes that need θ* (the final iterate, e.g. `gamma`)
make a run two-phase: pass 1 trains with every other probe and records the minibatch loss of
each step (`runner.first_pass`); pass 2 (`RUN/replay/`, itself a run directory) re-runs the
identical trajectory from θ_0 with only those probes, checking each step's loss against pass 1,
and its columns are merged into `RUN/metrics.parquet`."""

from __future__ import annotations

import dataclasses
import shutil
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import torch
from torch import nn

from .build import build_parts
from .config import ProbesConfig, config_to_toml
from .engine import Outcome, Parts, train
from .engine.loop import Progress
from .errors import DamagedFile
from .params import flat_params
from .probes import Probe, Reference
from .probes.gamma import ReplayError
from .resuming import latest_state
from .store import MetricsLog, Recorder, RunDir
from .store.metrics import merge_tables
from .store.provenance import now
from .store.run_dir import REPLAY_DIR

FINAL_KEYS = ("train_loss", "train_error", "test_loss", "test_error")


def theta0(model: nn.Module, init_state: dict[str, torch.Tensor]) -> torch.Tensor:
    """θ_0 as one flat vector of the trainable parameters, from the state dict `init_state`, on
    the model's device and dtype."""
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    return torch.cat([init_state[n].reshape(-1) for n, _ in model.named_parameters() if n in names]).to(
        next(model.parameters()).device, next(model.parameters()).dtype
    )


def record_outcome(parts: Parts, recorder: Recorder, outcome: Outcome) -> None:
    """Write how a pass ended into its recorder's summary: status, counts, timings, final
    metrics, where it diverged, and the probes' summaries."""
    spe = parts.sampler.steps_per_epoch
    recorder.summary.update(
        status=outcome.status,
        steps=outcome.steps,
        epochs=outcome.steps / spe,
        stop_reason=outcome.stop_reason,
        wall_time_s=round(outcome.wall_time, 3),
        finished_at=now(),
    )
    if outcome.status != "interrupted":
        recorder.summary["final"] = {k: outcome.final.get(k) for k in FINAL_KEYS} | outcome.final
    if outcome.diverged_at is not None:
        recorder.summary["diverged_at"] = outcome.diverged_at
        recorder.summary["last_finite"] = recorder.metrics.last_values(finite=True)
    if outcome.probe_summaries:
        recorder.summary.setdefault("probes", {}).update(outcome.probe_summaries)


def replay_pass(
    parts: Parts,
    replayed: list[Probe],
    recorder: Recorder,
    init_state: dict[str, torch.Tensor],
    progress: Progress | None,
) -> None:
    """Pass 2: θ_0 again, only the θ*-probes, the same number of steps, verified step by step."""
    cfg = parts.config
    summary = recorder.summary
    steps = int(summary["steps"])
    table = recorder.metrics.table()
    reference = Reference(
        _final_params(parts, recorder),
        _loss_per_step(table, steps),
        str(recorder.run_dir.path) if recorder.run_dir else "memory",
    )
    replay_cfg = dataclasses.replace(
        cfg,
        train=dataclasses.replace(cfg.train, epochs=None, max_steps=steps, stop_loss=None),
        probes=ProbesConfig(
            use=tuple(p.name for p in replayed),
            options={p.name: cfg.probes.options[p.name] for p in replayed},
        ),
    )
    parts.model.load_state_dict(init_state)
    replay_parts = build_parts(replay_cfg, model=parts.model, data=parts.data)
    replay_dir, state, rows = _replay_dir(recorder.run_dir, config_to_toml(replay_cfg))
    metrics = MetricsLog(rows)
    if state is not None:
        metrics.truncate(int(state["step"]))
    replay_recorder = Recorder(replay_dir, cfg.checkpoint, metrics)
    replay_recorder.summary = {"status": "running", "phase": "replay", "of": reference.source}
    try:
        outcome = train(
            replay_parts,
            replay_recorder,
            theta0=theta0(parts.model, init_state),
            reference=reference,
            state=state,
            progress=progress,
        )
    except ReplayError as exc:  # the two passes disagree: the run fails, and says where
        summary["replay"] = {"verified": False, "reason": str(exc)}
        raise
    finally:
        if replay_dir is not None:
            replay_dir.unlock()
    record_outcome(replay_parts, replay_recorder, outcome)
    replay_recorder.flush()
    if outcome.status != "completed":
        summary.update(status=outcome.status, stop_reason=f"replay {outcome.stop_reason}")
        return
    recorder.metrics = MetricsLog(merge_tables(table, replay_recorder.metrics.table()))
    summary.setdefault("probes", {}).update(outcome.probe_summaries)
    summary["replay"] = replay_verdict(outcome.probe_summaries)
    summary.update(status="completed", replay_wall_time_s=round(outcome.wall_time, 3))
    summary.pop("phase", None)
    if replay_dir is not None:
        shutil.rmtree(replay_dir.checkpoints, ignore_errors=True)


def replay_verdict(probe_summaries: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """summary["replay"] of a completed two-phase run: the replay repeated pass 1 (verified), on
    how many steps its minibatch loss was checked against pass 1's and the largest difference
    (0.0: bit for bit); a replay that disagrees fails the run with a ReplayError instead, and
    summary["replay"] then holds verified = False and the reason."""
    checked = [s for s in probe_summaries.values() if "replay_checked_steps" in s]
    return {
        "verified": True,
        "checked_steps": max((s["replay_checked_steps"] for s in checked), default=0),
        "max_loss_diff": max((s["replay_max_loss_diff"] for s in checked), default=0.0),
    }


def _replay_dir(
    run_dir: RunDir | None, text: str
) -> tuple[RunDir | None, dict[str, Any] | None, pa.Table | None]:
    """The replay pass's run directory (locked, as its parent is), the state to continue it
    from and its metrics so far: an earlier pass with the same config is continued from its
    latest intact state; one that is damaged, or of another config, is started again."""
    if run_dir is None:
        return None, None, None
    path = run_dir.path / REPLAY_DIR
    if RunDir.is_run(path) and (path / "config.toml").read_bytes() == text.encode("utf-8"):
        replay_dir = RunDir(path)
        replay_dir.lock()
        state = latest_state(replay_dir)
        try:
            rows = replay_dir.read_metrics() if state is not None else None
            if state is None or rows is not None:
                return replay_dir, state, rows
        except DamagedFile:
            pass
        replay_dir.unlock()
    replay_dir = RunDir.create(path, text, overwrite=True)
    replay_dir.lock()
    return replay_dir, None, None


def _final_params(parts: Parts, recorder: Recorder) -> torch.Tensor:
    if recorder.run_dir is not None:
        parts.model.load_state_dict(recorder.run_dir.load("final.pt"))
    return flat_params(parts.model)


def _loss_per_step(table: pa.Table, steps: int) -> torch.Tensor:
    losses = torch.full((steps,), float("nan"), dtype=torch.float64)
    rows = table.filter(pc.is_valid(table["batch_loss"]))
    idx = torch.tensor(rows["step"].to_numpy(), dtype=torch.long)
    keep = idx < steps
    losses[idx[keep]] = torch.tensor(rows["batch_loss"].to_numpy(), dtype=torch.float64)[keep]
    return losses

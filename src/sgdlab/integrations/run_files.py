"""The run-directory side of an attached loop (`sgdlab.attach`): creating or resuming the run
directory, its config and init.pt, the crash-safe flushes of rows, summary and probe state,
final.pt, and the wall clock across resumes. The loop side (steps, hooks, probes) is
`integrations.loop.Lab`, which owns one of these."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import CheckpointConfig, Config, config_to_toml
from ..errors import UserError
from ..params import flat_params, trainable
from ..store import MetricsLog, Recorder, RunDir
from ..store.files import write_text
from ..store.provenance import now, versions


class RunFiles:
    """Where an attached run is written (nothing, in memory, when `out` is None).

    Attributes:
        recorder: the engine's Recorder: metrics rows and summary.json, saved tensors.
        cfg: the run's config as config.toml holds it (batch size noted at the first step).
        theta0: θ_0, flat (init.pt's, on a resume).
        probe_states: the probes' states to continue from (a resume), or None.
        flush_seconds: the longest time between two flushes.
    """

    def __init__(self, flush_seconds: float):
        self.recorder = Recorder(None, CheckpointConfig())
        self.cfg: Config | None = None
        self.theta0: torch.Tensor | None = None
        self.probe_states: dict[str, Any] | None = None
        self.flush_seconds = flush_seconds
        self._t0 = time.perf_counter()
        self._wall_before = 0.0
        self._last_flush = time.monotonic()

    @property
    def path(self) -> Path | None:
        """The run directory (None in memory)."""
        return self.recorder.run_dir.path if self.recorder.run_dir is not None else None

    def open(
        self,
        out: str | Path | None,
        cfg: Config,
        model: nn.Module,
        optimizer: Any,
        steps_per_epoch: int | None,
        *,
        resume: bool,
        step: int | None,
        overwrite: bool,
    ) -> int:
        """Create the run (config.toml, init.pt, summary "running") or, with `resume`, continue the
        one in `out`; the step the loop continues from (0 for a new run)."""
        self.cfg = cfg
        if out is not None and resume and RunDir.is_run(out):
            return self._resume(RunDir.open(out), step, model)
        theta0 = flat_params(model)
        run_dir = RunDir.create(out, config_to_toml(cfg), overwrite=overwrite) if out is not None else None
        if run_dir is not None:
            run_dir.lock()
        self.recorder = Recorder(run_dir, cfg.checkpoint)
        self.recorder.summary = {
            "status": "running",
            "source": "attach",
            "seed": cfg.seed,
            "n_params": theta0.numel(),
            "steps": 0,
            "steps_per_epoch": steps_per_epoch,
            "device": cfg.device,
            "threads": cfg.threads,
            "model": type(model).__name__,
            "optimizer": type(optimizer).__name__,
            "versions": versions(),
            "started_at": now(),
            "resumes": 0,
        }
        self.recorder.save("init.pt", {k: v.detach().clone() for k, v in model.state_dict().items()})
        self.theta0 = theta0
        self.recorder.flush()
        return 0

    def _resume(self, run_dir: RunDir, step: int | None, model: nn.Module) -> int:
        """Continue `run_dir` from `step`: rows from it on are dropped, probe states come from the
        newest saved state at or before it, θ_0 from init.pt."""
        run_dir.lock()
        run_dir.remove_temporaries()
        summary = run_dir.read_summary()
        if summary.get("source") != "attach":
            raise UserError(f"{run_dir.path}: not written by sgdlab.attach; continue it with `sgdlab resume`")
        init = run_dir.load("init.pt")
        names = [n for n, p in model.named_parameters() if p.requires_grad]
        param = trainable(model)[0]
        self.theta0 = torch.cat([init[n].reshape(-1) for n in names]).to(param.device, param.dtype)
        states = run_dir.states()
        start = step if step is not None else (states[-1][0] if states else 0)
        usable = [(k, p) for k, p in states if k <= start]
        metrics = MetricsLog(run_dir.read_metrics())
        metrics.truncate(start)
        self.recorder = Recorder(run_dir, self.cfg.checkpoint if self.cfg else CheckpointConfig(), metrics)
        self.recorder.summary = dict(
            summary, status="running", steps=start, resumes=summary.get("resumes", 0) + 1
        )
        for key in ("error", "final", "finished_at", "stop_reason"):
            self.recorder.summary.pop(key, None)
        if usable:
            state = run_dir.load(usable[-1][1].name)
            self.probe_states = state["probes"]
            self._wall_before = float(state.get("wall_time", 0.0))
            if usable[-1][0] != start:
                self.recorder.summary["probe_state_from"] = usable[-1][0]
        return start

    def note_batch_size(self, size: int) -> None:
        """config.toml learns the loop's batch size (from its first batch)."""
        run_dir = self.recorder.run_dir
        if run_dir is None or self.cfg is None:
            return
        self.cfg = dataclasses.replace(self.cfg, train=dataclasses.replace(self.cfg.train, batch_size=size))
        write_text(run_dir.config_path, config_to_toml(self.cfg))

    def wall_time(self) -> float:
        """Seconds of training so far, over every resume."""
        return self._wall_before + time.perf_counter() - self._t0

    def flush_due(self) -> bool:
        """Whether `flush_seconds` passed since the last flush of a run directory."""
        return self.recorder.run_dir is not None and time.monotonic() - self._last_flush >= self.flush_seconds

    def flush(self, steps: int, state: dict[str, Any]) -> None:
        """Write rows, summary and (to a run directory) the resumable `state` at `steps`."""
        self.recorder.summary["steps"] = steps
        if self.recorder.run_dir is not None:
            self.recorder.save_state(steps, state)
        else:
            self.recorder.flush()
        self._last_flush = time.monotonic()

    def save_final(self, model: nn.Module) -> None:
        """final.pt: θ_final's state dict."""
        self.recorder.save("final.pt", {n: v.detach().clone() for n, v in model.state_dict().items()})

    def finish(self) -> None:
        """The last write, and the run directory's lock given back."""
        self.recorder.flush()
        if self.recorder.run_dir is not None:
            self.recorder.run_dir.unlock()

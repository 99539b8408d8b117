"""Where the engine sends results: metrics rows, resumable states and the summary. With no
run directory everything stays in memory (library use, tests) and no state is saved."""

from __future__ import annotations

import time
from typing import Any

import torch

from ..config import CheckpointConfig
from .metrics import MetricsLog
from .run_dir import RunDir


class Recorder:
    """The engine's one output: metrics rows, resumable states, checkpoints and the summary.

    Rows collect in `metrics` (a MetricsLog) and reach `RUN/metrics.parquet` at each flush:
    at every saved state, every `flush_seconds` (checked as progress is reported) and at the
    end. `summary` is the dict written to `RUN/summary.json` with them. Resumable states
    follow the checkpoint policy (`checkpoint.every_steps`, `checkpoint.every_seconds`,
    keeping the newest `checkpoint.keep`).

    Args:
        run_dir: the run directory, or None to keep everything in memory.
        checkpoint: the config's checkpoint policy.
        metrics: the rows recorded so far (a resumed run's, truncated to its state).
        flush_seconds: the longest time between two writes of the metrics and summary.
    """

    def __init__(
        self,
        run_dir: RunDir | None,
        checkpoint: CheckpointConfig,
        metrics: MetricsLog | None = None,
        flush_seconds: float = 30.0,
    ):
        self.run_dir, self.policy = run_dir, checkpoint
        self.metrics = metrics if metrics is not None else MetricsLog()
        self.summary: dict[str, Any] = {}
        self.flush_seconds = flush_seconds
        self._last_state = self._last_flush = time.monotonic()

    def append(self, step: int, epoch: float, row: dict[str, float]) -> None:
        """Record the metrics row of `step` (in memory until the next flush)."""
        self.metrics.append(step, epoch, row)

    def state_due(self, step: int) -> bool:
        """Is a resumable state due at the boundary before `step`?"""
        if self.run_dir is None:
            return False
        every, seconds = self.policy.every_steps, self.policy.every_seconds
        return bool(
            (every and step % every == 0) or (seconds and time.monotonic() - self._last_state >= seconds)
        )

    def save_state(self, step: int, state: dict[str, Any]) -> None:
        """Metrics first, then the state: a kill in between leaves rows that the resume from
        the previous state truncates, never a state without its rows."""
        self.summary["steps"] = step
        self.flush()
        if self.run_dir is not None:
            self.run_dir.save(f"state-{step:09d}.pt", state)
            self.run_dir.prune_states(self.policy.keep)
        self._last_state = time.monotonic()

    def save(self, name: str, obj: Any) -> None:
        """Save a checkpoint (tensors and plain values) as `checkpoints/NAME`; nothing in memory."""
        if self.run_dir is not None:
            self.run_dir.save(name, obj)

    def save_iterate(self, step: int, theta: torch.Tensor) -> None:
        """Save θ_k, a flat parameter vector, as `checkpoints/iterates/theta-<step>.pt`."""
        if self.run_dir is not None:
            self.run_dir.save(f"iterates/theta-{step:09d}.pt", theta.detach().cpu().clone())

    def merge(self, rows: dict[int, dict[str, float]], steps_per_epoch: int) -> None:
        """Add measurements made after the fact to the rows of their steps."""
        if rows:
            self.metrics.merge(rows, steps_per_epoch)

    def maybe_flush(self, step: int) -> None:
        """Flush if `flush_seconds` have passed since the last write (summary steps = `step`)."""
        if self.run_dir is not None and time.monotonic() - self._last_flush >= self.flush_seconds:
            self.summary["steps"] = step
            self.flush()

    def flush(self) -> None:
        """Commit the pending rows and, with a run directory, rewrite metrics and summary."""
        table = self.metrics.commit()
        if self.run_dir is not None:
            self.run_dir.write_metrics(table)
            self.run_dir.write_summary(self.summary)
        self._last_flush = time.monotonic()

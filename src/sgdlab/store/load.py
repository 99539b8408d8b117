"""Reading a run back: `load_run(path)` gives its config, summary and metrics in one call."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from ..config import Config
from ..errors import DamagedFile
from .metrics import rows_to_table
from .run_dir import FINISHED, RunDir
from .summary import RunSummary


@dataclass
class Run:
    """A finished (or stopped) run as read back from its directory by `load_run`.

    Attributes:
        path: the run directory.
        config: the resolved config the run recorded (every default filled in).
        summary: summary.json as written: status, steps, epochs, stop_reason, final metrics,
            timings, seed, n_params, versions, and per-probe summaries under "probes";
            `info` is the same as a typed record.
        metrics: the metrics table: `step`, `epoch`, one float64 column per metric, null
            where a metric was not measured at that step (`series` drops the nulls).
    """

    path: Path
    config: Config
    summary: dict[str, Any]
    metrics: pa.Table

    @property
    def info(self) -> RunSummary:
        """The summary as a typed record (`store.summary.RunSummary`)."""
        return RunSummary.from_dict(self.summary)

    @property
    def status(self) -> str:
        """The run's status: completed, diverged, interrupted, failed or running (or unknown)."""
        return self.info.status

    @property
    def final(self) -> dict[str, float]:
        """θ_final's metrics ("train_loss", "train_error", "test_loss", "test_error", …); {} if none."""
        return self.summary.get("final", {})

    def series(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(steps, values) where metric `name` was measured."""
        if name not in self.metrics.column_names:
            known = ", ".join(self.metrics.column_names[2:])
            raise KeyError(f"no metric {name!r} in {self.path} (it has: {known})")
        rows = self.metrics.filter(pc.is_valid(self.metrics[name]))
        return rows["step"].to_numpy(), rows[name].to_numpy()

    def epochs(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(epochs, values) where metric `name` was measured."""
        rows = self.metrics.filter(pc.is_valid(self.metrics[name]))
        return rows["epoch"].to_numpy(), rows[name].to_numpy()

    def checkpoint(self, name: str = "final.pt") -> dict[str, torch.Tensor]:
        """A saved model state_dict ("init.pt", "final.pt") or resumable state."""
        return RunDir(self.path).load(name)


def load_run(path: str | Path) -> Run:
    """Read the run directory at `path`: its config, summary and metrics in one object.

    Nothing is locked or changed, so a run can be read while it trains (its metrics as of the
    last flush); only a status `running` left by a process that is gone is corrected to
    `interrupted` (see `RunDir.read_summary`). A file that cannot be read, or holds what
    sgdlab never writes there, raises `DamagedFile` (a UserError) naming it; `sgdlab resume`
    trains the run again. Checkpoints are loaded only on request, with `Run.checkpoint`.

    Example: train one epoch into a directory, then read it back.

    >>> import tempfile
    >>> import sgdlab
    >>> config = {
    ...     "seed": 0,
    ...     "data": {"name": "digits", "n_train": 128, "n_test": 64},
    ...     "model": {"name": "mlp", "widths": [16]},
    ...     "optim": {"name": "sgd", "lr": 0.1},
    ...     "train": {"batch_size": 16, "epochs": 1},
    ... }
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = sgdlab.run(config, f"{tmp}/digits-mlp")
    ...     run = sgdlab.load_run(f"{tmp}/digits-mlp")
    ...     final_state = run.checkpoint("final.pt")
    >>> run.status, run.summary["steps"], run.summary["stop_reason"]
    ('completed', 8, 'epochs')
    >>> run.config.model.widths, run.config.train.sampler
    ((16,), 'reshuffle')
    >>> run.final
    {'train_loss': 2.06..., 'train_error': 0.64..., 'test_loss': 2.21..., 'test_error': 0.79...}

    Metrics measured once per epoch (here at steps 0 and 8) and every step (the minibatch
    loss) share one table; `series` gives the steps where a metric was measured:

    >>> steps, loss = run.series("train_loss")
    >>> steps
    array([0, 8])
    >>> loss
    array([2.28..., 2.06...])
    >>> run.epochs("train_loss")[0]
    array([0., 1.])
    >>> len(run.series("batch_loss")[0])
    8

    `checkpoint` loads a saved state_dict, here θ_final of the 64 → 16 → 10 network:

    >>> {name: tuple(t.shape) for name, t in final_state.items()}
    {'1.weight': (16, 64), '1.bias': (16,), '3.weight': (10, 16), '3.bias': (10,)}
    """
    run_dir = RunDir.open(path)
    summary = run_dir.read_summary()
    metrics = run_dir.read_metrics()
    if metrics is None and RunSummary.from_dict(summary).status in FINISHED:
        raise DamagedFile(run_dir.metrics_path, "missing", run_dir.todo())
    return Run(
        run_dir.path,
        run_dir.read_config(),
        summary,
        metrics if metrics is not None else rows_to_table([]),
    )

"""Reading a run back: `load_run(path)` gives its config, summary and metrics in one call."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from ..config import Config, load_config
from .metrics import rows_to_table
from .run_dir import RunDir


@dataclass
class Run:
    path: Path
    config: Config
    summary: dict[str, Any]
    metrics: pa.Table

    @property
    def status(self) -> str:
        return self.summary.get("status", "unknown")

    @property
    def final(self) -> dict[str, float]:
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
    run_dir = RunDir.open(path)
    metrics = run_dir.read_metrics()
    return Run(
        run_dir.path,
        load_config(run_dir.config_path),
        run_dir.read_summary(),
        metrics if metrics is not None else rows_to_table([]),
    )

"""Run directories: writing results (Recorder, RunDir) and reading them back (load_run)."""

from .load import Run, load_run
from .metrics import MetricsLog
from .recorder import Recorder
from .run_dir import RunDir

__all__ = ["MetricsLog", "Recorder", "Run", "RunDir", "load_run"]

"""Sweeps: a config's grid × seeds, one run per process on this machine or on a Ray cluster,
an index of every run, and a report aggregating the seeds of each grid point."""

from .index import Sweep, load_sweep
from .run import run_sweep

__all__ = ["Sweep", "load_sweep", "run_sweep"]

"""What `which-minimizer` measures, in two steps: the trained runs against the closed forms of
their linearizations, saved as tables (`runs`: `measure_runs`, read back by `load`), and that table
as the plain per-init numbers each experiment's claims and figures read (`Table`; `sigma`,
`adaptive`, `batch`, `later`)."""

from .adaptive import ADAPTIVE, AdaptiveRuns, SignKernelRuns, adaptive_runs, sign_kernel_runs
from .batch import BatchRuns, batch_runs
from .later import LaterRuns, later_runs
from .runs import load, measure_runs, read
from .sigma import Below, SigmaRuns, finite_width, sigma_runs
from .table import Table

__all__ = [
    "ADAPTIVE",
    "AdaptiveRuns",
    "BatchRuns",
    "Below",
    "LaterRuns",
    "SigmaRuns",
    "SignKernelRuns",
    "Table",
    "adaptive_runs",
    "batch_runs",
    "finite_width",
    "later_runs",
    "load",
    "measure_runs",
    "read",
    "sigma_runs",
    "sign_kernel_runs",
]

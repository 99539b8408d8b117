"""sgdlab: a laboratory for how SGD and its relatives converge on over-parameterized models.

The public API, in one list:
"""

__version__ = "0.1.0"

from . import curvature, toys  # noqa: E402  (sgdlab.curvature, sgdlab.toys)
from .config import Config, load_config  # noqa: E402
from .data import Dataset, datasets  # noqa: E402
from .errors import ConfigError, UserError  # noqa: E402
from .losses import losses  # noqa: E402
from .models import models  # noqa: E402
from .optim import optimizers  # noqa: E402
from .probes import Probe, probes  # noqa: E402
from .runner import RunResult, prepare, resume, run  # noqa: E402
from .store import Run, load_run  # noqa: E402
from .sweep import Sweep, load_sweep, run_sweep  # noqa: E402

__all__ = [
    "Config",
    "ConfigError",
    "Dataset",
    "Probe",
    "Run",
    "RunResult",
    "Sweep",
    "UserError",
    "curvature",
    "toys",
    "datasets",
    "load_config",
    "load_run",
    "losses",
    "models",
    "optimizers",
    "prepare",
    "load_sweep",
    "probes",
    "resume",
    "run",
    "run_sweep",
]

"""sgdlab: a laboratory for how SGD and its relatives converge on over-parameterized models.

Train: `run(config, out)` builds a run from a config (a dict, a TOML file or a Config) and
trains it into the run directory `out`; `prepare` only validates and builds; `resume(out)`
continues a killed or interrupted run bit-identically. Read: `load_run(out)` gives a run's
config, summary and metrics. Grids: `run_sweep` trains every grid point × seed, `load_sweep`
reads the sweep back. Extend: `models`, `datasets`, `optimizers`, `losses` and `probes` are the
registries a config's names are looked up in; `Dataset.from_tensors` and subclasses of `Probe`
bring your own data and measurements. `curvature` has the loss Hessian as an operator, with
Lanczos and Hutchinson estimators of its eigenvalues and trace; `toys` holds 2-D landscapes
and particle simulations.
Your own loop: `attach(model, optimizer, out=...)` runs the same probes on a training loop of your
own (`with lab.step(x, y): ...`, then `lab.close()`) into the same run directory; `replay(train_fn)`
runs a deterministic training function twice for what needs θ* (γ).

The public API is `__all__`, below.
"""

__version__ = "0.1.0"

from . import curvature, toys  # noqa: E402  (sgdlab.curvature, sgdlab.toys)
from .config import Config, load_config  # noqa: E402
from .data import Dataset, datasets  # noqa: E402
from .errors import ConfigError, DamagedFile, UserError  # noqa: E402
from .integrations import Lab, attach, replay  # noqa: E402  (after runner: it builds on it)
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
    "DamagedFile",
    "Dataset",
    "Lab",
    "Probe",
    "Run",
    "RunResult",
    "Sweep",
    "UserError",
    "attach",
    "curvature",
    "toys",
    "datasets",
    "load_config",
    "load_run",
    "losses",
    "models",
    "optimizers",
    "prepare",
    "replay",
    "load_sweep",
    "probes",
    "resume",
    "run",
    "run_sweep",
]

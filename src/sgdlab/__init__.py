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

The public API is `__all__`, below. It is imported on first use (`sgdlab.run` imports the
runner, and with it torch), so `import sgdlab` and the `sgdlab` command's help stay instant.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from .version import __version__

# Public name → the module that defines it (imported by `__getattr__` on first use).
API = {
    "Config": "config",
    "load_config": "config",
    "Dataset": "data",
    "datasets": "data",
    "ConfigError": "errors",
    "DamagedFile": "errors",
    "UserError": "errors",
    "Lab": "integrations",
    "attach": "integrations",
    "replay": "integrations",
    "losses": "losses",
    "models": "models",
    "optimizers": "optim",
    "Probe": "probes",
    "probes": "probes",
    "RunResult": "runner",
    "prepare": "runner",
    "resume": "runner",
    "run": "runner",
    "Run": "store",
    "load_run": "store",
    "Sweep": "sweep",
    "load_sweep": "sweep",
    "run_sweep": "sweep",
}
MODULES = ("curvature", "toys")  # sgdlab.curvature, sgdlab.toys

if TYPE_CHECKING:
    from . import curvature, toys
    from .config import Config, load_config
    from .data import Dataset, datasets
    from .errors import ConfigError, DamagedFile, UserError
    from .integrations import Lab, attach, replay
    from .losses import losses
    from .models import models
    from .optim import optimizers
    from .probes import Probe, probes
    from .runner import RunResult, prepare, resume, run
    from .store import Run, load_run
    from .sweep import Sweep, load_sweep, run_sweep


# `sgdlab.models`, `sgdlab.losses` and `sgdlab.probes` name registries, as they always have,
# though a module of the same name defines each: importing the module binds its name here, and
# the package keeps the registry it defines instead.
REGISTRIES = ("losses", "models", "probes")


class _Package(types.ModuleType):
    def __setattr__(self, name: str, value: Any) -> None:
        if name in REGISTRIES and isinstance(value, types.ModuleType):
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    """The public API, imported on first use."""
    if name in MODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in API:
        value = getattr(importlib.import_module(f".{API[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *API, *MODULES])


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
    "__version__",
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

"""The store: everything sgdlab writes and reads back, and nothing it computes.

Run directories (`RunDir`, written through a `Recorder`, read back by `load_run` as a `Run`
whose `info` is the typed `RunSummary`), claims (`Claim`, `decide`, claims.json), the records
of reproductions and tours, sweep directories (`load_sweep`), provenance (versions,
environment) and figure files (PNG + SVG)."""

from .claims import VERDICTS, Claim, decide, load_claims, not_applicable, save_claims
from .load import Run, load_run
from .metrics import MetricsLog
from .recorder import Recorder
from .run_dir import RunDir
from .summary import RunSummary

__all__ = [
    "VERDICTS",
    "Claim",
    "MetricsLog",
    "Recorder",
    "Run",
    "RunDir",
    "RunSummary",
    "decide",
    "load_claims",
    "load_run",
    "not_applicable",
    "save_claims",
]

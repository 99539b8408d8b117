"""`sgdlab report DIR`: one self-contained DIR/report.html for a run, a reproduction, a sweep or
the demo tour, built from the files in DIR alone (a report can always be regenerated). The
report reads the store only (`sgdlab.store`); it never trains or computes a claim.

Order, for a reader: the findings first (claims: verdict, statement, the key number, what it
means, the paper), then the figures, then what produced them (runs, resolved configs,
environment, timings). A run's page starts with its summary instead of claims, a sweep's with
the mean ± std across seeds of each grid point. The pages: `run_page`, `reproduction`,
`sweep`, `tour`.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from ..store import RunDir
from ..store.claims import CLAIMS
from ..store.files import write_text
from ..store.records import EXPERIMENT, is_tour
from ..store.sweeps import is_sweep
from .page import document
from .reproduction import reproduction_page
from .run_page import run_page
from .sweep import sweep_page
from .tour import tour_page

REPORT = "report.html"
PAGES = {"run": run_page, "reproduction": reproduction_page, "sweep": sweep_page, "tour": tour_page}


def kind_of(path: Path) -> str:
    """What DIR holds, by the files that mark it: "tour" (tour.json), "sweep", "reproduction"
    (experiment.json or claims.json) or "run" (config.toml); a UserError otherwise."""
    if is_tour(path):
        return "tour"
    if is_sweep(path):
        return "sweep"
    if (path / EXPERIMENT).is_file() or (path / CLAIMS).is_file():
        return "reproduction"
    if RunDir.is_run(path):
        return "run"
    raise UserError(
        f"{path}: not a run, reproduction, sweep or demo directory "
        "(no config.toml, claims.json, sweep.json or tour.json)"
    )


def write_report(path: str | Path) -> Path:
    """Write DIR/report.html from the files in DIR; returns its path."""
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"{path}: no such directory")
    title, body = PAGES[kind_of(path)](path)
    out = path / REPORT
    write_text(out, document(title, body))
    return out

"""The records of a reproduction and of the demo tour, beside their claims:

  DIR/experiment.json   what `sgdlab reproduce` ran: experiment, scale, device, `--only`,
                        paper, description, versions, environment, wall time, verdict counts
  DIR/tour.json         what `sgdlab demo` ran: device, versions, environment, and one stage
                        per reproduction (its directory, scale, paper, status, verdicts)

Both are read back checked: a field of the wrong type is a DamagedFile naming the file.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DamagedFile
from .claims import RERUN
from .files import check_fields, read_json, write_json

EXPERIMENT = "experiment.json"
TOUR = "tour.json"


@dataclass(frozen=True)
class ExperimentRecord:
    """DIR/experiment.json of a reproduction.

    Attributes:
        experiment: the registered name (`sgdlab list experiments`).
        scale: smoke, cpu or full.
        device: the device asked for (cpu, cuda, auto).
        only: the `--only` pattern, None for the whole reproduction.
        paper: the paper reproduced, as cited.
        help: the one-line description of the finding.
        versions, environment: the code and machine (`store.provenance`).
        wall_time_s: how long the reproduction took (reused runs count their loading only).
        verdicts: how many claims hold, fail, are not applicable.
    """

    experiment: str | None = None
    scale: str | None = None
    device: str | None = None
    only: str | None = None
    paper: str | None = None
    help: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    wall_time_s: float | None = None
    verdicts: dict[str, int] = field(default_factory=dict)


EXPERIMENT_FIELDS: dict[str, type | tuple[type, ...]] = {
    "experiment": str,
    "scale": str,
    "device": str,
    "only": str,
    "paper": str,
    "help": str,
    "versions": dict,
    "environment": dict,
    "wall_time_s": float,
    "verdicts": dict,
}


def save_record(out: str | Path, record: ExperimentRecord) -> Path:
    """Write OUT/experiment.json; returns its path."""
    path = Path(out) / EXPERIMENT
    write_json(path, dataclasses.asdict(record))
    return path


def load_record(out: str | Path) -> ExperimentRecord | None:
    """OUT/experiment.json, checked; None when there is none, DamagedFile when it cannot be
    read or a field has the wrong type."""
    path = Path(out) / EXPERIMENT
    if not path.is_file():
        return None
    raw = read_json(path, dict, RERUN)
    check_fields(raw, EXPERIMENT_FIELDS, path, RERUN)
    known = {k: v for k, v in raw.items() if k in EXPERIMENT_FIELDS and v is not None}
    return ExperimentRecord(**known)


STAGE_FIELDS: dict[str, type | tuple[type, ...]] = {
    "scale": str,
    "paper": str,
    "paper_short": str,
    "paper_title": str,
    "help": str,
    "status": str,
    "error": str,
    "wall_time_s": float,
    "verdicts": dict,
}
TOUR_FIELDS: dict[str, type | tuple[type, ...]] = {
    "stages": list,
    "device": str,
    "versions": dict,
    "environment": dict,
}
REDEMO = "run the same `sgdlab demo` command again to rebuild it"


def is_tour(path: str | Path) -> bool:
    """Whether `path` is the directory of a demo tour (it holds tour.json)."""
    return (Path(path) / TOUR).is_file()


def save_tour(out: str | Path, record: dict[str, Any]) -> None:
    """Write OUT/tour.json (the tour writes it again as each stage starts and ends)."""
    write_json(Path(out) / TOUR, record)


def read_tour(path: str | Path) -> dict[str, Any]:
    """DIR/tour.json, checked: a list of stages, each naming its experiment and directory;
    DamagedFile otherwise."""
    file = Path(path) / TOUR
    tour = read_json(file, dict, REDEMO)
    check_fields(tour, TOUR_FIELDS, file, REDEMO)
    for stage in tour.get("stages") or []:
        named = isinstance(stage, dict) and all(isinstance(stage.get(k), str) for k in ("experiment", "dir"))
        if not named:
            raise DamagedFile(file, "a stage is not an object with an experiment and a dir", REDEMO)
        check_fields(stage, STAGE_FIELDS, file, REDEMO)
    return tour

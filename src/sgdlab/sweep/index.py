"""The sweep directory and its index:

  DIR/sweep.json      the spec (base config, grid axes, seeds), versions, environment
  DIR/index.parquet   one row per run: run, point, one column per grid key, seed, status,
  DIR/index.json      steps, epochs, wall_time_s, error, then the run's final metrics
  DIR/runs/<run>/     one sgdlab run directory per grid point × seed
  DIR/report.html     the aggregated report (mean ± std across seeds per grid point)

The index is rebuilt from the run directories (plus errors of runs that never got one), so it
is right after any interruption; `load_sweep(DIR)` reads it back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from ..errors import DamagedFile
from ..store import RunDir, RunSummary
from ..store.files import write_json, write_parquet
from ..store.sweeps import INDEX, INDEX_JSON, SPEC, Sweep, is_sweep, load_sweep, read_index, read_spec
from .grid import SweepRun, value_text

__all__ = [
    "INDEX",
    "INDEX_JSON",
    "SPEC",
    "Sweep",
    "index_rows",
    "is_sweep",
    "load_sweep",
    "read_index",
    "read_spec",
    "rows_table",
    "write_index",
]

BASE_COLUMNS = ("run", "point", "seed", "status", "steps", "epochs", "wall_time_s", "error")


def index_rows(out: Path, runs: list[SweepRun], errors: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """One row per run of the sweep, read from its run directory."""
    errors = errors or {}
    rows = []
    for r in runs:
        path = out / "runs" / r.name
        try:
            info = RunDir(path).read_info() if RunDir.is_run(path) else RunSummary()
        except DamagedFile as exc:
            info = RunSummary(status="damaged", error=str(exc))
        unknown = info.status == RunSummary().status  # no summary yet
        row = {
            "run": r.name,
            "point": r.point,
            **r.values,
            "seed": r.seed,
            "status": ("failed" if r.name in errors else "pending") if unknown else info.status,
            "steps": info.steps,
            "epochs": info.epochs,
            "wall_time_s": info.wall_time_s,
            "error": info.error or errors.get(r.name),
        }
        for key, value in info.final.items():
            if key not in row:
                row[key] = value
        rows.append(row)
    return rows


def rows_table(rows: list[dict[str, Any]], grid_keys: list[str]) -> pa.Table:
    """The index as a typed table: grid columns keep their type when every value shares one
    (numbers, strings, booleans), else hold the TOML text; metrics are float64."""
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    columns = {}
    for name in names:
        values = [row.get(name) for row in rows]
        if name in grid_keys:
            columns[name] = _grid_column(values)
        elif name in ("run", "status", "error"):
            columns[name] = pa.array(values, pa.string())
        elif name in ("point", "seed", "steps"):
            columns[name] = pa.array(values, pa.int64())
        else:
            columns[name] = pa.array([_float(v) for v in values], pa.float64())
    return pa.table(columns)


def _grid_column(values: list[Any]) -> pa.Array:
    kinds = {type(v) for v in values}
    if kinds <= {int} or kinds <= {bool} or kinds <= {str}:
        return pa.array(values)
    if kinds <= {int, float}:
        return pa.array([float(v) for v in values], pa.float64())
    return pa.array([value_text(v) for v in values], pa.string())


def _float(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def write_index(out: Path, rows: list[dict[str, Any]], grid_keys: list[str]) -> None:
    """The index twice, atomically: Parquet (typed, for `load_sweep`) and JSON (for people)."""
    write_parquet(out / INDEX, rows_table(rows, grid_keys))
    write_json(out / INDEX_JSON, rows)

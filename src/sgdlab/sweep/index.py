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

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..errors import DamagedFile, UserError
from ..store import Run, RunDir, load_run
from ..store.files import check_fields, read_json, read_parquet, write_json, write_parquet
from .grid import SweepRun, value_text

SPEC = "sweep.json"
INDEX = "index.parquet"
INDEX_JSON = "index.json"
BASE_COLUMNS = ("run", "point", "seed", "status", "steps", "epochs", "wall_time_s", "error")


def is_sweep(path: str | Path) -> bool:
    """Whether `path` is a sweep's directory (it holds the sweep's spec)."""
    return (Path(path) / SPEC).is_file()


def index_rows(out: Path, runs: list[SweepRun], errors: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """One row per run of the sweep, read from its run directory."""
    errors = errors or {}
    rows = []
    for r in runs:
        path = out / "runs" / r.name
        try:
            summary = RunDir(path).read_summary() if RunDir.is_run(path) else {}
        except DamagedFile as exc:
            summary = {"status": "damaged", "error": str(exc)}
        status = summary.get("status") or ("failed" if r.name in errors else "pending")
        row = {
            "run": r.name,
            "point": r.point,
            **r.values,
            "seed": r.seed,
            "status": status,
            "steps": summary.get("steps"),
            "epochs": summary.get("epochs"),
            "wall_time_s": summary.get("wall_time_s"),
            "error": summary.get("error") or errors.get(r.name),
        }
        for key, value in (summary.get("final") or {}).items():
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


@dataclass
class Sweep:
    """A sweep read back: its spec, the index (a pyarrow Table, one row per run) and the runs."""

    path: Path
    spec: dict[str, Any]
    index: pa.Table

    @property
    def grid_keys(self) -> list[str]:
        """The dotted config keys the sweep varies, in grid order."""
        return [axis["key"] for axis in self.spec.get("grid", [])]

    @property
    def names(self) -> list[str]:
        """Every run's name (its directory under `runs/`), in index order."""
        return self.index["run"].to_pylist()

    def run(self, which: str | int) -> Run:
        """Load one run, by its name (the `run` column) or its row number in the index."""
        name = self.names[which] if isinstance(which, int) else which
        if name not in self.names:
            raise UserError(f"{self.path}: the sweep has no run {name!r}")
        return load_run(self.path / "runs" / name)

    def runs(self, status: str | None = "completed") -> dict[str, Run]:
        """Every run whose status is `status` (None: every run that has a directory)."""
        rows = self.index.to_pylist()
        return {
            r["run"]: load_run(self.path / "runs" / r["run"])
            for r in rows
            if (status is None or r["status"] == status) and RunDir.is_run(self.path / "runs" / r["run"])
        }


REBUILD = "run the same `sgdlab sweep` command again to rebuild it"
SPEC_FIELDS: dict[str, type | tuple[type, ...]] = {
    "config": dict,
    "grid": list,
    "seeds": int,
    "created_at": str,
    "versions": dict,
    "environment": dict,
    "invocations": list,
}
INDEX_COLUMNS = {"run": pa.string(), "point": pa.int64(), "seed": pa.int64(), "status": pa.string()}


def read_spec(path: Path) -> dict[str, Any]:
    """DIR/sweep.json, checked: the base config, the grid axes ({key, values}), the seeds and
    the record of each invocation; DamagedFile otherwise."""
    file = path / SPEC
    spec = read_json(file, dict, REBUILD)
    check_fields(spec, SPEC_FIELDS, file, REBUILD)
    for axis in spec.get("grid") or []:
        if not (
            isinstance(axis, dict)
            and isinstance(axis.get("key"), str)
            and isinstance(axis.get("values"), list)
        ):
            raise DamagedFile(file, "a grid axis is not {key, values}", REBUILD)
    if not all(isinstance(i, dict) for i in spec.get("invocations") or []):
        raise DamagedFile(file, "an invocation is not an object", REBUILD)
    return spec


def read_index(path: Path) -> pa.Table:
    """DIR/index.parquet, checked for the columns every index has; DamagedFile otherwise."""
    file = path / INDEX
    index = read_parquet(file, REBUILD)
    for name, tp in INDEX_COLUMNS.items():
        if name not in index.column_names or index.schema.field(name).type != tp:
            raise DamagedFile(file, f"it has no {tp} column {name!r}", REBUILD)
    if index["run"].null_count or index["status"].null_count or index["point"].null_count:
        raise DamagedFile(file, "a run, point or status is missing", REBUILD)
    return index


def load_sweep(path: str | Path) -> Sweep:
    """Read a sweep directory written by `sgdlab sweep`; a UserError when it is not one, and
    DamagedFile when its sweep.json or index.parquet is damaged."""
    path = Path(path)
    if not is_sweep(path):
        raise UserError(f"{path}: not a sweep directory (no {SPEC})")
    spec = read_spec(path)
    if not (path / INDEX).is_file():
        raise UserError(f"{path}: the sweep has no index yet ({INDEX}); {REBUILD}")
    return Sweep(path, spec, read_index(path))

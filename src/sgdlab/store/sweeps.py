"""A sweep directory read back (`sgdlab sweep` writes it; `sgdlab.sweep.index` has the layout):

  DIR/sweep.json      the spec (base config, grid axes, seeds), versions, environment
  DIR/index.parquet   one row per run (run, point, grid values, seed, status, final metrics)
  DIR/runs/<run>/     one run directory per grid point × seed

`load_sweep(DIR)` reads it, checked: a damaged sweep.json or index is a DamagedFile naming it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..errors import DamagedFile, UserError
from .files import check_fields, read_json, read_parquet
from .load import Run, load_run
from .run_dir import RunDir

SPEC = "sweep.json"
INDEX = "index.parquet"
INDEX_JSON = "index.json"


def is_sweep(path: str | Path) -> bool:
    """Whether `path` is a sweep's directory (it holds the sweep's spec)."""
    return (Path(path) / SPEC).is_file()


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

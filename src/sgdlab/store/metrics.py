"""The metrics table: one row per recorded step (`step`, `epoch`, then one float64 column per
metric, null where a metric was not measured at that step).

In memory it is a pyarrow Table; on disk it is `RUN/metrics.parquet`, rewritten whole (and
atomically) at every flush. Columns appear in the order metrics were first reported. A step
at which nothing was measured has no row, so steps need not be consecutive.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc


def rows_to_table(rows: list[tuple[int, float, dict[str, Any]]]) -> pa.Table:
    """A metrics table from (step, epoch, {metric: value}) rows; missing values become null."""
    names: dict[str, None] = {}
    for _, _, row in rows:
        names.update(dict.fromkeys(row))
    columns: dict[str, pa.Array] = {
        "step": pa.array([r[0] for r in rows], pa.int64()),
        "epoch": pa.array([r[1] for r in rows], pa.float64()),
    }
    for name in names:
        columns[name] = pa.array([_as_float(r[2].get(name)) for r in rows], pa.float64())
    return pa.table(columns)


def _as_float(value: Any) -> float | None:
    return None if value is None else float(value)


def merge_tables(base: pa.Table, extra: pa.Table) -> pa.Table:
    """`base` with the metric columns of `extra` joined on step (epoch from `base`); columns of
    `extra` replace same-named ones of `base` (a merge repeated after a crash is harmless)."""
    if extra.num_rows == 0:
        return base
    base = base.drop_columns([c for c in extra.column_names[2:] if c in base.column_names])
    extra = extra.rename_columns(["step", "_epoch", *extra.column_names[2:]])
    joined = base.join(extra, "step", join_type="full outer").sort_by("step")
    epoch = pc.coalesce(joined["epoch"], joined["_epoch"])
    joined = joined.set_column(joined.column_names.index("epoch"), "epoch", epoch)
    return joined.select(base.column_names + extra.column_names[2:])


class MetricsLog:
    """Rows appended by the engine; `table()` is everything so far, `commit()` marks what is on
    disk, `truncate(step)` drops rows at or after a step (resuming from a state at `step`)."""

    def __init__(self, table: pa.Table | None = None):
        self._table = table if table is not None else rows_to_table([])
        self._rows: list[tuple[int, float, dict[str, Any]]] = []

    def append(self, step: int, epoch: float, row: dict[str, Any]) -> None:
        """Add the row of `step` (kept as Python values until the next `table()`/`commit()`)."""
        self._rows.append((step, epoch, row))

    @property
    def pending(self) -> int:
        """Rows appended since the last commit."""
        return len(self._rows)

    def table(self) -> pa.Table:
        """Every row so far, committed and pending; a column new in the pending rows is null
        in the earlier ones."""
        if not self._rows:
            return self._table
        return pa.concat_tables([self._table, rows_to_table(self._rows)], promote_options="default")

    def commit(self) -> pa.Table:
        """Fold the pending rows into the table and return it (what the recorder writes)."""
        self._table, self._rows = self.table(), []
        return self._table

    def merge(self, rows: dict[int, dict[str, Any]], steps_per_epoch: int) -> None:
        """Join columns measured after the fact onto existing steps (new steps are added)."""
        self._table = merge_tables(
            self.commit(),
            rows_to_table([(step, step / steps_per_epoch, row) for step, row in sorted(rows.items())]),
        )

    def truncate(self, step: int) -> None:
        """Drop every row at or after `step`: a resume from the state at `step` measures them again."""
        table = self.commit()
        self._table = table.filter(pc.less(table["step"], step))

    def last_values(self, finite: bool = False) -> dict[str, float]:
        """The last non-null (with `finite`: finite) value of every metric column."""
        table = self.table()
        out = {}
        for name in table.column_names[2:]:
            values = table[name].drop_null()
            if finite:
                values = values.filter(pc.is_finite(values))
            if len(values):
                out[name] = values[-1].as_py()
        return out


def metrics_problem(table: pa.Table) -> str | None:
    """What makes `table` not a metrics table (`store.metrics`): `step` (int64, no nulls,
    strictly increasing), `epoch` (float64), then float64 columns; None when it is one."""
    names = table.column_names
    if names[:2] != ["step", "epoch"]:
        return f"its first columns are {names[:2]}, not ['step', 'epoch']"
    if len(set(names)) != len(names):
        return "a column name appears twice"
    if table.schema.field("step").type != pa.int64() or table["step"].null_count:
        return "its step column is not whole numbers"
    bad = [f.name for f in table.schema if f.name != "step" and f.type != pa.float64()]
    if bad:
        return f"column {bad[0]!r} is {table.schema.field(bad[0]).type}, not float64"
    step = table["step"]
    if len(step) and pc.min(step).as_py() < 0:
        return "it holds a negative step"
    if len(step) > 1 and not pc.all(pc.greater(step[1:], step[:-1])).as_py():
        return "its steps are not in increasing order"
    return None

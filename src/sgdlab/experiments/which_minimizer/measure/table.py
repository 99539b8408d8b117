"""The measured run table of `which-minimizer` (`measure.load`: one row per run, output vectors
as object columns) as the claims and figures read it: row selection, pairing by init, the
premise "trained to the loss threshold", and per-init arrays over settings."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..stats import rms


class Table:
    """Row selection over the measured table."""

    def __init__(self, columns: dict[str, np.ndarray], stop_loss: float):
        """Wrap the measured columns (`measure.load`); `stop_loss` is the premise's threshold."""
        self.c = columns
        self.stop_loss = stop_loss

    def __getitem__(self, key: str) -> np.ndarray:
        """Column `key`."""
        return self.c[key]

    def rows(self, **where: Any) -> list[int]:
        """Indices of the rows where every column named in `where` equals its value."""
        mask = np.ones(len(self.c["name"]), dtype=bool)
        for key, value in where.items():
            mask &= self.c[key] == value
        return [int(i) for i in np.flatnonzero(mask)]

    def by_seed(self, **where: Any) -> dict[int, int]:
        """The rows `where` selects, keyed by their seed (init), for pairing across settings."""
        return {int(self.c["seed"][i]): i for i in self.rows(**where)}

    def ok(self, i: int) -> bool:
        """Reached the loss threshold and measured (trained outputs and, where the run has one,
        a closed form at θ_0: a singular Θ̂ has none; its message is in singular_kernel)."""
        return (
            self.c["status"][i] == "completed"
            and self.c["f_test"][i] is not None
            and self.c["final_train_loss"][i] < self.stop_loss
        )

    def has_closed_form(self, i: int) -> bool:
        """Whether run i has the closed-form GD limit at its θ_0."""
        return self.c["interpolating"][i] is not None

    def converged(self, **where: Any) -> dict[int, int]:
        """`by_seed`, keeping the runs that are `ok`."""
        return {k: i for k, i in self.by_seed(**where).items() if self.ok(i)}

    def gap(self, i: int) -> float:
        """RMS test-output gap of run i to the closed-form GD limit at its θ_0 (NaN without
        one): the finite-width error of Thm 3.1."""
        if not self.has_closed_form(i):
            return np.nan
        return rms(self.c["f_test"][i] - self.c["interpolating"][i] - self.c["initialization"][i])

    def per_seed(self, seeds: list[int], rows: dict[int, int], value: Callable[[int], float]) -> np.ndarray:
        """value(row) for each of `seeds` (NaN where `rows` has no converged run of it)."""
        return np.array([value(rows[k]) if k in rows else np.nan for k in seeds], dtype=np.float64)

    def distances(
        self, a: dict[int, int], b: dict[int, int], seeds: list[int], split: str = "f_test"
    ) -> np.ndarray:
        """RMS output distances on `split` between runs `a` and `b` of each of `seeds` (NaN
        where either is missing)."""
        return np.array(
            [rms(self.c[split][a[k]] - self.c[split][b[k]]) if k in a and k in b else np.nan for k in seeds],
            dtype=np.float64,
        )

"""Experiment 3 of `which-minimizer` as plain numbers: per batch size and data order, SGD's test
distance to GD and AdaGrad's to full-batch AdaGrad, per init (`BatchRuns`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..settings import Settings
from ..stats import Stat
from .table import Table


@dataclass(frozen=True)
class BatchRuns:
    """Experiment 3 per init (NaN where a run missed the threshold).

    Attributes:
        arch: the architecture's key; seeds: [I] the inits.
        gd_gap: GD's RMS test-output gap to its closed form (bound = 2 × it).
        sgd: variant ("b20", "b10-cyclic", …) → SGD's test distance to GD.
        adagrad: variant → mini-batch AdaGrad's test distance to full-batch AdaGrad.
        order: optimizer ("sgd", "adagrad") → test distance between cyclic and reshuffled
            order at the smallest batch size (absent when no cyclic runs were trained).
    """

    arch: str
    seeds: np.ndarray
    gd_gap: np.ndarray
    sgd: dict[str, np.ndarray]
    adagrad: dict[str, np.ndarray]
    order: dict[str, np.ndarray]

    @property
    def bound(self) -> float:
        """2 × the mean finite-width gap."""
        return 2 * Stat.of(self.gd_gap).mean


def batch_runs(t: Table, s: Settings, dataset: str, arch: str) -> BatchRuns:
    """The batch-part runs of `arch` on `dataset` from the measured table, paired by seed."""
    rows = t.rows(part="batch", dataset=dataset, arch=arch)
    n = int(t["n_train"][rows[0]])
    seeds = sorted({int(t["seed"][i]) for i in rows})

    def runs(opt: str, batch: int, sampler: str) -> dict[int, int]:
        return t.converged(
            part="batch", dataset=dataset, arch=arch, optimizer=opt, batch=batch, sampler=sampler
        )

    gd, ada_full = runs("gd", n, "full"), runs("adagrad", n, "full")
    small = min(s.batch_sizes)
    variants = [(f"b{b}", b, "reshuffle") for b in s.batch_sizes] + [(f"b{small}-cyclic", small, "cyclic")]
    sgd = {k: t.distances(runs("sgd", b, o), gd, seeds) for k, b, o in variants if runs("sgd", b, o)}
    ada = {
        k: t.distances(runs("adagrad", b, o), ada_full, seeds)
        for k, b, o in variants
        if runs("adagrad", b, o)
    }
    order = {
        opt: t.distances(runs(opt, small, "cyclic"), runs(opt, small, "reshuffle"), seeds)
        for opt in ("sgd", "adagrad")
        if runs(opt, small, "cyclic")
    }
    return BatchRuns(arch, np.array(seeds), t.per_seed(seeds, gd, t.gap), sgd, ada, order)

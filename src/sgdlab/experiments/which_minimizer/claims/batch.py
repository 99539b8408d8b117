"""Experiment 3 of `which-minimizer` (Nonnenmacher, Reeb & Steinwart 2021, Sect. 5, Thm 5.1 and
Fig. 4): plain SGD and AdaGrad at several batch sizes and two data orders, each against its
full-batch run from the same θ_0. Distances are RMS over the test points, paired by init.

  sgd-reaches-gd            SGD's distance to GD is within the finite-width bound — twice GD's
                            gap to its closed form, the most two nets that reach one linearized
                            minimizer can differ by finite-width error — at every batch size and
                            order (Thm 5.1(a): the minimizer does not depend on the batches)
  adaptive-depends-on-batch AdaGrad's distance to full-batch AdaGrad is above SGD's to GD at the
                            same batches, at every batch size (Thm 5.1(b): a path- and batch-
                            dependent term on top of the finite-width error, which SGD measures)
  data-order                cyclic vs reshuffled order moves AdaGrad's minimizer more than SGD's,
                            and SGD's within the bound (Fig. 4)
"""

from __future__ import annotations

import numpy as np

from ...base import Claim, decide, not_applicable
from ..measure.batch import BatchRuns, batch_runs
from ..measure.table import Table
from ..settings import Arch, Settings
from ..stats import SIGNIFICANCE, Stat, paired
from .premise import premise


def _summary(distances: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    return {k: Stat.of(v).as_dict() for k, v in distances.items()}


def sgd_reaches_gd_claim(group: str, m: BatchRuns) -> Claim:
    """Claim `<group>/sgd-reaches-gd` (Thm 5.1(a)): at every batch size and order, SGD's mean test
    distance to GD is within the finite-width bound 2 × GD's mean gap."""
    worst = max((Stat.of(v).mean for v in m.sgd.values()), default=np.nan)
    return decide(
        f"{group}/sgd-reaches-gd",
        f"{m.arch}: SGD reaches GD's minimizer for every batch size and data order (test distance "
        "within 2 × GD's finite-width gap to its closed form)",
        bool(m.sgd) and bool(worst <= m.bound),
        headline=f"max distance {worst:.4f} vs bound {m.bound:.4f}",
        meaning="Thm 5.1(a): without adaptivity, mini-batching changes the path, not the minimizer",
        sgd=_summary(m.sgd),
        gd_gap=Stat.of(m.gd_gap).as_dict(),
        bound=m.bound,
    )


def adaptive_depends_on_batch_claim(group: str, m: BatchRuns) -> Claim:
    """Claim `<group>/adaptive-depends-on-batch` (Thm 5.1(b), Fig. 4): at every batch size and order,
    mini-batch AdaGrad's test distance to full-batch AdaGrad is above SGD's to GD with the same
    batches, paired by init, by more than SIGNIFICANCE standard errors: SGD's distance is the
    finite-width part of such a difference (its linearized minimizer is GD's), measured."""
    excess = {k: paired(v, m.sgd[k]) for k, v in m.adagrad.items() if k in m.sgd}
    least = min((Stat.of(v).mean for v in m.adagrad.values()), default=np.nan)
    worst = max((Stat.of(v).mean for v in m.sgd.values()), default=np.nan)
    return decide(
        f"{group}/adaptive-depends-on-batch",
        f"{m.arch}: mini-batch AdaGrad's minimizer moves away from full-batch AdaGrad's more than SGD's "
        f"from GD's (every batch size and order, paired, by > {SIGNIFICANCE:g} standard errors)",
        bool(excess) and len(excess) == len(m.adagrad) and all(e.above(0.0) for e in excess.values()),
        headline=f"AdaGrad ≥ {least:.4f} vs SGD ≤ {worst:.4f} (finite-width bound {m.bound:.4f})",
        meaning="Thm 5.1(b): with changing adaptive matrices the batch size adds a path-dependent term "
        "to the minimizer",
        adagrad=_summary(m.adagrad),
        sgd=_summary(m.sgd),
        excess_over_sgd={k: e.as_dict() for k, e in excess.items()},
        gd_gap=Stat.of(m.gd_gap).as_dict(),
        bound=m.bound,
    )


def data_order_claim(group: str, m: BatchRuns) -> Claim:
    """Claim `<group>/data-order` (Fig. 4): cyclic vs reshuffled order moves AdaGrad's minimizer more
    than SGD's (paired, by more than SIGNIFICANCE standard errors), and SGD's by at most the
    finite-width bound. Not applicable without cyclic runs of both."""
    statement = (
        f"{m.arch}: reshuffled vs fixed (cyclic) data order changes AdaGrad's minimizer (more than "
        "SGD's) but not SGD's (within 2 × GD's finite-width gap)"
    )
    if "sgd" not in m.order or "adagrad" not in m.order:
        return not_applicable(f"{group}/data-order", statement, "no cyclic runs of both SGD and AdaGrad")
    o_sgd, o_ada = Stat.of(m.order["sgd"]), Stat.of(m.order["adagrad"])
    excess = paired(m.order["adagrad"], m.order["sgd"])
    return decide(
        f"{group}/data-order",
        statement,
        o_sgd.mean <= m.bound and excess.above(0.0),
        headline=f"order changes AdaGrad by {o_ada.mean:.4f}, SGD by {o_sgd.mean:.4f} (bound {m.bound:.4f})",
        meaning="the paper's Fig. 4: data order matters only for adaptive mini-batch training",
        sgd=o_sgd.as_dict(),
        adagrad=o_ada.as_dict(),
        excess_over_sgd=excess.as_dict(),
        bound=m.bound,
    )


def batch_claims(t: Table, s: Settings, dataset: str, arch: Arch) -> list[Claim]:
    """The premise, sgd-reaches-gd, adaptive-depends-on-batch and data-order (see the module)."""
    group = f"batch/{dataset}/{arch.key}"
    rows = t.rows(part="batch", dataset=dataset, arch=arch.key)
    if not rows:
        return []
    claims = [premise(f"{group}/premise", f"SGD and AdaGrad at every batch size, {arch.key}", t, rows)]
    m = batch_runs(t, s, dataset, arch.key)
    if Stat.of(m.gd_gap).n < 2:
        return claims + [
            not_applicable(
                f"{group}/sgd-reaches-gd", "SGD vs GD", "fewer than two full-batch GD runs with a closed form"
            )
        ]
    return claims + [
        sgd_reaches_gd_claim(group, m),
        adaptive_depends_on_batch_claim(group, m),
        data_order_claim(group, m),
    ]

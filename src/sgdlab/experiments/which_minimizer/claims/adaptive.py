"""Experiment 2 of `which-minimizer` (Nonnenmacher, Reeb & Steinwart 2021, Sect. 4 and Fig. 3):
GD vs AdaGrad vs Adam from the same θ_0. Each claim is one function of the plain per-init
numbers in `AdaptiveRuns`:

  minimizers-differ      each adaptive method's test outputs are further from GD's than those of
                         plain SGD from the same θ_0 — a different path to the same linearized
                         minimizer (Thm 5.1(a)), so the measured size of the finite-width error
                         such a comparison carries
  gd-generalizes-better  each adaptive method's test loss is above GD's
"""

from __future__ import annotations

from ...base import Claim, decide, not_applicable
from ..measure.adaptive import AdaptiveRuns, adaptive_runs
from ..measure.table import Table
from ..settings import Arch, Settings
from ..stats import SIGNIFICANCE, Stat, paired
from .premise import premise


def minimizers_differ_claim(group: str, m: AdaptiveRuns) -> Claim:
    """Claim `<group>/minimizers-differ` (Thm 4.1): each adaptive method's RMS test distance to GD is
    above mini-batch SGD's from the same θ_0, paired by init, by more than SIGNIFICANCE standard
    errors. SGD reaches GD's linearized minimizer by another path (Thm 5.1(a)), so its distance
    is the finite-width error such a comparison carries — measured, where the triangle bound
    2 × GD's gap to its closed form (reported) assumes the two nets' errors share nothing. On
    the training points every pair agrees to within 2√(2·stop_loss) by the premise (reported)."""
    excess = {opt: paired(d, m.sgd_distance) for opt, d in m.test_distance.items()}
    null = Stat.of(m.sgd_distance)
    return decide(
        f"{group}/minimizers-differ",
        f"{m.arch}: AdaGrad's and Adam's minimizers differ from GD's on test points by more than "
        f"plain SGD's from the same θ_0 (paired, by > {SIGNIFICANCE:g} standard errors)",
        bool(excess) and all(e.above(0.0) for e in excess.values()),
        headline="; ".join(
            f"{opt}: test {Stat.of(m.test_distance[opt]).mean:.3f} "
            f"vs train {Stat.of(m.train_distance[opt]).mean:.4f}"
            for opt in m.test_distance
        )
        + f" (SGD {null.mean:.4f}; GD's gap {Stat.of(m.gd_gap).mean:.3f})",
        meaning="Thm 4.1: adaptive updates interpolate with a different kernel Θ_A, so the optimizer — "
        "not just the path — decides which minimizer is reached",
        sgd_distance=null.as_dict(),
        sgd_train_distance=Stat.of(m.sgd_train_distance).as_dict(),
        gd_gap=Stat.of(m.gd_gap).as_dict(),
        triangle_bound=2 * Stat.of(m.gd_gap).mean,
        test_distance={opt: Stat.of(d).as_dict() for opt, d in m.test_distance.items()},
        train_distance={opt: Stat.of(d).as_dict() for opt, d in m.train_distance.items()},
        excess_over_sgd={opt: e.as_dict() for opt, e in excess.items()},
    )


def gd_generalizes_better_claim(group: str, m: AdaptiveRuns) -> Claim:
    """Claim `<group>/gd-generalizes-better` (Fig. 3): each adaptive method's test loss is above GD's,
    paired by init, by more than SIGNIFICANCE standard errors."""
    worse = {opt: paired(m.test_loss[opt], m.test_loss["gd"]) for opt in m.test_distance}
    return decide(
        f"{group}/gd-generalizes-better",
        f"{m.arch}: GD's minimizer has a lower test loss than AdaGrad's and Adam's (paired by init, "
        f"by > {SIGNIFICANCE:g} standard errors)",
        bool(worse) and all(w.above(0.0) for w in worse.values()),
        headline="; ".join(
            f"{opt}: {100 * Stat.of(m.test_error[opt]).mean:.1f}% / {Stat.of(m.test_loss[opt]).mean:.4f}"
            for opt in m.test_loss
        )
        + " (test error / loss)",
        meaning="the paper's Fig. 3: the adaptive minimizers generalize worse than GD's",
        test_loss={opt: Stat.of(v).as_dict() for opt, v in m.test_loss.items()},
        test_error={opt: Stat.of(v).as_dict() for opt, v in m.test_error.items()},
        difference_to_gd={opt: w.as_dict() for opt, w in worse.items()},
    )


def adaptive_claims(t: Table, s: Settings, dataset: str, arch: Arch) -> list[Claim]:
    """The premise, minimizers-differ and gd-generalizes-better on `arch` (see the module)."""
    group = f"adaptive/{dataset}/{arch.key}"
    rows = t.rows(part="adaptive", dataset=dataset, arch=arch.key)
    if not rows:
        return []
    claims = [premise(f"{group}/premise", f"GD, AdaGrad and Adam, {arch.key}", t, rows)]
    m = adaptive_runs(t, dataset, arch.key)
    if not m.test_distance or Stat.of(m.sgd_distance).n < 2:
        return claims + [
            not_applicable(
                f"{group}/minimizers-differ",
                "adaptive vs GD minimizers",
                "fewer than two inits with converged GD and SGD runs, or no converged adaptive run",
            )
        ]
    return claims + [minimizers_differ_claim(group, m), gd_generalizes_better_claim(group, m)]

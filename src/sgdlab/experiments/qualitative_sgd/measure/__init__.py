"""What `qualitative-sgd` measures, as plain numbers the claims are decided from: the
simulations of `sgdlab.toys` (`toys`: noise ball, 1-D pair, escaping) and the trained runs
(`least_squares`, `nets`: residual nets and step-size rules, `agreement`: μ on digits); the
estimates with their standard errors in `estimates`. Each measurement is a small frozen
dataclass of floats and arrays, so a claim can be decided (and unit-tested) from synthetic
numbers as well as from a reproduction."""

from .agreement import (
    AgreementPath,
    agreement_path,
)
from .estimates import (
    Estimate,
    mean_estimate,
    ratio_of_means,
)
from .least_squares import (
    Floor,
    LeastSquaresRun,
    exact_solution,
    floor,
    gradient_norms_at,
    least_squares_run,
    problem,
    stationary_excess_loss,
    window_halves,
)
from .nets import (
    Net,
    RuleRun,
    final_norms,
    last,
    net,
    rule_run,
    rule_table,
    series,
)
from .toys import (
    Escapes,
    Landscape,
    NoiseBallMeasures,
    PairRun,
    contraction,
    escapes,
    landscape,
    noise_ball,
    pair_run,
    stays_below,
)

__all__ = [
    "AgreementPath",
    "Escapes",
    "Estimate",
    "Floor",
    "Landscape",
    "LeastSquaresRun",
    "Net",
    "NoiseBallMeasures",
    "PairRun",
    "RuleRun",
    "agreement_path",
    "contraction",
    "escapes",
    "exact_solution",
    "final_norms",
    "floor",
    "gradient_norms_at",
    "landscape",
    "last",
    "least_squares_run",
    "mean_estimate",
    "net",
    "noise_ball",
    "pair_run",
    "problem",
    "ratio_of_means",
    "rule_run",
    "rule_table",
    "series",
    "stationary_excess_loss",
    "stays_below",
    "window_halves",
]

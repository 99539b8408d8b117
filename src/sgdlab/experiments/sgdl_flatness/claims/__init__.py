"""The claims of `sgdl-flatness`, one function each, from plain measured numbers: the 2-D
landscapes and Rosenbrock (`toy`), the SGDL noise sweep (`mlp`) and natural vs random labels
(`labels`)."""

from .labels import (
    MEASURES,
    Measured,
    label_claims,
    measures_agree_claim,
    premise,
    separation_claim,
    simplex_claim,
)
from .mlp import Baseline, all_similar_claim, converges, noise_threshold_claim, similar, sweep_claims
from .toy import (
    boltzmann_checks,
    boltzmann_claim,
    boltzmann_paper_levels_claim,
    flat_wins,
    gd_mass_claim,
    ratio_check,
    report_sharp_claim,
    rosenbrock_claims,
    rosenbrock_rate_claim,
    rosenbrock_stalls_claim,
    sgdl_mass_claim,
    toy_claims,
    tv_distance,
)

__all__ = [
    "MEASURES",
    "Baseline",
    "Measured",
    "all_similar_claim",
    "boltzmann_checks",
    "boltzmann_claim",
    "boltzmann_paper_levels_claim",
    "converges",
    "flat_wins",
    "gd_mass_claim",
    "label_claims",
    "measures_agree_claim",
    "noise_threshold_claim",
    "premise",
    "ratio_check",
    "report_sharp_claim",
    "rosenbrock_claims",
    "rosenbrock_rate_claim",
    "rosenbrock_stalls_claim",
    "separation_claim",
    "sgdl_mass_claim",
    "similar",
    "simplex_claim",
    "sweep_claims",
    "toy_claims",
    "tv_distance",
]

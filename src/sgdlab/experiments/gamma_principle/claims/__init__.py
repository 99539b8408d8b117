"""The claims of `gamma-principle`, one function each, from plain measured numbers: per ablation
the principle and Theorem 1 (`theorem`), γ against speed and the paper's order of speeds
(`speed`), all of them assembled with the premise claim (`ablation`); the PCA view of the
optimizer paths (`pca`)."""

from .ablation import ablation_claims, untrained_premise
from .pca import ANGLE, pca_directions_claim, pca_untrained_claim
from .scope import MEANINGS, Scope
from .speed import (
    decisive_pairs,
    faster_beyond,
    gamma_vs_speed_claim,
    kendall_tau,
    paper_order_claim,
    tier_pairs,
)
from .theorem import DIST_TOL, RATE_MIN_COVERAGE, distance_claim, principle_claim, rate_claim

__all__ = [
    "ANGLE",
    "DIST_TOL",
    "MEANINGS",
    "RATE_MIN_COVERAGE",
    "Scope",
    "ablation_claims",
    "decisive_pairs",
    "distance_claim",
    "faster_beyond",
    "gamma_vs_speed_claim",
    "kendall_tau",
    "paper_order_claim",
    "pca_directions_claim",
    "pca_untrained_claim",
    "principle_claim",
    "rate_claim",
    "tier_pairs",
    "untrained_premise",
]

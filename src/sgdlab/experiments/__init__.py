"""Reproductions of published findings: configs per scale, claims, figures."""

from .base import SCALES, Claim, Lab, decide, experiments, load_claims, reproduce
from . import exact_convergence, gamma_principle, which_minimizer  # noqa: F401  (registers)

__all__ = ["SCALES", "Claim", "Lab", "decide", "experiments", "load_claims", "reproduce"]

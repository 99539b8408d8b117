"""Reproductions of published findings: configs per scale, claims, figures."""

# Importing each reproduction registers it in `experiments`.
from . import exact_convergence, gamma_principle, qualitative_sgd, sgdl_flatness, which_minimizer  # noqa: F401, I001
from . import edge_of_stability  # noqa: F401  (after the five: registry order is the tour's and the list's)
from .base import SCALES, Claim, Lab, decide, experiments, load_claims, reproduce

__all__ = ["SCALES", "Claim", "Lab", "decide", "experiments", "load_claims", "reproduce"]

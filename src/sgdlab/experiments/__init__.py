"""Reproductions of published findings: configs per scale, claims, figures."""

# Importing each reproduction registers it in `experiments`.
from ..store.claims import Claim, decide, load_claims  # noqa: I001  (edge_of_stability after the five)
from . import exact_convergence, gamma_principle, qualitative_sgd, sgdl_flatness, which_minimizer  # noqa: F401
from . import edge_of_stability  # noqa: F401  (after the five: registry order is the tour's and the list's)
from .base import Lab
from .registry import SCALES, Reproduction, experiments, reproduction, reproductions
from .reproduce import reproduce

__all__ = [
    "SCALES",
    "Claim",
    "Lab",
    "Reproduction",
    "decide",
    "experiments",
    "load_claims",
    "reproduce",
    "reproduction",
    "reproductions",
]

"""Reproductions of published findings: configs per scale, claims, figures."""

# Importing each reproduction registers it in `experiments`.
from . import exact_convergence, gamma_principle, qualitative_sgd, sgdl_flatness, which_minimizer  # noqa: F401
from .base import SCALES, Claim, Lab, decide, experiments, load_claims, reproduce

__all__ = ["SCALES", "Claim", "Lab", "decide", "experiments", "load_claims", "reproduce"]

"""Reproductions of published findings: configs per scale, claims, figures."""

from .base import SCALES, Claim, Lab, decide, experiments, load_claims, reproduce
from . import (exact_convergence, gamma_principle, qualitative_sgd, sgdl_flatness,  # noqa: F401
               which_minimizer)  # (registers)

__all__ = ["SCALES", "Claim", "Lab", "decide", "experiments", "load_claims", "reproduce"]

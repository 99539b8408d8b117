"""The tolerances the claims of `qualitative-sgd` share: for statistical comparisons `Z`
standard errors measured across independent runs or seeds (shown in the evidence), and "much
smaller" = `MUCH`, an order of magnitude."""

from __future__ import annotations

import math

Z = 3.0  # standard errors a statistical comparison allows
MUCH = 10.0  # "much smaller": at least this factor


def combined_se(*ses: float) -> float:
    """√(Σ se²): the standard error of a sum or difference of independent estimates."""
    return float(math.sqrt(sum(s * s for s in ses)))

"""The claims of `exact-convergence`, one function each, from plain measured numbers: the
linear study's (`linear`) and the CNN study's, per network and across networks (`cnn`)."""

from .cnn import (
    cnn_claims,
    contrast_claims,
    depth_first_zero_claim,
    diverged_claims,
    loss_falling_claim,
    skips_loss_falling_claim,
    skips_zero_error_claim,
    test_error_noise,
    val_loss_rises_claim,
    zero_error_claim,
)
from .linear import (
    FLOOR_BOUNDARY,
    direction_claim,
    linear_claims,
    linear_zero_error_claim,
    loss_rate_claim,
    margin_claim,
    norm_growth_claim,
    sgd_floor_claim,
)

__all__ = [
    "FLOOR_BOUNDARY",
    "cnn_claims",
    "contrast_claims",
    "depth_first_zero_claim",
    "direction_claim",
    "diverged_claims",
    "linear_claims",
    "linear_zero_error_claim",
    "loss_falling_claim",
    "loss_rate_claim",
    "margin_claim",
    "norm_growth_claim",
    "sgd_floor_claim",
    "skips_loss_falling_claim",
    "skips_zero_error_claim",
    "test_error_noise",
    "val_loss_rises_claim",
    "zero_error_claim",
]

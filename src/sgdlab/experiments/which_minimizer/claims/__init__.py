"""The claims of `which-minimizer`, one function each (`*_claim`), from the plain per-init
numbers of `measure`: the σ grid and the procedure of Sect. 3 (`sigma`, `mitigation`), GD vs
adaptive methods (`adaptive`), Example 1 (`example1`), batch size and data order (`batch`), the
narrow net linearized later (`later`); each group opens with its premise (`premise`)."""

from .adaptive import adaptive_claims, gd_generalizes_better_claim, minimizers_differ_claim
from .batch import adaptive_depends_on_batch_claim, batch_claims, data_order_claim, sgd_reaches_gd_claim
from .example1 import example1_claims, example1_closed_form_claim, example1_differ_claim
from .later import (
    adaptive_still_differs_claim,
    later_claims,
    linearize_later_claim,
    sigma_still_matters_claim,
)
from .mitigation import mitigation_claim, procedure_trials
from .premise import premise
from .sigma import closed_form_claim, init_term_claim, sigma_claims, test_loss_rises_claim

__all__ = [
    "adaptive_claims",
    "adaptive_depends_on_batch_claim",
    "adaptive_still_differs_claim",
    "batch_claims",
    "closed_form_claim",
    "data_order_claim",
    "example1_claims",
    "example1_closed_form_claim",
    "example1_differ_claim",
    "gd_generalizes_better_claim",
    "init_term_claim",
    "later_claims",
    "linearize_later_claim",
    "minimizers_differ_claim",
    "mitigation_claim",
    "premise",
    "procedure_trials",
    "sgd_reaches_gd_claim",
    "sigma_claims",
    "sigma_still_matters_claim",
    "test_loss_rises_claim",
]

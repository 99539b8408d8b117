"""The neural tangent kernel instrument, for any PyTorch model: the empirical NTK (`kernel`),
the linearized network (`linearize`), and closed-form predictions of the trained linearized
network (`predict`), solved through a conditioned eigendecomposition (`solve`)."""

from .functional import Functional, functional, jacobian_rows
from .kernel import DEFAULT_BUDGET, KernelPlan, NtkMethod, empirical_ntk, plan_kernel, relative_change
from .linearize import Linearized, linearize, outputs_and_jvp
from .predict import (
    ClosedForm,
    Prediction,
    closed_form,
    gd_learning_rate,
    gd_limit,
    gd_trajectory,
    preconditioned_limit,
    sign_kernel_limit,
)
from .solve import KernelSolver, SingularKernel, as_matrix, as_vector

__all__ = [
    "ClosedForm",
    "DEFAULT_BUDGET",
    "Functional",
    "KernelPlan",
    "KernelSolver",
    "Linearized",
    "NtkMethod",
    "Prediction",
    "SingularKernel",
    "as_matrix",
    "as_vector",
    "closed_form",
    "empirical_ntk",
    "functional",
    "gd_learning_rate",
    "gd_limit",
    "gd_trajectory",
    "jacobian_rows",
    "linearize",
    "outputs_and_jvp",
    "plan_kernel",
    "preconditioned_limit",
    "relative_change",
    "sign_kernel_limit",
]

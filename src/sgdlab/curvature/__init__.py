"""Curvature of the loss: the Hessian as a linear operator, and estimators that take any
operator (or a dense matrix).

Operators (curvlinops' shape): `HessianOperator(model, loss, x, y)` is H = ∇²_θ L(θ) of the mean
loss L(θ) = (1/n) Σ_i ℓ(f_θ(x_i), y_i) on a *fixed* evaluation set (x, y), at the model's current
θ (or a given one), optionally restricted to one block of parameters (H_BB, e.g. one layer);
`FunctionHessian(f, θ)` is H = ∇²f(θ) of a plain function of a flat vector (an analytic toy
needs no model, loss or data).
`op @ v` is a Hessian-vector product computed on demand, one of two ways:

  double-backward   one forward and first backward with create_graph on *our own* copy of θ,
                    built when the operator is made and reused by every product (cheap
                    products; memory for the graph of the evaluation set). Convolutions, ReLUs
                    and max pooling record that first backward in a form whose differentiation
                    skips the zero and unneeded terms of PyTorch's formulas (`lean_graph`)
  jvp               forward-over-reverse, `torch.func.jvp(torch.func.grad(L), (θ,), (v,))`:
                    nothing is kept between products (lower memory, a forward+backward each)

Neither touches the training graph, the parameters' `.grad`, buffers or RNG streams: the
training backward never needs `create_graph`.

Batch norm and dropout: the operator evaluates the model in eval mode — dropout off, batch
norm with its running statistics — so L is a function of θ alone (with batch statistics it
would also depend on how the evaluation set is split into chunks). The running statistics
are the buffers' values when the operator is made.

Attention: where the model calls `F.scaled_dot_product_attention`, the operator selects its math
kernel (sgdlab.attention): the fused kernels have no double backward or forward-mode AD.

Estimators:
  lanczos(op, k)           top-k (algebraically largest) eigenvalues and vectors by Lanczos
                           iteration with reorthogonalization (Lanczos 1950; Golub & Van Loan
                           §10.1; Simon 1984), stopped when every Ritz residual r = ‖H s − θ s‖ =
                           β_m|e_mᵀ y| is ≤ tol·|θ_1| (so by Bauer–Fike an eigenvalue lies within
                           tol·|θ_1| of each Ritz value, and the vectors are converged too) or,
                           with accuracy = "value", when every Ritz value's estimated error
                           min(r, r²/δ) is, δ the distance to the nearest other Ritz value:
                           r²/δ is the Kato–Temple estimate (Kato 1949; Parlett, "The
                           symmetric eigenvalue problem", ch. 10), since an eigenvalue's error
                           is quadratic in its vector's — fewer products when only the values
                           are wanted. A warm start `v0` (e.g. the previous call's eigenvectors)
                           cuts the iterations when θ moved little.
  hutchinson(op, probes)   tr H ≈ (1/m) Σ_j z_jᵀ H z_j with Rademacher z_j (Hutchinson 1989),
                           with its standard error s/√m.

References: Pearlmutter 1994, "Fast exact multiplication by the Hessian" (Hessian-vector
products by differentiating ⟨∇L, v⟩); Lanczos 1950, "An iteration method for the solution of
the eigenvalue problem of linear differential and integral operators"; Golub & Van Loan,
"Matrix computations", §10.1 (Lanczos with reorthogonalization); Kato 1949, "On the upper
and lower bounds of eigenvalues"; Hutchinson 1989, "A stochastic estimator of the trace of the
influence matrix for Laplacian smoothing splines".
"""

from __future__ import annotations

from .estimators import ACCURACIES, Eigen, Trace, hutchinson, lanczos
from .operators import (
    METHODS,
    FunctionHessian,
    HessianOperator,
    MatrixOperator,
    as_operator,
    block_names,
    piece_size,
)

__all__ = [
    "ACCURACIES",
    "Eigen",
    "FunctionHessian",
    "HessianOperator",
    "MatrixOperator",
    "METHODS",
    "Trace",
    "as_operator",
    "block_names",
    "hutchinson",
    "lanczos",
    "piece_size",
]

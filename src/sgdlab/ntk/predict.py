"""Closed-form predictions of the linearized network trained on the squared loss, in the style
of neural-tangents' `predict` (Lee et al. 2019), with the decomposition of Nonnenmacher, Reeb &
Steinwart 2021 ("Which minimizer does my neural network converge to?").

Loss and step follow what sgdlab trains: L(θ) = (1/N) Σ_i ½‖f(x_i) − y_i‖², θ ← θ − η∇L. On
the linearized model the training residual r_t = f_t(X) − Y obeys r_{t+1} = (I − (η/N)Θ̂) r_t, so

  f_t(x) = f_0(x) − Θ̂(x,X) Θ̂⁻¹ [I − (I − (η/N)Θ̂)ᵗ] (f_0(X) − Y)                  (GD, step t)
  f_∞(x) = Θ̂(x,X)Θ̂⁻¹Y  +  [f_0(x) − Θ̂(x,X)Θ̂⁻¹f_0(X)]                          (Thm 3.1)
           └ interpolating ┘   └────────── initialization ─────────┘

whenever 0 < η < 2N/λ_max. The interpolating part is the minimum-RKHS-norm interpolant of the
data; for zero-bias ReLU nets in NTK parametrization Θ̂ ∝ σ^(2L), so it does not depend on σ,
while the initialization part (= φ(x)ᵀ(I − Π)θ_0/(L+1) by Euler's theorem) scales as σ^(L+1)
and vanishes on the training points. The paper's summed loss ½Σ with step 2/(λ_min + λ_max)
is the same trajectory as sgdlab's mean loss with η = 2N/(λ_min + λ_max) (`gd_learning_rate`).

A constant preconditioner A (θ ← θ − ηA∇L) gives the same formulas with Θ_A = φᵀAφ in place
of Θ̂ (`empirical_ntk(..., preconditioner=a)`). AdaGrad on one training point x_1 has
A_k = diag(1/|φ_1|)/c_k, a constant matrix up to a scalar, hence the "sign kernel" limit
  f_∞(x) = f_0(x) + φ(x)ᵀsign(φ_1)/‖φ_1‖₁ · (y_1 − f_0(x_1))   (GD: φ(x)ᵀφ_1/‖φ_1‖²).

Kernels are [N1, N2] (one output) or [N1, N2, k, k]; outputs [N] or [N, k]. The algebra runs
in float64 through `KernelSolver` (eigh, conditioning check, no explicit inverse).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from .functional import evaluating, functional, jacobian_rows
from .kernel import DEFAULT_BUDGET, empirical_ntk
from .solve import KernelSolver, as_matrix, as_vector


@dataclass(frozen=True)
class Prediction:
    """f_∞ at some points, split into its two parts (float64, shaped like the outputs)."""

    interpolating: torch.Tensor
    initialization: torch.Tensor

    @property
    def total(self) -> torch.Tensor:
        """f_∞ = interpolating + initialization."""
        return self.interpolating + self.initialization


def _shape_like(flat: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return flat.reshape(like.shape)


def gd_limit(
    k_train_train: torch.Tensor,
    y_train: torch.Tensor,
    fx_train_0: torch.Tensor,
    k_test_train: torch.Tensor,
    fx_test_0: torch.Tensor,
    *,
    solver: KernelSolver | None = None,
) -> Prediction:
    """f_∞ on the test points, as interpolating + initialization parts (see the module)."""
    solver = solver or KernelSolver.of(k_train_train)
    k = as_matrix(k_test_train).double()
    interpolating = k @ solver.solve(as_vector(y_train))
    initialization = as_vector(fx_test_0).double() - k @ solver.solve(as_vector(fx_train_0))
    return Prediction(_shape_like(interpolating, fx_test_0), _shape_like(initialization, fx_test_0))


# The constant-preconditioner limit is the GD limit with the Θ_A kernels.
preconditioned_limit = gd_limit


def gd_learning_rate(
    k_train_train: torch.Tensor, n: int | None = None, *, solver: KernelSolver | None = None
) -> float:
    """η = 2N/(λ_min + λ_max) of Θ̂ for the mean loss over N points: the fastest uniformly
    contracting GD step of the linearized model (the paper's 2/(λ_min + λ_max) for ½Σ)."""
    if solver is None:  # only the spectrum's ends are needed: no conditioning requirement
        values = torch.linalg.eigvalsh(as_matrix(k_train_train).double())
        low, high = float(values[0].clamp_min(0)), float(values[-1])
    else:
        low, high = solver.lambda_min, solver.lambda_max
    n = k_train_train.shape[0] if n is None else n
    return 2.0 * n / (low + high)


def gd_trajectory(
    k_train_train: torch.Tensor,
    y_train: torch.Tensor,
    fx_train_0: torch.Tensor,
    k_test_train: torch.Tensor,
    fx_test_0: torch.Tensor,
    lr: float,
    steps: int | list[int] | torch.Tensor,
    *,
    n: int | None = None,
    solver: KernelSolver | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(f_t(X), f_t(x_test)) of GD with step `lr` on the mean loss, for each t in `steps`:
    tensors [T, *output shape] (float64). Exact for discrete steps, computed on the
    eigenbasis: 1 − (1 − ηλ/N)ᵗ = −expm1(t·log1p(−ηλ/N)) keeps small ηλ/N accurate."""
    if any(float(t) != int(t) or t < 0 for t in torch.as_tensor(steps).reshape(-1).tolist()):
        raise ValueError(f"steps must be non-negative integers (discrete GD steps), got {steps}")
    solver = solver or KernelSolver.of(k_train_train)
    n = k_train_train.shape[0] if n is None else n
    ts = torch.as_tensor(steps, dtype=torch.float64).reshape(-1)
    k_test = as_matrix(k_test_train).double()
    r0 = as_vector(fx_train_0).double() - as_vector(y_train).double()
    a = lr * solver.values / n
    if bool((a >= 2).any()):
        raise ValueError(f"lr {lr:g} ≥ 2N/λ_max = {2 * n / solver.lambda_max:g}: GD diverges")
    train, test = [], []
    for t in ts.tolist():
        # 1 − (1 − a)ᵗ; for a > 1 the base is negative and t must be an integer step count
        done = torch.where(a < 1, -torch.expm1(t * torch.log1p(-a)), 1 - torch.pow(1 - a, t))
        coef = solver.apply(partial(torch.div, done), r0)  # Θ̂⁻¹[I − (I − ηΘ̂/N)ᵗ] r_0
        kernel_train = solver.apply(lambda lam: lam, coef)
        train.append(as_vector(fx_train_0).double() - kernel_train)
        test.append(as_vector(fx_test_0).double() - k_test @ coef)
    return (
        torch.stack(train).reshape(len(ts), *fx_train_0.shape),
        torch.stack(test).reshape(len(ts), *fx_test_0.shape),
    )


@dataclass(frozen=True)
class ClosedForm:
    """Everything the closed forms need for one network at θ_0 and a train/test split."""

    k_train_train: torch.Tensor
    k_test_train: torch.Tensor
    fx_train_0: torch.Tensor
    fx_test_0: torch.Tensor
    y_train: torch.Tensor
    solver: KernelSolver

    def limit(self) -> Prediction:
        """f_∞ on the test points (`gd_limit`)."""
        return gd_limit(
            self.k_train_train,
            self.y_train,
            self.fx_train_0,
            self.k_test_train,
            self.fx_test_0,
            solver=self.solver,
        )

    def learning_rate(self) -> float:
        """η = 2N/(λ_min + λ_max) of the training kernel (`gd_learning_rate`)."""
        return gd_learning_rate(self.k_train_train, solver=self.solver)

    def trajectory(self, lr: float, steps) -> tuple[torch.Tensor, torch.Tensor]:
        """(f_t(X), f_t(x_test)) after each of `steps` GD steps of size `lr` (`gd_trajectory`)."""
        return gd_trajectory(
            self.k_train_train,
            self.y_train,
            self.fx_train_0,
            self.k_test_train,
            self.fx_test_0,
            lr,
            steps,
            solver=self.solver,
        )


def _outputs(model: nn.Module, x: torch.Tensor, theta: torch.Tensor | None) -> torch.Tensor:
    """f(x; θ) in eval mode: [N] for one output, else [N, k]."""
    f = functional(model, theta)
    with evaluating(model):
        out = f.fn(f.params(), x)
    return out[:, 0] if out.shape[1] == 1 else out


def closed_form(
    model: nn.Module,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_test: torch.Tensor,
    *,
    theta: torch.Tensor | None = None,
    preconditioner: torch.Tensor | None = None,
    method: str = "auto",
    memory_budget: int = DEFAULT_BUDGET,
) -> ClosedForm:
    """Kernels Θ̂(X,X), Θ̂(x_test,X) (or Θ_A with `preconditioner`), outputs f_0 at θ =
    `theta` (default: the model's current parameters) and the factored training kernel.

    The prediction of the trained net by GD on its linearization (Lee et al. 2019): for a
    linear model the linearization is the model, and f_∞ is the minimum-norm interpolant.
    With w_0 = (1, 1), X = diag(2, 1) and Y = (1, 2), w_∞ = (½, 2), so f_∞((1, 1)) = 2.5:

    >>> import torch
    >>> from torch import nn
    >>> from sgdlab.ntk import closed_form
    >>> model = nn.Linear(2, 1, bias=False)
    >>> _ = torch.nn.init.ones_(model.weight)
    >>> x, y = torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.tensor([1.0, 2.0])
    >>> cf = closed_form(model, x, y, x_test=torch.tensor([[1.0, 1.0]]))
    >>> cf.k_train_train
    tensor([[4., 0.],
            [0., 1.]])
    >>> limit = cf.limit()
    >>> limit.interpolating, limit.initialization  # X spans ℝ²: nothing of θ_0 is left
    (tensor([2.5000], dtype=torch.float64), tensor([0.], dtype=torch.float64))
    >>> lr = cf.learning_rate()  # 2N/(λ_min + λ_max) = 4/5
    >>> lr
    0.8
    >>> train, test = cf.trajectory(lr, [0, 1, 100])  # f_t after t GD steps on the mean loss
    >>> train
    tensor([[2.0000, 1.0000],
            [0.4000, 1.4000],
            [1.0000, 2.0000]], dtype=torch.float64)
    >>> test[:, 0]
    tensor([2.0000, 1.6000, 2.5000], dtype=torch.float64)
    """
    kernel = partial(
        empirical_ntk, theta=theta, method=method, memory_budget=memory_budget, preconditioner=preconditioner
    )
    k_train = kernel(model, x_train)
    k_test = kernel(model, x_test, x_train)
    f_train, f_test = _outputs(model, x_train, theta), _outputs(model, x_test, theta)
    return ClosedForm(
        k_train, k_test, f_train, f_test, y_train.reshape(f_train.shape), KernelSolver.of(k_train)
    )


def sign_kernel_limit(
    model: nn.Module,
    x1: torch.Tensor,
    y1: torch.Tensor,
    x_test: torch.Tensor,
    *,
    theta: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(AdaGrad limit, GD limit) at `x_test` for one training point (x1 of shape [1, …], a
    scalar-output model): f_0(x) + Θ_A(x,x_1)/Θ_A(x_1,x_1)·(y_1 − f_0(x_1)) with
    A = diag(1/|φ_1|) (0 where φ_1 = 0), i.e. φ(x)ᵀsign(φ_1)/‖φ_1‖₁, and A = I."""
    f = functional(model, theta, x1)
    if f.n_outputs != 1 or len(x1) != 1:
        raise ValueError("the sign kernel is for one training point and one output")
    with evaluating(model):
        rows = jacobian_rows(f, x1)
    phi1 = torch.cat([r.reshape(-1) for r in rows.values()])
    inverse = torch.where(
        phi1 != 0, 1.0 / phi1.abs().clamp_min(torch.finfo(phi1.dtype).tiny), torch.zeros_like(phi1)
    )
    f0_test = _outputs(model, x_test, theta).double()
    residual = float(y1.reshape(-1)[0]) - float(_outputs(model, x1, theta).reshape(-1)[0])
    out = []
    for a in (inverse, None):
        k_x1 = empirical_ntk(model, x_test, x1, theta=theta, preconditioner=a)[:, 0].double()
        k_11 = empirical_ntk(model, x1, theta=theta, preconditioner=a)[0, 0].double()
        out.append(f0_test + k_x1 / k_11 * residual)
    return out[0], out[1]

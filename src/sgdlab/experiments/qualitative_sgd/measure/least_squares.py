"""What `qualitative-sgd` measures in part 3, least squares f(x) = Σ_i ½(a_iᵀx − b_i)²: the
exact solution, the gap per epoch, the individual gradients at the solution, and the loss
floor of iid SGD against its exact stationary value."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator, cg

from ....gradients import per_sample_gram
from ....params import set_flat_params
from ....runner import prepare
from ....store import Run

if TYPE_CHECKING:
    from ....engine import Parts


@dataclass(frozen=True)
class LeastSquaresRun:
    """One least-squares run: its exact solution x* (A⁺b when over-parameterized), final
    iterate, f(x*), the per-epoch gap f(x_k) − f* and ‖∇f_i(x*)‖ of every point."""

    x_star: torch.Tensor
    theta: torch.Tensor
    f_star: float
    epochs: np.ndarray
    gap: np.ndarray
    norms: np.ndarray


def exact_solution(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The least-squares solution in float64: the unique one when A has full column rank,
    otherwise the minimum-norm A⁺b (the point SGD from 0 reaches: it stays in A's row space)."""
    if a.shape[0] >= a.shape[1]:
        return torch.linalg.lstsq(a, b[:, None], driver="gelsd").solution[:, 0]
    return torch.linalg.pinv(a) @ b


def problem(run: Run) -> tuple[torch.Tensor, torch.Tensor, Parts]:
    """(A, b, parts) of a least-squares run, A and b in float64."""
    parts = prepare(run.config)
    return parts.data.train.x.double(), parts.data.train.y.double(), parts


def gradient_norms_at(parts: Parts, x_star: torch.Tensor) -> np.ndarray:
    """‖∇f_i(x*)‖ of every training point (sgdlab.gradients), the model's parameters set to `x_star`."""
    set_flat_params(parts.model, x_star.to(next(parts.model.parameters()).dtype))
    x, y = parts.data.train.x, parts.data.train.y
    return per_sample_gram(parts.model, parts.loss, x, y).norms.numpy()


def least_squares_run(run: Run) -> LeastSquaresRun:
    """`LeastSquaresRun` of a trained run (the gap is the recorded mean training loss − f*; f* = 0
    when over-parameterized, where A⁺b interpolates: its computed loss is round-off)."""
    a, b, parts = problem(run)
    x_star = exact_solution(a, b)
    f_star = float((0.5 * (a @ x_star - b) ** 2).mean()) if a.shape[0] >= a.shape[1] else 0.0
    theta = torch.cat([v.reshape(-1) for v in run.checkpoint("final.pt").values()]).double()
    epochs, loss = run.epochs("train_loss")
    return LeastSquaresRun(x_star, theta, f_star, epochs, loss - f_star, gradient_norms_at(parts, x_star))


@dataclass(frozen=True)
class Floor:
    """The loss floor of the under-parameterized problem at one step: per seed, the mean gap
    f(x_k) − f* over the first and over the second half of the averaging window, and the
    exact stationary E f(x) − f* of iid SGD at this step (`stationary_excess_loss`; NaN if
    not computed)."""

    step: float
    first_half: np.ndarray
    second_half: np.ndarray
    theory: float = math.nan

    @property
    def per_seed(self) -> np.ndarray:
        """Each seed's floor: its mean gap over the whole window."""
        return (self.first_half + self.second_half) / 2

    @property
    def drift(self) -> np.ndarray:
        """Each seed's second-half minus first-half mean: ≈ 0 once the run is stationary."""
        return self.second_half - self.first_half


def window_halves(gap: np.ndarray, window: int) -> tuple[float, float]:
    """The mean of `gap` over the first and over the second half of its last `window` values."""
    tail = gap[-window:]
    half = len(tail) // 2
    return float(tail[:half].mean()), float(tail[half:].mean())


def stationary_excess_loss(a: np.ndarray, b: np.ndarray, step: float) -> float:
    """E f(x) − f* in the stationary distribution of single-sample SGD with iid uniform
    indices on f(x) = (1/N) Σ_i ½(a_iᵀx − b_i)², solved exactly.

    With e = x − x*, r_i = b_i − a_iᵀx* (so Σ_i r_i a_i = 0), H = AᵀA/N and Σ = Σ_i r_i² a_i a_iᵀ/N,
    one step is e ← (I − γ a_i a_iᵀ) e + γ r_i a_i; the mean of e is 0 in the stationary
    distribution and its covariance C solves the linear equation
        H C + C H − γ (1/N) Σ_i (a_iᵀ C a_i) a_i a_iᵀ = γ Σ,
    solved here by conjugate gradients over symmetric C (the operator is positive definite for
    a stable step); then E f − f* = ½ tr(H C). For small γ, C ≈ (γ/2)·H⁻¹-weighted Σ: the
    excess is ∝ γ to first order."""
    n, d = a.shape
    x_star = np.linalg.lstsq(a, b, rcond=None)[0]
    r = b - a @ x_star
    h = a.T @ a / n
    sigma = (a * (r**2)[:, None]).T @ a / n

    def apply(v: np.ndarray) -> np.ndarray:
        c = v.reshape(d, d)
        q = ((a @ c) * a).sum(axis=1)
        return (h @ c + c @ h - step * (a * q[:, None]).T @ a / n).ravel()

    operator = LinearOperator((d * d, d * d), matvec=apply, dtype=np.float64)
    solution, info = cg(operator, step * sigma.ravel(), rtol=1e-10, maxiter=20 * d * d)
    if info != 0:
        return math.nan
    return float(0.5 * np.trace(h @ solution.reshape(d, d)))


def floor(step: float, gaps: list[np.ndarray], window: int, theory: float = math.nan) -> Floor:
    """`Floor` of one step from the per-epoch gaps f(x_k) − f* of its runs (one per seed): the
    halves of each gap's last `window` recorded epochs."""
    first, second = zip(*(window_halves(gap, window) for gap in gaps), strict=True)
    return Floor(step, np.asarray(first), np.asarray(second), theory)

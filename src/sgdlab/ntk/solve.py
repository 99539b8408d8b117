"""Solving with a kernel matrix: Θ̂ = VΛVᵀ (eigh, float64) once, then every closed form reads
the factors — Θ̂⁻¹B as V(VᵀB/λ), the GD step 2/(λ_min + λ_max), matrix powers (I − cΘ̂)ᵗ —
never an explicit inverse. A conditioning check first: Θ̂ is singular to working precision
when λ_min ≤ n·ε·λ_max (ε of the dtype the kernel was computed in, n its size: the rank
tolerance of numpy.linalg.matrix_rank), and solving with it would amplify rounding errors of
the kernel itself by more than 1/(n·ε); that is an error, not a silently wrong answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import UserError


class SingularKernel(UserError):
    """The kernel matrix cannot be solved with at its working precision."""


def as_matrix(kernel: torch.Tensor) -> torch.Tensor:
    """[N1, N2] stays; [N1, N2, k, k] becomes the (N1·k) × (N2·k) matrix of output pairs."""
    if kernel.ndim == 2:
        return kernel
    n1, n2, k1, k2 = kernel.shape
    return kernel.permute(0, 2, 1, 3).reshape(n1 * k1, n2 * k2)


def as_vector(values: torch.Tensor) -> torch.Tensor:
    """Outputs [N] or [N, k] as one vector of N·k entries (matching `as_matrix`)."""
    return values.reshape(-1)


@dataclass(frozen=True)
class KernelSolver:
    """The eigendecomposition of a symmetric positive definite kernel matrix (float64)."""

    values: torch.Tensor  # λ, ascending
    vectors: torch.Tensor  # V, columns

    @classmethod
    def of(cls, kernel: torch.Tensor, *, rcond: float | None = None, what: str = "Θ̂") -> "KernelSolver":
        """Factor `kernel` ([N, N] or [N, N, k, k]); SingularKernel when λ_min ≤ rcond·λ_max
        (default rcond: n·ε of the kernel's dtype)."""
        matrix = as_matrix(kernel)
        n = matrix.shape[0]
        if matrix.shape != (n, n):
            raise ValueError(f"{what} must be square, got {tuple(kernel.shape)}")
        eps = torch.finfo(kernel.dtype).eps if kernel.is_floating_point() else torch.finfo(torch.float64).eps
        rcond = n * eps if rcond is None else rcond
        m = matrix.double()
        values, vectors = torch.linalg.eigh((m + m.T) / 2)
        top, bottom = float(values[-1]), float(values[0])
        if not (top > 0 and bottom > rcond * top):
            ratio = bottom / top if top > 0 else float("nan")
            raise SingularKernel(
                f"{what} ({n}×{n}) is singular to working precision: λ_min = {bottom:.3g}, "
                f"λ_max = {top:.3g}, λ_min/λ_max = {ratio:.3g} ≤ {rcond:.1e} (duplicate inputs, "
                "more training outputs than parameters, or a float32 kernel that needs float64)"
            )
        return cls(values, vectors)

    @property
    def n(self) -> int:
        """The kernel matrix's size (N·k)."""
        return self.values.numel()

    @property
    def lambda_min(self) -> float:
        """The smallest eigenvalue λ_min."""
        return float(self.values[0])

    @property
    def lambda_max(self) -> float:
        """The largest eigenvalue λ_max."""
        return float(self.values[-1])

    @property
    def condition(self) -> float:
        """The condition number λ_max/λ_min."""
        return self.lambda_max / self.lambda_min

    def solve(self, b: torch.Tensor) -> torch.Tensor:
        """Θ̂⁻¹b for b of shape [n] or [n, m] (float64)."""
        b = b.double()
        return self.vectors @ ((self.vectors.T @ b) / (self.values if b.ndim == 1 else self.values[:, None]))

    def apply(self, fn, b: torch.Tensor) -> torch.Tensor:
        """g(Θ̂)b = V g(Λ) Vᵀ b for an elementwise function g of the eigenvalues."""
        b = b.double()
        g = fn(self.values)
        return self.vectors @ ((self.vectors.T @ b) * (g if b.ndim == 1 else g[:, None]))

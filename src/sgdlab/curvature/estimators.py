"""Estimators that take any symmetric operator (or a dense matrix): `lanczos` (the top-k
eigenpairs) and `hutchinson` (the trace); sgdlab.curvature's docstring gives their rules."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..errors import UserError
from .operators import as_operator

ACCURACIES = ("residual", "value")
ROUNDING = 10.0  # the rounding term of `_omega_next`, in units of ε‖T‖


@dataclass
class Eigen:
    """What `lanczos` returns: the top-k Ritz values (float64, descending) and unit Ritz vectors
    [n, k], their residuals ‖H s − θ s‖ and estimated errors min(r, r²/δ), the number of Lanczos
    steps (= operator products) and whether the stopping rule was met."""

    values: torch.Tensor  # [k] float64, descending
    vectors: torch.Tensor  # [n, k] unit columns, in the operator's dtype
    residuals: torch.Tensor  # [k] float64 Ritz residuals ‖H s − θ s‖
    iterations: int  # Lanczos steps = operator products
    converged: bool
    errors: torch.Tensor  # [k] float64 estimated errors min(r, r²/δ) of the values


def _random(
    n: int,
    generator: torch.Generator | None,
    dtype: torch.dtype,
    device: torch.device | str,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """N(0, I) drawn on the CPU (the same numbers on every device), written into `out` when
    given: on the CPU straight into it, since a fresh vector of 1.3M entries costs its page
    faults (a third of the draw)."""
    if out is not None and out.device.type == "cpu":
        return torch.randn(n, generator=generator, dtype=dtype, out=out)
    drawn = torch.randn(n, generator=generator, dtype=dtype, device="cpu").to(device)
    return drawn if out is None else out.copy_(drawn)


def lanczos(
    op,
    k: int = 1,
    *,
    tol: float = 1e-3,
    accuracy: str = "residual",
    max_iter: int = 100,  # noqa: ANN001
    v0: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    mix: float = 0.05,
    scratch: torch.Tensor | None = None,
    out: torch.Tensor | None = None,
) -> Eigen:
    """The k algebraically largest eigenpairs of the symmetric operator `op` (or dense matrix).

    Lanczos with partial reorthogonalization (every new vector is kept orthogonal to all
    earlier ones to within √ε, so the Ritz values carry no spurious copies: Simon's estimate
    `_omega_next` says when the basis must be measured and repaired, `_orthogonalize`; on an
    MLP of 1.3M parameters the measuring passes had cost a sixth of each call). Stops after
    `max_iter` products or, with accuracy = "residual", when all k Ritz residuals r_i are
    ≤ tol·|θ_1| (values and vectors converged); with accuracy = "value", when the estimated
    errors min(r_i, r_i²/δ_i) of the k values are (δ_i the distance to the nearest other Ritz
    value; module docstring): `tol` is then the relative accuracy of the values, and the
    vectors are only about √tol accurate (their angle error is about r_i/δ_i). `v0`: a start
    vector, or [n, k] previous eigenvectors (their sum is used) — a warm start; `mix` of a
    random vector is added so a direction the previous vectors missed can still be found.
    Invariant subspaces (a zero β) are continued with a fresh random vector orthogonal to the
    basis. `scratch`: a [≥ max_iter + 1, n] tensor of the operator's dtype and device to hold the
    Lanczos vectors, for a caller that runs Lanczos again and again (the `hessian` probe): the
    rows of a fresh basis are page-faulted in as they are first written, which on an MLP of
    1.3M parameters cost as much as a fifth of each Hessian-vector product. `out`: a [k, n]
    tensor of that dtype and device for the Ritz vectors (returned as its transpose), for the
    same caller; it may hold `v0` (as its transpose), which is read before anything is written.

    >>> import torch
    >>> from sgdlab.curvature import lanczos
    >>> h = torch.tensor([[2.0, 1.0, 0.0], [1.0, 2.0, 0.0], [0.0, 0.0, -4.0]], dtype=torch.float64)
    >>> eig = lanczos(h, k=2, generator=torch.Generator().manual_seed(0))
    >>> eig.values  # algebraically largest: 3 and 1, not the larger-magnitude −4
    tensor([3.0000, 1.0000], dtype=torch.float64)
    >>> eig.converged, eig.iterations
    (True, 3)
    """
    if accuracy not in ACCURACIES:
        raise UserError(f"accuracy: {accuracy!r} is not one of {', '.join(ACCURACIES)}")
    op = as_operator(op)
    n = op.shape[0]
    dtype, device = op.dtype, op.device
    k = max(1, min(k, n))
    max_iter = max(k, min(max_iter, n))
    # row j < m: the Lanczos vector q_j; row m: the next residual, normalized into q_m
    if (
        scratch is not None
        and scratch.shape[0] > max_iter
        and scratch.shape[1:] == (n,)
        and (scratch.dtype, scratch.device) == (dtype, device)
    ):
        basis = scratch[: max_iter + 1]
    else:
        basis = torch.empty(max_iter + 1, n, dtype=dtype, device=device)
    q0 = basis[0]  # warm/‖warm‖ + mix·start/‖start‖, or the random start alone; normalized
    if v0 is not None:
        start = _random(n, generator, dtype, device, out=basis[1])  # row 1 is free until the first product
        warm = v0.to(dtype=dtype, device=device)
        if warm.ndim == 2:
            warm = warm[:, 0] if warm.shape[1] == 1 else warm.sum(dim=1)
        torch.mul(warm, 1 / float(torch.linalg.vector_norm(warm)), out=q0)
        q0.add_(start, alpha=mix / float(torch.linalg.vector_norm(start)))
    else:
        _random(n, generator, dtype, device, out=q0)
    q0.div_(torch.linalg.vector_norm(q0))
    alphas: list[float] = []
    betas: list[float] = []
    values: torch.Tensor | None = None
    vecs: torch.Tensor | None = None
    resid: torch.Tensor | None = None
    errors: torch.Tensor | None = None
    converged = False
    m = 0
    eps = torch.finfo(dtype).eps
    omega: list[float] = [1.0]  # ω_{j,i} ≈ q_jᵀq_i for i ≤ j (`_omega_next`)
    omega_prev: list[float] = []
    for j in range(max_iter):
        q = basis[j]
        m = j + 1
        # r = H q_j − α_j q_j − β_{j−1} q_{j−1} in row m: the product written there, then one
        # pass over both earlier vectors
        r = basis[m]
        if hasattr(op, "matvec"):
            op.matvec(q, out=r)
        else:
            r.copy_(op @ q)
        alpha = float(torch.dot(r, q))
        coeffs = torch.tensor(betas[-1:] + [alpha], dtype=dtype, device=device)
        r.addmv_(basis[j + 1 - len(coeffs) : m].T, coeffs, alpha=-1)
        alphas.append(alpha)
        norm = torch.linalg.vector_norm(r)
        beta = float(norm)
        estimate = _omega_next(omega, omega_prev, alphas, betas, beta, eps)
        if beta > 0 and max(map(abs, estimate[:-1])) > math.sqrt(eps):
            norm, measured = _orthogonalize(basis, m)  # the estimate says: measure (and repair)
            beta = float(norm)
            estimate = [float(c) / beta for c in measured[:m]] + [1.0] if beta > 0 else estimate
        omega_prev, omega = omega, estimate
        values, vecs, resid, errors = _ritz(alphas, betas, beta, k)
        scale = max(abs(float(values[0])), torch.finfo(dtype).tiny)
        if m >= k and bool(((errors if accuracy == "value" else resid) <= tol * scale).all()):
            converged = True
            break
        if m == max_iter:
            break
        if beta <= 1e-10 * scale:  # invariant subspace: continue with a fresh direction
            _random(n, generator, dtype, device, out=basis[m])
            norm, measured = _orthogonalize(basis, m)
            omega = [float(c) / float(norm) for c in measured[:m]] + [1.0]
            betas.append(0.0)
        else:
            betas.append(beta)
        basis[m].div_(norm)
    # the loop runs at least once (max_iter ≥ k ≥ 1), so the Ritz pairs exist
    assert values is not None and vecs is not None and resid is not None and errors is not None
    # Σ_j s_j q_j as [k, n] rows (a pass over the basis in its own layout), returned as [n, k]
    coords = vecs.T.to(dtype=dtype, device=device)
    if out is not None and out.shape == (coords.shape[0], n) and (out.dtype, out.device) == (dtype, device):
        vectors = torch.mm(coords, basis[:m], out=out).T
    else:
        vectors = (coords @ basis[:m]).T
    return Eigen(values, vectors, resid, m, converged, errors)


def _omega_next(
    omega: list[float],
    omega_prev: list[float],
    alphas: list[float],
    betas: list[float],
    beta: float,
    eps: float,
) -> list[float]:
    """Simon's (1984) estimate of the orthogonality of the next Lanczos vector, ω_{j+1,i} ≈
    q_{j+1}ᵀq_i for i ≤ j + 1, from ω_{j,·} (`omega`), ω_{j−1,·} (`omega_prev`), the α's, the
    β's so far and β_j = `beta` — scalars only, no pass over the basis. Taking q_iᵀ of
    H q_j = β_{j−1}q_{j−1} + α_j q_j + β_j q_{j+1} + f_j and q_jᵀ of the same relation for q_i,
    and subtracting (H is symmetric):

        β_j ω_{j+1,i} = β_i ω_{j,i+1} + (α_i − α_j) ω_{j,i} + β_{i−1} ω_{j,i−1} − β_{j−1} ω_{j−1,i}
                        + q_jᵀf_i − q_iᵀf_j,

    with the rounding terms taken as `ROUNDING`·ε·‖T‖ (‖T‖ bounded by Gershgorin) in the
    direction that grows |ω| (Simon 1984, "The Lanczos algorithm with partial
    reorthogonalization", Math. Comp. 42). Loss of
    orthogonality shows here as it happens (it grows as a Ritz value converges), so the basis
    is measured only when the estimate passes √ε."""
    j = len(alphas) - 1
    if beta <= 0:
        return [0.0] * (j + 1) + [1.0]
    alpha_j = alphas[j]
    beta_prev = betas[j - 1] if j >= 1 else 0.0
    norm_t = max(abs(a) for a in alphas) + 2 * max(betas + [beta])  # ≥ ‖T_{j+1}‖ (Gershgorin)
    rounding = ROUNDING * eps * norm_t
    out = []
    for i in range(j):
        total = (alphas[i] - alpha_j) * omega[i] + betas[i] * omega[i + 1] - beta_prev * omega_prev[i]
        if i >= 1:
            total += betas[i - 1] * omega[i - 1]
        out.append((total + math.copysign(rounding, total)) / beta)
    out.append((beta_prev * abs(omega[j - 1] if j >= 1 else 0.0) + rounding) / beta)  # ω_{j+1,j}
    return out + [1.0]


def _orthogonalize(basis: torch.Tensor, m: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Orthogonalize row m of `basis` (in place) against its orthonormal rows 0 … m−1 as far as
    Lanczos needs, and return its norm and its inner products with rows 0 … m−1 afterwards:
    when every |q_iᵀw| ≤ √ε‖w‖ (ε the dtype's precision) w is left as it is, since
    semi-orthogonal Lanczos vectors give Ritz values as accurate as orthogonal ones (Simon 1984);
    otherwise its projection is removed by classical Gram–Schmidt, twice if the first pass took
    more than a third of w's norm (Daniel, Gragg, Kaufman & Stewart 1976). One product with
    rows 0 … m gives the check and ‖w‖² together."""
    tol = math.sqrt(torch.finfo(basis.dtype).eps)
    w = basis[m]
    c = basis[: m + 1] @ w  # q_iᵀw for i < m, then wᵀw
    norm = c[m].clamp(min=0).sqrt()
    for _ in range(2):
        if float(c[:m].abs().max()) <= tol * float(norm):
            break
        w.addmv_(basis[:m].T, c[:m], alpha=-1)
        before = norm
        c = basis[: m + 1] @ w
        norm = c[m].clamp(min=0).sqrt()
        if norm >= before * (2 / 3):
            break
    return norm, c[:m].cpu()


def _ritz(
    alphas: list[float], betas: list[float], beta_last: float, k: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Top-k Ritz values, their coordinates in the Lanczos basis, residuals r = β_m|e_mᵀ y| and
    estimated errors min(r, r²/δ), δ the distance to the nearest other Ritz value."""
    m = len(alphas)
    t = torch.diag(torch.tensor(alphas, dtype=torch.float64))
    if m > 1:
        off = torch.tensor(betas[: m - 1], dtype=torch.float64)
        t = t + torch.diag(off, 1) + torch.diag(off, -1)
    theta, s = torch.linalg.eigh(t)
    order = torch.argsort(theta, descending=True)
    top = order[: min(k, m)]
    resid = beta_last * s[-1, top].abs()
    errors = resid.clone()
    if m > 1:
        gaps = (theta[top, None] - theta[None, :]).abs()
        gaps[torch.arange(len(top)), top] = math.inf  # a value's distance to itself
        errors = torch.minimum(resid, resid**2 / gaps.min(dim=1).values)
    return theta[top], s[:, top], resid, errors


@dataclass
class Trace:
    """What `hutchinson` returns: the estimate (1/m) Σ_j z_jᵀHz_j, its standard error s/√m (∞ for
    one probe), the number of probes m and the samples z_jᵀHz_j."""

    estimate: float
    stderr: float  # s/√m, s the sample standard deviation of zᵀHz
    probes: int
    samples: torch.Tensor  # [m] float64 zᵀHz


def hutchinson(op, probes: int = 32, *, generator: torch.Generator | None = None) -> Trace:  # noqa: ANN001
    """Hutchinson's (1989) estimator of tr H with Rademacher probes: unbiased, with variance
    2(‖H‖_F² − Σ H_ii²)/m; the standard error reported is the sample one, s/√m.

    tr H ≈ (1/m) Σ_j z_jᵀHz_j with z_j uniform on {−1, 1}ⁿ (Hutchinson 1989, "A stochastic
    estimator of the trace of the influence matrix for Laplacian smoothing splines"). Only the
    off-diagonal entries add variance, so a diagonal H is estimated exactly:

    >>> import torch
    >>> from sgdlab.curvature import hutchinson
    >>> h = torch.tensor([[2.0, 1.0], [1.0, 2.0]], dtype=torch.float64)
    >>> t = hutchinson(h, probes=100, generator=torch.Generator().manual_seed(0))
    >>> t.estimate, round(t.stderr, 3)  # tr H = 4: each sample is 4 ± 2
    (3.64, 0.198)
    >>> hutchinson(torch.diag(torch.tensor([2.0, 0.5])), probes=3).estimate
    2.5
    """
    op = as_operator(op)
    if probes < 1:
        raise UserError(f"probes: {probes} must be ≥ 1")
    n = op.shape[0]
    samples = torch.empty(probes, dtype=torch.float64, device=op.device)
    for j in range(probes):  # z drawn on the CPU: the same probes on every device
        z = (torch.randint(0, 2, (n,), generator=generator, device="cpu") * 2 - 1).to(op.dtype).to(op.device)
        samples[j] = torch.dot((op @ z).double(), z.double())
    samples = samples.cpu()  # one host read for all probes
    stderr = float(samples.std(unbiased=True) / math.sqrt(probes)) if probes > 1 else math.inf
    return Trace(float(samples.mean()), stderr, probes, samples)

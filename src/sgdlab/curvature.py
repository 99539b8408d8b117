"""Curvature of the loss: the Hessian as a linear operator, and estimators that take any
operator (or a dense matrix).

Operator (curvlinops' shape): `HessianOperator(model, loss, x, y)` is H = ∇²_θ L(θ) of the mean
loss L(θ) = (1/n) Σ_i ℓ(f_θ(x_i), y_i) on a *fixed* evaluation set (x, y), at the model's current
θ (or a given one), optionally restricted to one block of parameters (H_BB, e.g. one layer).
`op @ v` is a Hessian-vector product computed on demand, one of two ways:

  double-backward   one forward and first backward with create_graph on *our own* copy of θ,
                    built when the operator is made and reused by every product (cheap
                    products; memory for the graph of the evaluation set)
  jvp               forward-over-reverse, `torch.func.jvp(torch.func.grad(L), (θ,), (v,))`:
                    nothing is kept between products (lower memory, a forward+backward each)

Neither touches the training graph, the parameters' `.grad`, buffers or RNG streams: the
training backward never needs `create_graph`.

Batch norm and dropout: the operator evaluates the model in eval mode — dropout off, batch
norm with its running statistics — so L is a function of θ alone (with batch statistics it
would also depend on how the evaluation set is split into chunks). The running statistics
are the buffers' values when the operator is made.

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

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import nn
from torch.func import functional_call, grad, jvp

from .errors import UserError
from .losses import Loss
from .modes import eval_mode

METHODS = ("double-backward", "jvp")
ACCURACIES = ("residual", "value")


# ---------------------------------------------------------------------------------------
# Operators


class MatrixOperator:
    """A dense symmetric matrix as an operator (what the estimators are tested on)."""

    def __init__(self, matrix: torch.Tensor):
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
            raise ValueError(f"expected a square matrix, got shape {tuple(matrix.shape)}")
        self.matrix = matrix
        self.shape = tuple(matrix.shape)
        self.dtype, self.device = matrix.dtype, matrix.device
        self.products = 0

    def __matmul__(self, v: torch.Tensor) -> torch.Tensor:
        self.products += 1 if v.ndim == 1 else v.shape[1]
        return self.matrix @ v


def as_operator(op) -> "HessianOperator | MatrixOperator":  # noqa: ANN001
    """`op` as an operator the estimators take: a dense (symmetric) tensor is wrapped in a
    MatrixOperator; anything else with `@`, `shape`, `dtype` and `device` (a HessianOperator)
    is used as it is."""
    return MatrixOperator(op) if isinstance(op, torch.Tensor) else op


def block_names(model: nn.Module, block: str | Sequence[str] | None) -> list[str]:
    """The trainable parameter names a block selects: None or "" → all; a string → the names
    equal to it or starting with it followed by "." (a module: "classifier.0"); a list → those."""
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    if block is None or block == "":
        return names
    if isinstance(block, str):
        chosen = [n for n in names if n == block or n.startswith(block + ".")]
    else:
        unknown = [b for b in block if b not in names]
        if unknown:
            raise UserError(f"block: {unknown} are not trainable parameters (known: {', '.join(names)})")
        chosen = [n for n in names if n in block]
    if not chosen:
        raise UserError(f"block: {block!r} selects no trainable parameter (known: {', '.join(names)})")
    return chosen


class HessianOperator:
    """H = ∇²L(θ) on the fixed set (x, y), restricted to the parameters of `block`; see the
    module docstring. `theta` (flat, all trainable parameters in `model.parameters()` order)
    defaults to the model's current parameters. The evaluation set is processed in pieces of
    `chunk` samples (the loss is their size-weighted mean).

    Linear least squares, f(x) = wᵀx with L(w) = (1/n) Σ_i ½(wᵀx_i − y_i)², has H = XᵀX/n
    whatever w is; for X = diag(2, 1), H = diag(2, ½):

    >>> import torch
    >>> from torch import nn
    >>> from sgdlab.curvature import HessianOperator, hutchinson, lanczos
    >>> from sgdlab.losses import get_loss
    >>> model = nn.Linear(2, 1, bias=False)
    >>> x, y = torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.zeros(2)
    >>> op = HessianOperator(model, get_loss("squared", "real"), x, y)
    >>> op.dense()
    tensor([[2.0000, 0.0000],
            [0.0000, 0.5000]])
    >>> op @ torch.tensor([1.0, 1.0])
    tensor([2.0000, 0.5000])
    >>> eig = lanczos(op, k=1, generator=torch.Generator().manual_seed(0))
    >>> float(eig.values[0]), eig.converged
    (2.0, True)
    >>> hutchinson(op, probes=4, generator=torch.Generator().manual_seed(0)).estimate  # exact: H is diagonal
    2.5
    """

    def __init__(
        self,
        model: nn.Module,
        loss: Loss | Callable,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        theta: torch.Tensor | None = None,
        block: str | Sequence[str] | None = None,
        method: str = "double-backward",
        chunk: int | None = None,
    ):
        if method not in METHODS:
            raise UserError(f"method: {method!r} is not one of {', '.join(METHODS)}")
        self.model, self.loss, self.method = model, loss, method
        self.names = block_names(model, block)
        params = {n: p for n, p in model.named_parameters() if p.requires_grad}
        if theta is not None:
            flat = theta.detach()
            offset, values = 0, {}
            for n, p in params.items():
                values[n] = flat[offset : offset + p.numel()].view_as(p)
                offset += p.numel()
            if offset != flat.numel():
                raise ValueError(f"θ has {flat.numel()} entries, the model {offset}")
        else:
            values = {n: p.detach() for n, p in params.items()}
        self.fixed = {n: v for n, v in values.items() if n not in self.names}
        self.shapes = [values[n].shape for n in self.names]
        self.sizes = [math.prod(shape) for shape in self.shapes]
        self.theta = torch.cat([values[n].reshape(-1) for n in self.names]).clone()
        self.buffers = {n: b.detach().clone() for n, b in model.named_buffers()}
        self.n = self.theta.numel()
        self.shape = (self.n, self.n)
        self.dtype, self.device = self.theta.dtype, self.theta.device
        step = chunk or len(x)
        self.pieces = [(x[i : i + step], y[i : i + step]) for i in range(0, len(x), step)]
        self.count = len(x)
        self.products = 0
        self._grads: list[list[torch.Tensor]] | None = None
        self._leaves: list[torch.Tensor] | None = None
        if method == "double-backward":
            self._build_graph()

    def loss_at(self, theta_block: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """L(θ) on one piece, with the block's parameters read from `theta_block`."""
        return self._loss_of(dict(zip(self.names, self._split(theta_block), strict=True)), x, y)

    def _split(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """A flat block vector as views shaped like the block's parameters."""
        return [part.view(shape) for part, shape in zip(flat.split(self.sizes), self.shapes, strict=True)]

    def _loss_of(self, block: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = functional_call(self.model, {**self.fixed, **block, **self.buffers}, (x,))
        return self.loss(out, y)

    def value(self) -> float:
        """L(θ) on the whole evaluation set."""
        with torch.no_grad(), eval_mode(self.model):
            return float(sum(self.loss_at(self.theta, x, y) * (len(x) / self.count) for x, y in self.pieces))

    def gradient(self) -> torch.Tensor:
        """∇L(θ) restricted to the block."""
        with eval_mode(self.model):
            return sum(grad(self.loss_at)(self.theta, x, y) * (len(x) / self.count) for x, y in self.pieces)

    def _build_graph(self) -> None:
        # One leaf per parameter, not one flat leaf sliced into views: the backward of a slice
        # scatters into a zero vector of all P entries, once per parameter tensor, which made
        # each product on an MLP (8 tensors, P ≈ 1.3M) half zero-filling.
        self._leaves = [part.detach().clone().requires_grad_(True) for part in self._split(self.theta)]
        self._grads = []
        block = dict(zip(self.names, self._leaves, strict=True))
        with torch.enable_grad(), eval_mode(self.model):
            for x, y in self.pieces:
                value = self._loss_of(block, x, y) * (len(x) / self.count)
                self._grads.append(list(torch.autograd.grad(value, self._leaves, create_graph=True)))

    def _hvp(self, v: torch.Tensor) -> torch.Tensor:
        if self.method == "double-backward":
            if self._grads is None or self._leaves is None:
                raise RuntimeError("the operator was released: its graph is gone")
            parts = self._split(v)
            total: list[torch.Tensor] | None = None
            for g in self._grads:
                hv = torch.autograd.grad(g, self._leaves, parts, retain_graph=True)
                total = list(hv) if total is None else [a + b for a, b in zip(total, hv, strict=True)]
            if total is None:
                raise ValueError("the evaluation set is empty")
            return torch.cat([t.reshape(-1) for t in total]).detach()
        out: torch.Tensor | None = None
        block = dict(zip(self.names, self._split(self.theta), strict=True))
        tangent = dict(zip(self.names, self._split(v), strict=True))
        with eval_mode(self.model):
            for x, y in self.pieces:
                # jvp calls the function at once: binding x, y as defaults only makes that explicit
                hv = jvp(lambda b, x=x, y=y: grad(self._loss_of)(b, x, y), (block,), (tangent,))[1]
                flat = torch.cat([hv[name].reshape(-1) for name in self.names]) * (len(x) / self.count)
                out = flat if out is None else out + flat
        if out is None:
            raise ValueError("the evaluation set is empty")
        return out

    def __matmul__(self, v: torch.Tensor) -> torch.Tensor:
        """H v for a vector [n], or H V column by column for a matrix [n, m]."""
        if v.shape[0] != self.n:
            raise ValueError(f"the operator is {self.n}×{self.n}, the vector has {v.shape[0]} entries")
        v = v.to(self.dtype)
        if v.ndim == 1:
            self.products += 1
            return self._hvp(v)
        return torch.stack([self @ v[:, j] for j in range(v.shape[1])], dim=1)

    def dense(self) -> torch.Tensor:
        """The n×n matrix, column by column (for small blocks and tests)."""
        return self @ torch.eye(self.n, dtype=self.dtype, device=self.device)

    def release(self) -> None:
        """Free the retained graph (double-backward); the operator cannot be used afterwards."""
        self._grads, self._leaves = None, None


# ---------------------------------------------------------------------------------------
# Estimators


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


def _unit(v: torch.Tensor) -> torch.Tensor:
    return v / torch.linalg.vector_norm(v)


def _random(n: int, generator: torch.Generator | None, dtype: torch.dtype, device) -> torch.Tensor:  # noqa: ANN001
    """N(0, I) drawn on the CPU (the same numbers on every device)."""
    return torch.randn(n, generator=generator, dtype=dtype, device="cpu").to(device)


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
) -> Eigen:
    """The k algebraically largest eigenpairs of the symmetric operator `op` (or dense matrix).

    Lanczos with reorthogonalization (every new vector is kept orthogonal to all earlier ones
    to within √ε, `_orthogonalize`, so the Ritz values carry no spurious copies). Stops after
    `max_iter` products or, with accuracy = "residual", when all k Ritz residuals r_i are
    ≤ tol·|θ_1| (values and vectors converged); with accuracy = "value", when the estimated
    errors min(r_i, r_i²/δ_i) of the k values are (δ_i the distance to the nearest other Ritz
    value; module docstring): `tol` is then the relative accuracy of the values, and the
    vectors are only about √tol accurate (their angle error is about r_i/δ_i). `v0`: a start
    vector, or [n, k] previous eigenvectors (their sum is used) — a warm start; `mix` of a
    random vector is added so a direction the previous vectors missed can still be found.
    Invariant subspaces (a zero β) are continued with a fresh random vector orthogonal to the
    basis.

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
    start = _random(n, generator, dtype, device)
    if v0 is not None:
        warm = v0.to(dtype=dtype, device=device)
        warm = warm.sum(dim=1) if warm.ndim == 2 else warm
        start = _unit(warm) + mix * _unit(start)
    basis = torch.empty(max_iter, n, dtype=dtype, device=device)  # row j: the Lanczos vector q_j
    torch.div(start, torch.linalg.vector_norm(start), out=basis[0])
    alphas: list[float] = []
    betas: list[float] = []
    values: torch.Tensor | None = None
    vecs: torch.Tensor | None = None
    resid: torch.Tensor | None = None
    errors: torch.Tensor | None = None
    converged = False
    m = 0
    for j in range(max_iter):
        q = basis[j]
        m = j + 1
        w = op @ q
        alpha = float(torch.dot(w, q))
        w = torch.add(w, q, alpha=-alpha)
        if j > 0:
            w.sub_(basis[j - 1], alpha=betas[-1])
        w, norm = _orthogonalize(w, basis[:m])
        beta = float(norm)
        alphas.append(alpha)
        values, vecs, resid, errors = _ritz(alphas, betas, beta, k)
        scale = max(abs(float(values[0])), torch.finfo(dtype).tiny)
        if m >= k and bool(((errors if accuracy == "value" else resid) <= tol * scale).all()):
            converged = True
            break
        if m == max_iter:
            break
        if beta <= 1e-10 * scale:  # invariant subspace: continue with a fresh direction
            w, norm = _orthogonalize(_random(n, generator, dtype, device), basis[:m])
            beta_next = 0.0
        else:
            beta_next = beta
        betas.append(beta_next)
        torch.div(w, norm, out=basis[j + 1])
    # the loop runs at least once (max_iter ≥ k ≥ 1), so the Ritz pairs exist
    assert values is not None and vecs is not None and resid is not None and errors is not None
    vectors = basis[:m].T @ vecs.to(dtype)
    return Eigen(values, vectors, resid, m, converged, errors)


def _orthogonalize(w: torch.Tensor, basis: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The vector w, orthogonalized against the orthonormal rows of `basis` as far as Lanczos
    needs, and its norm: when every |q_iᵀw| ≤ √ε‖w‖ (ε the dtype's precision) w is left as it
    is, since semi-orthogonal Lanczos vectors give Ritz values as accurate as orthogonal ones
    (Simon 1984, "The Lanczos algorithm with partial reorthogonalization"); otherwise its
    projection is removed by classical Gram–Schmidt, twice if the first pass took more than a
    third of w's norm (Daniel, Gragg, Kaufman & Stewart 1976). Before a Ritz value converges
    the check alone is the rule: one pass over the basis where full reorthogonalization makes
    two, which on an MLP of 1.3M parameters cost as much as the Hessian-vector products."""
    tol = math.sqrt(torch.finfo(w.dtype).eps)
    norm = torch.linalg.vector_norm(w)
    for _ in range(2):
        c = basis @ w
        if float(c.abs().max()) <= tol * float(norm):
            break
        w = w - basis.T @ c
        before, norm = norm, torch.linalg.vector_norm(w)
        if norm >= before * (2 / 3):
            break
    return w, norm


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
    samples = torch.empty(probes, dtype=torch.float64)
    for j in range(probes):
        z = (torch.randint(0, 2, (n,), generator=generator, device="cpu") * 2 - 1).to(op.dtype).to(op.device)
        samples[j] = float(torch.dot((op @ z).double(), z.double()))
    stderr = float(samples.std(unbiased=True) / math.sqrt(probes)) if probes > 1 else math.inf
    return Trace(float(samples.mean()), stderr, probes, samples)


__all__ = [
    "ACCURACIES",
    "Eigen",
    "HessianOperator",
    "MatrixOperator",
    "METHODS",
    "Trace",
    "as_operator",
    "block_names",
    "hutchinson",
    "lanczos",
]

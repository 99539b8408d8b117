"""The Hessian as a linear operator: `HessianOperator` (H = ∇²L(θ) of a model's mean loss on a
fixed evaluation set, or a block of it), `FunctionHessian` (H = ∇²f(θ) of a plain function of a
flat vector) and `MatrixOperator` (a dense matrix); products H v on demand by double backward or
forward-over-reverse (sgdlab.curvature's docstring says how and what they assume)."""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

import torch
from torch import nn
from torch.func import functional_call, grad, jvp

from ..attention import math_attention
from ..errors import UserError
from ..losses import Loss
from ..modes import eval_mode
from .lean_graph import lean_first_derivatives

METHODS = ("double-backward", "jvp")
PIECE_BYTES = 16 << 20  # `piece_size`: the largest activation of a piece on the CPU


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

    def matvec(self, v: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """H v for a vector [n], written into `out` when given."""
        self.products += 1
        return torch.mv(self.matrix, v, out=out) if out is not None else self.matrix @ v


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


@contextmanager
def _differentiable(model: nn.Module) -> Iterator[None]:
    """Eval mode, and attention by its math kernel (the fused ones have no double backward or
    forward-mode AD; sgdlab.attention): where the operator evaluates and differentiates L."""
    with eval_mode(model), math_attention():
        yield


def piece_size(model: nn.Module, x: torch.Tensor, limit: int, budget: int = PIECE_BYTES) -> int:
    """Samples per piece (`chunk`) for a HessianOperator on `x`: at most `limit`, and on the CPU
    few enough that a piece's largest activation (the input or a module's output, from one
    sample's forward in eval mode) stays within `budget` bytes; the pieces then evened out.
    Why: glibc, unless told to keep freed memory (sgdlab.allocator, which the engine and attach
    apply; this was measured before it existed), hands blocks of tens of MB back to the OS when
    they are freed, so every product page-faulted such temporaries in afresh. On the 3C3D CNN's
    128 samples (activations of 25 MB) that was 18,800 faults, 12 % of each product; in pieces
    of 64 (13 MB), none. An MLP's
    activations are a few KB a sample: one piece, whose products are faster than smaller ones.
    Off the CPU a caching allocator keeps freed blocks: `limit`."""
    n = len(x)
    if x.device.type != "cpu" or n <= 1:
        return max(1, min(limit, n))
    sizes = [x[:1].nelement() * x.element_size()]

    def record(module: nn.Module, args: tuple, out: object) -> None:
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                sizes.append(t.nelement() * t.element_size())

    handles = [m.register_forward_hook(record) for m in model.modules()]
    try:
        with torch.no_grad(), _differentiable(model):
            model(x[:1])
    finally:
        for h in handles:
            h.remove()
    largest = max(1, min(limit, n, budget // max(sizes)))
    return math.ceil(n / math.ceil(n / largest))


class _ProductOperator:
    """An n×n symmetric operator defined by its products H v (`_hvp`), counted in `products`."""

    n: int
    dtype: torch.dtype
    device: torch.device
    products: int

    def _hvp(self, v: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """H v, written into `out` when given."""
        raise NotImplementedError

    def matvec(self, v: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """H v for a vector [n], written into `out` when given: Lanczos applies H again and again,
        and a fresh result vector costs its page faults (a fifth of a product on an MLP of 1.3M
        parameters)."""
        if v.shape[0] != self.n:
            raise ValueError(f"the operator is {self.n}×{self.n}, the vector has {v.shape[0]} entries")
        self.products += 1
        return self._hvp(v.to(self.dtype), out)

    def __matmul__(self, v: torch.Tensor) -> torch.Tensor:
        """H v for a vector [n], or H V column by column for a matrix [n, m]."""
        if v.ndim == 1:
            return self.matvec(v)
        return torch.stack([self.matvec(v[:, j]) for j in range(v.shape[1])], dim=1)

    def dense(self) -> torch.Tensor:
        """The n×n matrix, column by column (for small blocks and tests)."""
        return self @ torch.eye(self.n, dtype=self.dtype, device=self.device)


class HessianOperator(_ProductOperator):
    """H = ∇²L(θ) on the fixed set (x, y), restricted to the parameters of `block`; see the
    module docstring. `theta` (flat, all trainable parameters in `model.parameters()` order)
    defaults to the model's current parameters. The evaluation set is processed in pieces of
    `chunk` samples (the loss is their size-weighted mean). `out`: a flat tensor of the block's
    size (and θ's dtype and device) to hold the operator's copy of θ, for a caller that builds
    one operator after another (the `hessian` probe): a fresh copy of 1.3M entries costs its
    page faults.

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
        out: torch.Tensor | None = None,
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
        pieces = [values[n].reshape(-1) for n in self.names]
        size = sum(self.sizes)
        like = pieces[0]
        if out is not None and out.shape == (size,) and (out.dtype, out.device) == (like.dtype, like.device):
            self.theta = torch.cat(pieces, out=out)
        else:
            self.theta = torch.cat(pieces)  # a copy: the model may move on
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
        with torch.no_grad(), _differentiable(self.model):
            return float(sum(self.loss_at(self.theta, x, y) * (len(x) / self.count) for x, y in self.pieces))

    def gradient(self) -> torch.Tensor:
        """∇L(θ) restricted to the block."""
        with _differentiable(self.model):
            return sum(grad(self.loss_at)(self.theta, x, y) * (len(x) / self.count) for x, y in self.pieces)

    def _build_graph(self) -> None:
        # One leaf per parameter, not one flat leaf sliced into views: the backward of a slice
        # scatters into a zero vector of all P entries, once per parameter tensor, which made
        # each product on an MLP (8 tensors, P ≈ 1.3M) half zero-filling. The leaves are views
        # of `theta` (detached: separate leaves), which nothing writes to: no second copy of θ.
        self._leaves = [part.detach().requires_grad_(True) for part in self._split(self.theta)]
        self._grads = []
        block = dict(zip(self.names, self._leaves, strict=True))
        with torch.enable_grad(), _differentiable(self.model), lean_first_derivatives():
            for x, y in self.pieces:
                value = self._loss_of(block, x, y) * (len(x) / self.count)
                self._grads.append(list(torch.autograd.grad(value, self._leaves, create_graph=True)))

    def _hvp(self, v: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
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
            pieces = [t.reshape(-1) for t in total]
            return torch.cat(pieces, out=out) if out is not None else torch.cat(pieces).detach()
        product: torch.Tensor | None = None
        block = dict(zip(self.names, self._split(self.theta), strict=True))
        tangent = dict(zip(self.names, self._split(v), strict=True))
        with _differentiable(self.model):
            for x, y in self.pieces:
                # jvp calls the function at once: binding x, y as defaults only makes that explicit
                hv = jvp(lambda b, x=x, y=y: grad(self._loss_of)(b, x, y), (block,), (tangent,))[1]
                flat = torch.cat([hv[name].reshape(-1) for name in self.names]) * (len(x) / self.count)
                product = flat if product is None else product + flat
        if product is None:
            raise ValueError("the evaluation set is empty")
        return out.copy_(product) if out is not None else product

    def release(self) -> None:
        """Free the retained graph (double-backward); the operator cannot be used afterwards."""
        self._grads, self._leaves = None, None


class FunctionHessian(_ProductOperator):
    """H = ∇²f(θ) of a plain function f of one flat parameter vector (an analytic toy: no model,
    loss or data), at θ, as an operator the estimators take. `method` as for HessianOperator:
    "double-backward" keeps the graph of ∇f(θ) for cheap products, "jvp" keeps nothing.

    f(θ) = θ_1² + 3θ_1θ_2 + ½θ_2⁴ has H = [[2, 3], [3, 6θ_2²]]; at θ = (1, 1) its eigenvalues
    are 4 ± √13:

    >>> import torch
    >>> from sgdlab.curvature import FunctionHessian, lanczos
    >>> f = lambda t: t[0] ** 2 + 3 * t[0] * t[1] + 0.5 * t[1] ** 4
    >>> op = FunctionHessian(f, torch.tensor([1.0, 1.0], dtype=torch.float64))
    >>> op.dense()
    tensor([[2., 3.],
            [3., 6.]], dtype=torch.float64)
    >>> lanczos(op, k=2).values  # 4 + √13, 4 − √13
    tensor([7.6056, 0.3944], dtype=torch.float64)
    >>> op.value(), op.gradient()  # f and ∇f = (2θ_1 + 3θ_2, 3θ_1 + 2θ_2³)
    (4.5, tensor([5., 5.], dtype=torch.float64))
    """

    def __init__(
        self, f: Callable[[torch.Tensor], torch.Tensor], theta: torch.Tensor, method: str = "double-backward"
    ):
        if method not in METHODS:
            raise UserError(f"method: {method!r} is not one of {', '.join(METHODS)}")
        if theta.ndim != 1:
            raise UserError(f"theta: expected a flat vector, got shape {tuple(theta.shape)}")
        self.f, self.method = f, method
        self.theta = theta.detach().clone()
        self.n = self.theta.numel()
        self.shape = (self.n, self.n)
        self.dtype, self.device = self.theta.dtype, self.theta.device
        self.products = 0
        self._grad: torch.Tensor | None = None
        self._leaf: torch.Tensor | None = None
        if method == "double-backward":
            self._leaf = self.theta.clone().requires_grad_(True)
            with torch.enable_grad(), math_attention():
                (self._grad,) = torch.autograd.grad(self.f(self._leaf), self._leaf, create_graph=True)

    def value(self) -> float:
        """f(θ)."""
        with torch.no_grad(), math_attention():
            return float(self.f(self.theta))

    def gradient(self) -> torch.Tensor:
        """∇f(θ)."""
        with math_attention():
            return grad(self.f)(self.theta)

    def _hvp(self, v: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        if self.method == "double-backward":
            if self._grad is None or self._leaf is None:
                raise RuntimeError("the operator was released: its graph is gone")
            (hv,) = torch.autograd.grad(self._grad, self._leaf, v, retain_graph=True)
            hv = hv.detach()
        else:
            with math_attention():
                hv = jvp(grad(self.f), (self.theta,), (v,))[1]
        return out.copy_(hv) if out is not None else hv

    def release(self) -> None:
        """Free the retained graph (double-backward); the operator cannot be used afterwards."""
        self._grad, self._leaf = None, None

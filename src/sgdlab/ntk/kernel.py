"""The empirical neural tangent kernel Θ̂(X1, X2) of any PyTorch model (Jacot, Gabriel &
Hongler 2018, "Neural tangent kernel: convergence and generalization in neural networks";
Lee, Xiao, Schoenholz, Bahri, Novak, Sohl-Dickstein & Pennington 2019, "Wide neural networks
of any depth evolve as linear models under gradient descent"):

    Θ̂(x, x')_ab = Σ_p ∂f_a(x)/∂θ_p · A_p · ∂f_b(x')/∂θ_p  =  [J(x) A J(x')ᵀ]_ab

with J the Jacobian of the k outputs at θ and A = I (the NTK) or a diagonal preconditioner
(Θ_A of adaptive methods, Nonnenmacher, Reeb & Steinwart 2021). Two ways to compute it, one
choice made for you (`method="auto"`), overridable:

  jacobian  materialize J(X1) and J(X2) (per-sample reverse passes, vmapped) and contract
            them, parameter tensor by parameter tensor: one matrix product per tensor. The
            fastest when (N1 + N2)·k·P numbers fit the memory budget.
  products  bounded memory: a block of rows of J(X2) (vmapped reverse passes: vjps), then
            J(X1)·blockᵀ as forward-mode products (jvps along each row, vmapped, over a block
            of X1). Memory is set by the block sizes, chosen from the budget, not by N.
  auto      jacobian when its estimated peak fits `memory_budget`, products otherwise.

Not the per-pair NTK-vector-product formulation (a vjp/jvp for every pair (x_i, x_j), vmapped
over all pairs): its intermediates grow with N1·N2 and need orders of magnitude more memory.
When X2 is X1 (or None) the kernel is symmetric and products computes only the blocks on and
above the diagonal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Callable

import torch
from torch import nn
from torch.func import jvp, vmap

from ..errors import UserError
from .functional import Functional, Params, evaluating, functional, jacobian_rows

DEFAULT_BUDGET = 1 << 30  # bytes


class NtkMethod(str, Enum):
    """How `empirical_ntk` computes the kernel: "jacobian", "products" or "auto" (see the module)."""

    AUTO = "auto"
    JACOBIAN = "jacobian"
    PRODUCTS = "products"


@dataclass(frozen=True)
class KernelPlan:
    """What a call will do: the method and the block sizes, with the memory estimates behind
    the automatic choice (bytes)."""

    method: str
    rows: int  # inputs per vmapped block of Jacobian rows
    block1: int  # products: inputs of X1 per jvp block
    jacobian_bytes: int  # estimated peak of the jacobian method
    products_bytes: int  # estimated peak of the products method with these blocks
    budget: int


def plan_kernel(
    f: Functional,
    n1: int,
    n2: int,
    symmetric: bool,
    method: str = "auto",
    memory_budget: int = DEFAULT_BUDGET,
) -> KernelPlan:
    """Block sizes and the method for Θ̂ of `n1` × `n2` inputs within `memory_budget` bytes."""
    method = _method(method)
    s, k, p, a = f.itemsize, f.n_outputs, f.n_params, f.sample_activations
    row = k * p * s  # one input's Jacobian rows
    out = n1 * n2 * k * k * s
    stored = n1 + (0 if symmetric else n2)
    # jacobian: J itself, plus the vmap intermediates of one block of rows (measured ≈ 1/4 of
    # the block when one block holds everything; a block is copied in when there are several)
    rows = max(1, min(n1 + n2, memory_budget // (4 * row) or 1))
    single = max(n1, n2) <= rows
    jac = stored * row + (rows * row // 4 if single else rows * row * 5 // 4) + out
    # products: a block of `rows2` rows of J(X2), and jvps along its rows·k tangents; vmapped
    # jvps hold about 6 copies of their tangents whatever the number of inputs (measured on
    # MLPs), the activations grow with the inputs per jvp (`block1`: primal, tangent, temporary)
    # `rows2` leaves room for jvps over at least min(n1, 16) inputs at a time.
    act = 3 * k * a * s  # activations per (tangent row, input)
    free = max(memory_budget - out, 0)
    rows2 = max(1, min(n2, free // (8 * row + min(n1, 16) * act)))
    tangents = 7 * rows2 * row
    block1 = max(1, min(n1, max(free - tangents, 0) // (rows2 * act)))
    prod = tangents + block1 * rows2 * act + out
    if method == NtkMethod.AUTO:
        method = NtkMethod.JACOBIAN if jac <= memory_budget else NtkMethod.PRODUCTS
    return KernelPlan(
        method.value, rows if method == NtkMethod.JACOBIAN else rows2, block1, jac, prod, memory_budget
    )


def _method(method: str | NtkMethod) -> NtkMethod:
    try:
        return NtkMethod(method)
    except ValueError:
        raise UserError(
            f"ntk method: {method!r} is not one of {', '.join(m.value for m in NtkMethod)}"
        ) from None


def empirical_ntk(
    model: nn.Module,
    x1: torch.Tensor,
    x2: torch.Tensor | None = None,
    *,
    theta: torch.Tensor | None = None,
    method: str = "auto",
    memory_budget: int = DEFAULT_BUDGET,
    preconditioner: torch.Tensor | None = None,
    trace: bool = False,
) -> torch.Tensor:
    """Θ̂(X1, X2) at θ = `theta` (flat; default: the model's current parameters).

    Returns [N1, N2] for a model with one output (or with `trace=True`: Σ_a Θ̂_aa), else
    [N1, N2, k, k]. `x2=None` means X2 = X1. `preconditioner`: the diagonal of A (flat, like
    θ) for Θ_A = J A Jᵀ. The model is evaluated in eval mode; it is not changed.

    For a linear model f(x) = wᵀx the Jacobian is J(x) = xᵀ, so Θ̂(x, x') = ⟨x, x'⟩:

    >>> import torch
    >>> from torch import nn
    >>> from sgdlab.ntk import empirical_ntk
    >>> x = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> empirical_ntk(nn.Linear(2, 1, bias=False), x)
    tensor([[4., 0., 2.],
            [0., 1., 1.],
            [2., 1., 2.]])
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> net = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 3))
    >>> kernel = empirical_ntk(net, x)  # three outputs: one k×k block per pair of inputs
    >>> kernel.shape, torch.equal(kernel[0, 2], kernel[2, 0].T)  # Θ̂(x, x') = Θ̂(x', x)ᵀ
    (torch.Size([3, 3, 3, 3]), True)
    """
    symmetric = x2 is None or x2 is x1
    x2 = x1 if x2 is None else x2
    f = functional(model, theta, x1)
    plan = plan_kernel(f, len(x1), len(x2), symmetric, method, memory_budget)
    scale = f.split(preconditioner.to(f.theta)) if preconditioner is not None else None
    with evaluating(model):
        kernel = KERNELS[plan.method](f, x1, x2, symmetric, plan, scale)
    if symmetric:  # exactly symmetric, not just up to the rounding of two different sums
        kernel = (kernel + kernel.permute(1, 0, 3, 2)) / 2
    if trace:
        return kernel.diagonal(dim1=2, dim2=3).sum(-1)
    return kernel[:, :, 0, 0] if f.n_outputs == 1 else kernel


def _jacobian(f: Functional, x: torch.Tensor, rows: int) -> Params:
    """J(x) as {name: [n, k, *shape]}, computed `rows` inputs at a time into one buffer."""
    out: Params | None = None
    for i in range(0, len(x), rows):
        block = jacobian_rows(f, x[i : i + rows])
        if out is None:
            if len(x) <= rows:
                return block
            out = {name: b.new_empty(len(x), *b.shape[1:]) for name, b in block.items()}
        for name, b in block.items():
            out[name][i : i + len(b)] = b
    if out is None:
        raise ValueError("the Jacobian of no inputs")
    return out


def _by_jacobian(
    f: Functional, x1: torch.Tensor, x2: torch.Tensor, symmetric: bool, plan: KernelPlan, scale: Params | None
) -> torch.Tensor:
    n1, n2, k = len(x1), len(x2), f.n_outputs
    j1 = _jacobian(f, x1, plan.rows)
    j2 = j1 if symmetric else _jacobian(f, x2, plan.rows)
    out = torch.zeros(n1 * k, n2 * k, dtype=f.theta.dtype, device=f.theta.device)
    for name, a in j1.items():
        b = j2[name]
        if scale is not None:
            b = b * scale[name]
        out.addmm_(a.reshape(n1 * k, -1), b.reshape(n2 * k, -1).T)
    return out.view(n1, k, n2, k).permute(0, 2, 1, 3)


def _by_products(
    f: Functional, x1: torch.Tensor, x2: torch.Tensor, symmetric: bool, plan: KernelPlan, scale: Params | None
) -> torch.Tensor:
    n1, n2, k = len(x1), len(x2), f.n_outputs
    out = torch.empty(n1, n2, k, k, dtype=f.theta.dtype, device=f.theta.device)
    params = f.params()
    for s in range(0, n2, plan.rows):
        e = min(s + plan.rows, n2)
        rows = jacobian_rows(f, x2[s:e])  # vjps: rows of J(X2), {name: [c, k, *shape]}
        tangents = {
            name: (r * scale[name] if scale is not None else r).reshape(-1, *r.shape[2:])
            for name, r in rows.items()
        }
        del rows
        stop = e if symmetric else n1  # symmetric: blocks on and above the diagonal only
        for i in range(0, stop, plan.block1):
            xi = x1[i : min(i + plan.block1, stop)]
            products = _jvps(f, params, xi, tangents)  # [c·k, len(xi), k]
            block = products.view(e - s, k, len(xi), k).permute(2, 0, 3, 1)
            out[i : i + len(xi), s:e] = block
            if symmetric:
                out[s:e, i : i + len(xi)] = block.permute(1, 0, 3, 2)
    return out


def _jvps(f: Functional, params: Params, x: torch.Tensor, tangents: Params) -> torch.Tensor:
    """J(x)·t for every tangent t (rows of `tangents`): [n_tangents, len(x), k]."""

    def along(t: Params) -> torch.Tensor:
        return jvp(lambda p: f.fn(p, x), (params,), (t,))[1]

    return vmap(along)(tangents)


KERNELS: dict[str, Callable[..., torch.Tensor]] = {
    NtkMethod.JACOBIAN.value: _by_jacobian,
    NtkMethod.PRODUCTS.value: _by_products,
}


def jacobian_bytes(model: nn.Module, n: int, example: torch.Tensor) -> int:
    """Bytes of J for `n` inputs like `example` (k·P numbers per input)."""
    f = functional(model, None, example)
    return n * f.n_outputs * f.n_params * f.itemsize


def kernel_norm(kernel: torch.Tensor) -> float:
    """Frobenius norm in float64."""
    return float(torch.linalg.vector_norm(kernel.double()))


def relative_change(kernel: torch.Tensor, reference: torch.Tensor) -> float:
    """‖Θ̂ − Θ̂_ref‖_F / ‖Θ̂_ref‖_F."""
    ref = kernel_norm(reference)
    return kernel_norm(kernel.double() - reference.double()) / ref if ref > 0 else math.inf

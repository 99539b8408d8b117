"""Low-dimensional views of the loss landscape (Li, Xu, Taylor, Studer & Goldstein 2018,
"Visualizing the loss landscape of neural nets"): PCA directions of an optimization path, the
loss on the plane they span and update directions projected onto it; 1-D interpolation between
two parameter vectors; 2-D slices along random filter-normalized directions; the three-point
interpolation between three minimizers on and around the simplex; perturbation sharpness.

Everything works on flat parameter vectors and evaluates many parameter vectors at once with
torch.func (vmap over functional_call), so a grid needs no model copy per point. Evaluation is
in eval mode (BN running statistics, no dropout).

A plane, a line and a simplex are affine families θ_k = Σ_i c_ki·v_i. Where the model's first
layer is linear in its parameters (`first_layer_split`: an MLP, a CNN starting with a
convolution), its outputs on the data at every point are the same combination of its outputs
at the v_i, X·W1(a, b)ᵀ + b1(a, b) = Z0 + a·Z1 + b·Z2 on a plane: `span_losses` passes the data
through that layer once per v_i and runs only the later layers per point.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap
from torch.nn.utils import parametrize

from ..losses import Loss
from ..models.layers import NTKLinear
from ..params import in_format_of, named_views
from .context import eval_mode


@dataclass
class PathPCA:
    """The top principal directions of an optimization path (`path_pca`) and the path in their coordinates."""

    directions: torch.Tensor  # [2, P], orthonormal
    explained: torch.Tensor  # [2] explained variance ratio of each direction
    coords: torch.Tensor  # [K, 2] the path θ_k − θ_final projected on the directions


def path_pca(iterates: torch.Tensor, final: torch.Tensor, k: int = 2) -> PathPCA:
    """The top-k principal directions of the rows θ_k − θ_final (centered, as PCA is; the path
    is projected uncentered so θ_final sits at the origin). Through the K×K Gram matrix, so the
    cost is O(K²P) and memory O(KP) for K iterates of P parameters."""
    d = (iterates - final).double()
    centered = d - d.mean(dim=0)
    gram = centered @ centered.T
    values, vectors = torch.linalg.eigh(gram)
    order = torch.argsort(values, descending=True)
    values, vectors = values[order].clamp_min(0), vectors[:, order]
    total = values.sum()
    dirs = (vectors[:, :k].T @ centered) / values[:k].sqrt().clamp_min(1e-300)[:, None]
    explained = values[:k] / total if total > 0 else torch.zeros(k, dtype=values.dtype)
    return PathPCA(dirs.to(iterates.dtype), explained, (d @ dirs.T.double()).to(iterates.dtype))


def _batched_loss(
    model: nn.Module,
    loss: Loss,
    x: torch.Tensor,
    y: torch.Tensor,
    data_chunk: int | None = None,
    match_format: bool = False,
):
    """θ ↦ L(θ) on (x, y), in pieces of `data_chunk` samples (the size-weighted mean of the
    pieces' mean losses: the whole set's mean loss for a mean-reduced loss). `match_format`:
    give each parameter the model's memory format (not under vmap)."""
    buffers = dict(model.named_buffers())
    params = dict(model.named_parameters())
    step = data_chunk or len(x)
    pieces = [(x[i : i + step], y[i : i + step]) for i in range(0, len(x), step)]

    def loss_at(theta: torch.Tensor) -> torch.Tensor:
        views = named_views(model, theta)
        if match_format:
            views = {n: in_format_of(v, params[n]) for n, v in views.items()}
        state = {**views, **buffers}
        total = None
        for xp, yp in pieces:
            value = loss(functional_call(model, state, (xp,)), yp) * (len(xp) / len(x))
            total = value if total is None else total + value
        if total is None:
            raise ValueError("no samples to evaluate the loss on")
        return total

    return loss_at


@torch.no_grad()
def losses_at(
    model: nn.Module,
    loss: Loss,
    x: torch.Tensor,
    y: torch.Tensor,
    thetas: Callable[[int, int], torch.Tensor],
    count: int,
    chunk: int = 16,
    data_chunk: int | None = None,
) -> torch.Tensor:
    """[L(θ_0), …, L(θ_{count−1})]: `thetas(start, stop)` returns the rows θ_start … θ_{stop−1}
    ([stop − start, P]), made `chunk` at a time and evaluated by one vmapped forward each, so
    no model copy per point and at most `chunk` parameter vectors in memory. Eval mode.

    Batching pays where one point's forward is cheap (per-point overhead dominates). Where it
    is compute-bound it cannot cut the arithmetic, and on a CPU vmap over convolution weights
    runs as a grouped convolution several times slower than separate ones: `chunk=1` then
    evaluates point by point through functional_call, without vmap (benchmarks/landscape_grid.py)."""
    f = (
        _batched_loss(model, loss, x, y, data_chunk, match_format=True)
        if chunk == 1
        else vmap(_batched_loss(model, loss, x, y, data_chunk))
    )
    out = []
    with eval_mode(model):
        for start in range(0, count, chunk):
            rows = thetas(start, min(start + chunk, count))
            out.append(f(rows[0])[None] if chunk == 1 else f(rows))
    return torch.cat(out) if out else torch.empty(0)


# Modules whose output is linear in their parameters jointly, f(x; λu + μv) = λ·f(x; u) + μ·f(x; v):
# W x + b, a convolution with bias, the NTK layer (σ/√n)·W x + σ·b. Exact types, since a subclass
# may override forward.
PARAMETER_LINEAR = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, NTKLinear)


@dataclass
class FirstLayerSplit:
    """A model read as f = rest ∘ first ∘ prefix (`first_layer_split`): `prefix` has no
    parameters or buffers, so its output is the same at every θ; `first` is linear in its
    parameters, all of which are in θ; `rest` holds everything after it."""

    model: nn.Module
    prefix: list[nn.Module]
    first: nn.Module
    rest: nn.Sequential
    first_params: list[tuple[str, int, torch.Size]]  # (name in `first`, offset in θ, shape)
    rest_params: list[tuple[str, int, torch.Size]]  # (name in `rest`, offset in θ, shape); trainable only

    def first_output(self, h: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        """first(h) with its parameters read from the flat θ."""
        state = {
            name: in_format_of(theta[o : o + shape.numel()].view(shape), getattr(self.first, name))
            for name, o, shape in self.first_params
        }
        return functional_call(self.first, state, (h,))

    def first_outputs(self, x: torch.Tensor, basis: torch.Tensor) -> FirstOutputs:
        """Z_i = first(prefix(x); v_i) for the rows v_i of `basis`."""
        h = x
        for module in self.prefix:
            h = module(h)
        return FirstOutputs.of([self.first_output(h, v) for v in basis])

    def output_bytes_per_sample(self, x: torch.Tensor) -> int:
        """The memory one sample's first-layer output takes."""
        h = x[:1]
        for module in self.prefix:
            h = module(h)
        one = self.first(h)
        return one.numel() * one.element_size()

    def fan_in(self) -> int:
        """Multiply-adds per output entry of the first layer: n_in, or c_in·k·k for a conv."""
        return self.first_params[0][2][1:].numel()

    def rest_part(self, theta: torch.Tensor) -> torch.Tensor:
        """The entries of θ (the last axis of `theta`) that are the rest's parameters, in order."""
        parts = [theta[..., o : o + shape.numel()] for _, o, shape in self.rest_params]
        return torch.cat(parts, dim=-1) if parts else theta[..., :0]


@dataclass
class FirstOutputs:
    """First-layer outputs Z_1 … Z_m stored as one contiguous [m, …] block in the memory order
    the layer produced (channels-last stays channels-last: a convolution fed another layout
    runs several times slower), so that Σ_i c_ki·Z_i for K points is one [K, m] × [m, …]
    product."""

    block: torch.Tensor  # [m, *the output's dimensions in memory order], contiguous
    restore: list[int]  # the permutation of [K, …] back to the output's logical order

    @staticmethod
    def of(outputs: list[torch.Tensor]) -> FirstOutputs:
        """The outputs (all of one shape and layout) stacked in their memory order."""
        strides = outputs[0].stride()
        order = sorted(range(len(strides)), key=lambda d: -strides[d])
        block = torch.stack([z.permute(order) for z in outputs])
        return FirstOutputs(block, [0] + [1 + order.index(d) for d in range(len(order))])

    def combine(self, coeffs: torch.Tensor, work: torch.Tensor) -> torch.Tensor:
        """[Σ_i c_ki·Z_i for each row c_k of `coeffs` [K, m]]: [K, *the output's shape], written
        into the rows of `work` (reused from block to block: fresh memory for each product
        costs page faults, 8 ms for 16 points of the MLP 512-512 against 1 ms into warm rows)."""
        flat = torch.mm(coeffs, self.block.view(len(self.block), -1), out=work[: len(coeffs)])
        return flat.view(len(coeffs), *self.block.shape[1:]).permute(self.restore)


def _chain(model: nn.Module) -> list[nn.Module] | None:
    """The modules a nest of nn.Sequential applies one after another (None where a container
    has hooks, which the chain would skip)."""
    if type(model) is not nn.Sequential:
        return [model]
    if _hooked(model):
        return None
    out: list[nn.Module] = []
    for child in model:
        leaves = _chain(child)
        if leaves is None:
            return None
        out.extend(leaves)
    return out


def _hooked(module: nn.Module) -> bool:
    return bool(module._forward_hooks or module._forward_pre_hooks)


def _stateful(module: nn.Module) -> bool:
    return any(True for _ in module.parameters()) or any(True for _ in module.buffers())


def first_layer_split(model: nn.Module) -> FirstLayerSplit | None:
    """Detect, from the model's structure, that f(x; θ) = rest(first(prefix(x); θ_1); θ_rest)
    with `first` linear in θ_1: a (nested) nn.Sequential whose first module with parameters or
    buffers is an nn.Linear, a convolution or an NTK layer (exact type, no hooks, no
    parametrization) whose parameters are all trainable, with no parameter shared between
    modules after it or with it. None where that does not hold (then every point runs the
    whole model).

    On any affine family of parameter vectors θ_k = Σ_i c_ki·v_i (a plane θ0 + a·d1 + b·d2, a
    line, a simplex) the first layer's output is then first(h; θ_k) = Σ_i c_ki·first(h; v_i):
    a handful of passes over the data instead of one per point (`span_losses`)."""
    chain = _chain(model)
    if chain is None:
        return None
    offsets, offset = {}, 0
    for p in model.parameters():
        if p.requires_grad:
            offsets[id(p)] = offset
            offset += p.numel()
    stateful = [i for i, m in enumerate(chain) if _stateful(m)]
    if not stateful:
        return None
    k = stateful[0]
    prefix, first, rest = chain[:k], chain[k], nn.Sequential(*chain[k + 1 :])
    if (
        type(first) not in PARAMETER_LINEAR
        or any(_hooked(m) for m in [*prefix, first])
        or parametrize.is_parametrized(first)
        or any(True for _ in first.buffers())
    ):
        return None
    first_params = [(n, offsets.get(id(p), -1), p.shape) for n, p in first.named_parameters()]
    shared = {id(p) for p in first.parameters()} & {id(p) for p in rest.parameters()}
    tied = len(list(rest.named_parameters(remove_duplicate=False))) != len(list(rest.parameters()))
    if shared or tied or any(o < 0 for _, o, _ in first_params):
        return None
    rest_params = [(n, offsets[id(p)], p.shape) for n, p in rest.named_parameters() if id(p) in offsets]
    return FirstLayerSplit(model, prefix, first, rest, first_params, rest_params)


def split_that_pays(model: nn.Module, count: int) -> FirstLayerSplit | None:
    """`first_layer_split(model)` where combining `count` first-layer outputs (`count`
    multiply-adds an output entry) costs less than the layer (fan-in multiply-adds an entry),
    else None (the per-point path)."""
    split = first_layer_split(model)
    return split if split is not None and split.fan_in() > count else None


# The first-layer outputs of one piece of data, all m of them, are kept within this many bytes
# (a share of a last-level cache): every point re-reads them, and out of cache that costs about
# what recomputing the layer does (LeNet on 512 CIFAR-10 images, 3 × 55 MB: 9.6 ms a point to
# combine, 38 ms for the convolution; on 32 images, 3 × 3.3 MB: 0.25 ms against 0.92 ms).
FIRST_OUTPUTS_BUDGET = 8 << 20


def mean_losses(loss: Loss, outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """[L_1, …, L_K], L_k = loss(outputs[k], y), for the outputs [K, N, …] of K parameter vectors
    on the same data. Cross-entropy as F.cross_entropy on the layout [N, C, K], where the log-
    softmax over the C classes runs vectorized across the K points: over the last axis, with
    C = 10, PyTorch's CPU kernel costs ~15 ns an entry (4.4 ms of a 7 ms 21×21 grid of the small
    MLP), ~20× more than across an inner axis. The same formula, −log softmax(f)_y averaged
    over the N samples; other losses through vmap."""
    if loss.mean is F.cross_entropy and outputs.ndim == 3 and y.ndim == 1:
        targets = y[:, None].expand(-1, len(outputs))
        return F.cross_entropy(outputs.permute(1, 2, 0), targets, reduction="none").mean(0)
    return vmap(loss, in_dims=(0, None))(outputs, y)


def _rest_module_by_module(split: FirstLayerSplit) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """(θ_rest, z) ↦ rest(z) at θ_rest for one point, module by module: an nn.Linear without
    hooks as F.linear on views of θ_rest, a module without parameters called as it is, any
    other through functional_call on its own parameters (what functional_call on the whole
    rest computes, without re-binding every parameter of the chain at each point: ~7 % of a
    point of the MLP 512-512)."""
    entries: list[list[tuple[str, int, torch.Size]]] = [[] for _ in split.rest]
    offset = 0
    for name, _, shape in split.rest_params:
        index, _, inner = name.partition(".")
        entries[int(index)].append((inner, offset, shape))
        offset += shape.numel()
    params = [dict(m.named_parameters()) for m in split.rest]

    def run(theta: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        h = z
        for module, own, ps in zip(split.rest, entries, params, strict=True):
            views = {n: in_format_of(theta[o : o + s.numel()].view(s), ps[n]) for n, o, s in own}
            if type(module) is nn.Linear and not _hooked(module) and len(views) == len(ps):
                h = F.linear(h, views["weight"], views.get("bias"))
            elif views:
                h = functional_call(module, views, (h,))
            else:
                h = module(h)
        return h

    return run


# At chunk=1, the points whose first-layer outputs are combined by one [K, m] × [m, …] product,
# which reads the m outputs once for K points (a 1 MB output of the MLP 512-512: 266 µs for one
# point, 337 µs for 4; blocks of 16 measured no faster).
POINTS_PER_BLOCK = 4


@torch.no_grad()
def span_losses(
    split: FirstLayerSplit,
    loss: Loss,
    x: torch.Tensor,
    y: torch.Tensor,
    basis: torch.Tensor,
    coeffs: torch.Tensor,
    chunk: int = 16,
    data_chunk: int | None = None,
    budget: int = FIRST_OUTPUTS_BUDGET,
) -> torch.Tensor:
    """[L(θ_k)] for θ_k = Σ_i c_ki·v_i (rows of `coeffs` [K, m] times the rows of `basis`
    [m, P]), on a model split as rest ∘ first ∘ prefix (`first_layer_split`).

    Since `first` is linear in its parameters, its output at θ_k is Z_k = Σ_i c_ki·Z_i with
    Z_i = first(prefix(x); v_i): m passes of the data through the first layer in all, where a
    loop makes K (for a plane, X·W1(a, b)ᵀ + b1(a, b) = Z0 + a·Z1 + b·Z2). Only `rest` runs per
    point: `chunk` points per vmapped call, or at `chunk=1` one point at a time module by
    module (`_rest_module_by_module`; on a CPU a compute-bound layer runs faster so, as an
    addmm with its bias, where vmap makes a batched matmul and a separate bias pass), the Z_k
    and rest parameters of a block of points still made by one product each.

    The data go in pieces of at most `data_chunk` samples whose m first-layer outputs fit in
    `budget` bytes, each piece through all points before the next (its Z_i stay in cache);
    L(θ_k) is the size-weighted mean of the pieces' mean losses. Equal to the per-point loop
    up to float rounding (the sums run in another order). Eval mode."""
    if len(x) == 0:
        raise ValueError("no samples to evaluate the loss on")
    rest, buffers = split.rest, dict(split.rest.named_buffers())
    rest_basis = split.rest_part(basis)

    def rest_outputs(theta: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        state, offset = dict(buffers), 0
        for name, _, shape in split.rest_params:
            state[name] = theta[offset : offset + shape.numel()].view(shape)
            offset += shape.numel()
        return functional_call(rest, state, (z,))

    rest_at = _rest_module_by_module(split)

    def one_by_one(thetas: torch.Tensor, zs: torch.Tensor) -> torch.Tensor:
        return torch.stack([rest_at(t, zs[k]) for k, t in enumerate(thetas)])

    evaluate = one_by_one if chunk == 1 else vmap(rest_outputs)
    with eval_mode(split.model):
        per_sample = len(basis) * split.output_bytes_per_sample(x)
        step = max(1, min(data_chunk or len(x), budget // per_sample))
        block = max(1, min(chunk if chunk > 1 else POINTS_PER_BLOCK, len(coeffs)))
        theta_work = rest_basis.new_empty(block, rest_basis.shape[1])
        totals: list[torch.Tensor | None] = [None] * len(range(0, len(coeffs), block))
        for i in range(0, len(x), step):
            xp, yp, weight = x[i : i + step], y[i : i + step], min(step, len(x) - i) / len(x)
            firsts = split.first_outputs(xp, basis)
            work = firsts.block.new_empty(block, firsts.block[0].numel())
            for b, start in enumerate(range(0, len(coeffs), block)):
                c = coeffs[start : start + block]
                thetas = torch.mm(c, rest_basis, out=theta_work[: len(c)])
                value = mean_losses(loss, evaluate(thetas, firsts.combine(c, work)), yp) * weight
                before = totals[b]
                totals[b] = value if before is None else before + value
    return torch.cat([t for t in totals if t is not None]) if totals else torch.empty(0)


@torch.no_grad()
def loss_grid(
    model: nn.Module,
    loss: Loss,
    x: torch.Tensor,
    y: torch.Tensor,
    center: torch.Tensor,
    directions: torch.Tensor,
    alphas: torch.Tensor,
    betas: torch.Tensor,
    chunk: int = 16,
    data_chunk: int | None = None,
) -> torch.Tensor:
    """L(center + a·d1 + b·d2) on the grid alphas × betas ([len(alphas), len(betas)]), `chunk`
    parameter vectors per vmapped forward (`chunk=1`: point by point, no vmap). Where the
    model's first layer is linear in its parameters (`split_that_pays`), through
    `span_losses` with the basis (center, d1, d2) and coefficients (1, a, b): the first layer
    runs three times in all instead of once per point."""
    a, b = torch.meshgrid(alphas, betas, indexing="ij")
    coeffs = torch.stack([a.reshape(-1), b.reshape(-1)], dim=1).to(center)
    split = split_that_pays(model, 3)
    if split is not None:
        ones = torch.ones(len(coeffs), 1, dtype=coeffs.dtype, device=coeffs.device)
        basis = torch.cat([center[None], directions])
        values = span_losses(split, loss, x, y, basis, torch.cat([ones, coeffs], dim=1), chunk, data_chunk)
    else:
        values = losses_at(
            model, loss, x, y, lambda i, j: center + coeffs[i:j] @ directions, len(coeffs), chunk, data_chunk
        )
    return values.reshape(a.shape)


@torch.no_grad()
def interpolation(
    model: nn.Module,
    loss: Loss,
    x: torch.Tensor,
    y: torch.Tensor,
    theta_a: torch.Tensor,
    theta_b: torch.Tensor,
    alphas: torch.Tensor,
    chunk: int = 16,
    data_chunk: int | None = None,
) -> torch.Tensor:
    """1-D linear interpolation L((1 − α)θ_a + αθ_b) for each α (α outside [0, 1] extrapolates;
    Goodfellow, Vinyals & Saxe 2015, "Qualitatively characterizing neural network optimization
    problems").

    Least squares with X = diag(2, 1), y = 0: L(w) = w_1² + w_2²/4.

    >>> import torch
    >>> from torch import nn
    >>> from sgdlab.losses import get_loss
    >>> from sgdlab.probes.landscape import interpolation, loss_grid
    >>> model, loss = nn.Linear(2, 1, bias=False), get_loss("squared", "real")
    >>> x, y = torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.zeros(2)
    >>> interpolation(model, loss, x, y, torch.ones(2), torch.zeros(2), torch.tensor([0.0, 0.5, 1.0]))
    tensor([1.2500, 0.3125, 0.0000])
    >>> a, b = torch.tensor([-1.0, 0.0, 1.0]), torch.tensor([0.0, 2.0])
    >>> loss_grid(model, loss, x, y, torch.zeros(2), torch.eye(2), a, b)  # L(a·e_1 + b·e_2)
    tensor([[1., 2.],
            [0., 1.],
            [1., 2.]])
    """
    alphas = alphas.to(theta_a)
    step = theta_b - theta_a
    split = split_that_pays(model, 2)
    if split is not None:  # θ_a·1 + step·α: the first layer's outputs from two passes
        coeffs = torch.stack([torch.ones_like(alphas), alphas], dim=1)
        return span_losses(split, loss, x, y, torch.stack([theta_a, step]), coeffs, chunk, data_chunk)
    return losses_at(
        model, loss, x, y, lambda i, j: theta_a + alphas[i:j, None] * step, len(alphas), chunk, data_chunk
    )


def filter_normalized(
    model: nn.Module, theta: torch.Tensor, generator: torch.Generator | None = None, count: int | None = None
) -> torch.Tensor:
    """Random directions normalized filter by filter (Li, Xu, Taylor, Studer & Goldstein 2018,
    §4): d ~ N(0, I), then each filter d_{i,j} (one output unit: a row of a Linear weight, an
    output channel of a conv kernel) is rescaled to ‖θ_{i,j}‖·d_{i,j}/‖d_{i,j}‖. Parameters with
    at most one dimension (biases, batch-norm scales and shifts) get 0, as in their code.
    Drawn on the CPU from `generator`: [P], or [count, P] for `count` directions.

    >>> import torch
    >>> from torch import nn
    >>> from sgdlab.probes.landscape import filter_normalized
    >>> model = nn.Linear(3, 2)  # weight [2, 3]: two filters; the bias gets 0
    >>> theta = torch.tensor([3.0, 0.0, 4.0, 0.0, 1.0, 0.0, 7.0, 7.0])
    >>> d = filter_normalized(model, theta, torch.Generator().manual_seed(0))
    >>> d[:6].view(2, 3).norm(dim=1), d[6:]  # each filter's norm is its weights' (5 and 1)
    (tensor([5.0000, 1.0000]), tensor([0., 0.]))
    """
    rows = 1 if count is None else count
    d = torch.randn(rows, theta.numel(), generator=generator, dtype=theta.dtype).to(theta.device)
    offset = 0
    for p in model.parameters():
        if not p.requires_grad:
            continue
        n = p.numel()
        block = d[:, offset : offset + n]
        if p.ndim <= 1:
            block.zero_()
        else:
            w = theta[offset : offset + n].view(p.shape[0], -1)
            view = block.view(rows, p.shape[0], -1)
            norms = torch.linalg.vector_norm(view, dim=2, keepdim=True).clamp_min(1e-30)
            view.mul_(torch.linalg.vector_norm(w, dim=1)[None, :, None] / norms)
        offset += n
    return d[0] if count is None else d


@torch.no_grad()
def random_plane(
    model: nn.Module,
    loss: Loss,
    x: torch.Tensor,
    y: torch.Tensor,
    center: torch.Tensor,
    alphas: torch.Tensor,
    betas: torch.Tensor,
    generator: torch.Generator | None = None,
    chunk: int = 16,
    data_chunk: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A 2-D slice along two random filter-normalized directions (Li et al. 2018): the grid
    L(center + a·d1 + b·d2) and the directions [2, P]."""
    directions = filter_normalized(model, center, generator, count=2)
    return loss_grid(model, loss, x, y, center, directions, alphas, betas, chunk, data_chunk), directions


def simplex_lambdas(steps: int = 20, margin: float = 0.25) -> torch.Tensor:
    """Barycentric weights λ = (λ1, λ2, λ3), Σλ = 1, on a lattice of spacing 1/steps over the
    triangle enlarged by `margin` (every λ_i ≥ −margin): the simplex and a band around it.
    Float64 [G, 3]. The simplex's corners, the three minimizers, are the rows equal to e_1, e_2
    and e_3; with a margin, other rows have some λ_i = 1 as well (such as (1, ¼, −¼)), so a
    corner is found by matching the whole row, not one coordinate."""
    lo = -round(margin * steps)
    hi = steps - 2 * lo
    rows = [
        (i / steps, j / steps, 1 - (i + j) / steps)
        for i in range(lo, hi + 1)
        for j in range(lo, hi + 1)
        if (steps - i - j) >= lo
    ]
    return torch.tensor(rows, dtype=torch.float64)


@torch.no_grad()
def three_point_interpolation(
    model: nn.Module,
    loss: Loss,
    x: torch.Tensor,
    y: torch.Tensor,
    minimizers: torch.Tensor,
    lambdas: torch.Tensor,
    chunk: int = 16,
    data_chunk: int | None = None,
) -> torch.Tensor:
    """L(w_λ), w_λ = λ1·w1 + λ2·w2 + λ3·w3, for each row of `lambdas` ([G, 3], see
    `simplex_lambdas`); `minimizers` [3, P] are the three w_i (Zhang, Liao, Rakhlin, Miranda,
    Golowich & Poggio 2017, the three-point interpolation of their random-label experiment)."""
    lam = lambdas.to(minimizers)
    split = split_that_pays(model, len(minimizers))
    if split is not None:  # the first layer's outputs from one pass per minimizer
        return span_losses(split, loss, x, y, minimizers, lam, chunk, data_chunk)
    return losses_at(model, loss, x, y, lambda i, j: lam[i:j] @ minimizers, len(lam), chunk, data_chunk)


@dataclass
class Sharpness:
    """The loss increases of `perturbation_sharpness` under random filter-normalized perturbations."""

    base: float  # L(θ)
    mean_increase: float  # mean over directions of L(θ + r·d) − L(θ)
    max_increase: float
    increases: torch.Tensor  # [n]
    radius: float


@torch.no_grad()
def perturbation_sharpness(
    model: nn.Module,
    loss: Loss,
    x: torch.Tensor,
    y: torch.Tensor,
    theta: torch.Tensor,
    radius: float,
    n: int = 32,
    generator: torch.Generator | None = None,
    chunk: int = 16,
    data_chunk: int | None = None,
) -> Sharpness:
    """Loss increase under random filter-normalized perturbations of relative size `radius`:
    L(θ + r·d_j) − L(θ) for n directions d_j from `filter_normalized` (each filter moves by r
    times its own norm; Li et al. 2018's normalization, which makes the measure invariant to
    the rescalings ReLU nets allow, unlike a fixed-norm ball; Keskar et al. 2017 use the max)."""
    base = float(losses_at(model, loss, x, y, lambda i, j: theta[None], 1, 1, data_chunk)[0])
    dirs = filter_normalized(model, theta, generator, count=n)
    values = losses_at(model, loss, x, y, lambda i, j: theta + radius * dirs[i:j], n, chunk, data_chunk)
    inc = values.double() - base
    return Sharpness(base, float(inc.mean()), float(inc.max()), inc, radius)


def projected_gradients(
    model: nn.Module,
    loss: Loss,
    x: torch.Tensor,
    y: torch.Tensor,
    thetas: torch.Tensor,
    directions: torch.Tensor,
    chunk: int = 8,
) -> torch.Tensor:
    """The SGD update (minibatch gradient on x, y) at each row of `thetas`, projected on the
    directions: [K, 2]. Li et al.'s arrows; Appendix D.2 of “An optimization principle of deep learning?”."""
    g = vmap(grad(_batched_loss(model, loss, x, y)))
    out = []
    with eval_mode(model):
        for start in range(0, len(thetas), chunk):
            out.append(g(thetas[start : start + chunk]) @ directions.T)
    return torch.cat(out)

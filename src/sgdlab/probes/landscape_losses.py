"""The loss at many parameter vectors at once, for the landscape views (sgdlab.probes.landscape):
`losses_at` evaluates rows θ_k by vmapped functional calls (no model copy per point), and for an
affine family θ_k = Σ_i c_ki·v_i through a model whose first layer is linear in its parameters
(`first_layer_split`: an MLP, a CNN starting with a convolution) `span_losses` passes the data
through that layer once per v_i, X·W1(a, b)ᵀ + b1(a, b) = Z0 + a·Z1 + b·Z2 on a plane, and runs
only the later layers per point. Eval mode throughout (BN running statistics, no dropout)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap
from torch.nn.utils import parametrize

from ..losses import Loss
from ..models.layers import NTKLinear
from ..params import in_format_of, named_views
from .context import eval_mode


def batched_loss(
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
        batched_loss(model, loss, x, y, data_chunk, match_format=True)
        if chunk == 1
        else vmap(batched_loss(model, loss, x, y, data_chunk))
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

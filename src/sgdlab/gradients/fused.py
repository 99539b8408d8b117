"""The training step's convolution weight gradients summed from the per-sample ones (the
`gradients` probe's `fused` option).

Where the O(N·P) moments form each sample's weight gradient g_i = U_i δ_iᵀ anyway (the input
patches times the output gradients, `conv.conv_per_sample_chunks`), the batch gradient
S = Σ_i g_i that the step needs is one more sum over them, and PyTorch's weight-gradient
kernel — the same N·T·C·kh·kw·O multiply-adds again — need not run. Inside `fused_convs`
each given convolution computes through `_ConvWithMoments`: the same forward as the layer's
own, and a backward that takes the input gradient from PyTorch's kernel alone (its output
mask asks for nothing else: on CPU a convolution's backward costs as much for the bias alone
as for the weight) and the weight and bias gradients, ‖g_i‖² and ⟨g_i, S⟩ from the
per-sample products, while the output gradients are still in cache. On the 3C3D CNN this
takes the economy probes' every-step cost from 1.32× a plain step to 1.21×
(benchmarks/overhead.py, "economy @1" against "economy fused @1").

The price: S is summed in another order than PyTorch's kernel sums it, so the step's weight
gradients equal autograd's to float32 rounding (a few 1e-6 relative), not bit for bit, and
the trajectory drifts from the probes-off one at that level. A fused run is as deterministic
as any (the same run twice, or resumed, is bit-identical). Layers whose per-sample gradients
cost more than the identity's norms (few output positions), or would not fit the budget,
keep PyTorch's backward bit for bit; their moments are then taken in the backward from its S.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, cast

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from .conv import Workspace, conv2d_args, conv_per_sample_chunks
from .ghost import SUPPORTED
from .moments import conv_weight_moments, identity_norms_cheaper


@dataclass
class LayerMoments:
    """What a fused convolution's backward leaves for the probe: ‖g_i‖² and ⟨g_i, S⟩ of its
    weight and bias (float64 [N] each) in the units of ∂loss/∂output (scaled later, as
    `record_moments`), and how many times the layer ran in the step (the probe checks once)."""

    calls: int = 0
    sq: torch.Tensor | None = None
    rows: torch.Tensor | None = None


@dataclass
class _Call:
    layer: nn.Conv1d | nn.Conv2d
    sink: LayerMoments
    budget: int
    patches: Workspace
    products: Workspace


def fusable(layers: dict[str, nn.Module]) -> dict[str, nn.Module]:
    """The plain Conv1d/Conv2d layers among `layers` (one group, zero padding, as the identity
    takes them) whose weight is trainable, whose bias is trainable or absent (`fused_convs`
    gives their whole parameter gradient) and whose forward is their class's own (not
    replaced on the instance)."""
    return {
        name: m
        for name, m in layers.items()
        if type(m) in (nn.Conv1d, nn.Conv2d)
        and SUPPORTED[type(m)](m)
        and m.weight.requires_grad
        and (m.bias is None or m.bias.requires_grad)
        and "forward" not in m.__dict__
    }


@contextmanager
def fused_convs(
    layers: dict[str, nn.Module], budget: int, patches: Workspace, products: Workspace
) -> Iterator[dict[str, LayerMoments]]:
    """Within the context, each of `layers` (from `fusable`) runs through `_ConvWithMoments`
    where autograd records; yields {name: its LayerMoments}, filled when the backward reaches
    the layer. `patches` and `products`: the probe's scratch memory for the per-sample
    gradients' patches and for all samples' products. The layers' own forward comes back on
    exit."""
    sinks = {name: LayerMoments() for name in layers}
    try:
        for name, m in layers.items():
            call = _Call(cast(nn.Conv1d | nn.Conv2d, m), sinks[name], budget, patches, products)
            m.forward = _forward_with(call)
        yield sinks
    finally:
        for m in layers.values():
            m.__dict__.pop("forward", None)


def _forward_with(call: _Call):
    def forward(x: torch.Tensor) -> torch.Tensor:
        call.sink.calls += 1
        layer = call.layer
        if not torch.is_grad_enabled():
            return layer._conv_forward(x, layer.weight, layer.bias)
        return _ConvWithMoments.apply(x, layer.weight, layer.bias, call)

    return forward


class _ConvWithMoments(torch.autograd.Function):
    """A convolution whose backward also leaves the per-sample moments (module docstring)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: Any, call: _Call) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.call = call
        return call.layer._conv_forward(x, weight, bias)  # the layer's own forward, bit for bit

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, d: torch.Tensor) -> tuple[Any, ...]:
        x, weight = ctx.saved_tensors
        d = d.to(x.dtype)  # under autocast the output (and its gradient) may be float16
        call: _Call = ctx.call
        layer = call.layer
        bias = layer.bias is not None
        a, d2, kernel, stride, padding, dilation = conv2d_args(layer, x, d)
        n, o = a.shape[0], d2.shape[1]
        d_in = a.shape[1] * kernel[0] * kernel[1]
        products_bytes = n * (d_in + bias) * o * a.element_size()
        per_sample = not identity_norms_cheaper(a, d2, kernel, padding) and products_bytes <= call.budget
        mask = [ctx.needs_input_grad[0], not per_sample, bias and not per_sample]
        grad_input = grad_w = grad_b = None
        if any(mask):
            grad_input, grad_w, grad_b = torch.ops.aten.convolution_backward(
                d, x, weight, [o] if bias else None, layer.stride, layer.padding, layer.dilation,
                False, [0] * len(layer.stride), 1, mask,
            )  # fmt: skip
        if per_sample:
            total, call.sink.sq, call.sink.rows = _summed_products(
                a, d2, kernel, stride, padding, dilation, call, bias
            )
            grad_w = total[: d_in * o].view(d_in, o).T.reshape(weight.shape)
            grad_b = total[d_in * o :] if bias else None
        else:
            assert grad_w is not None  # asked for in the mask
            call.sink.sq, call.sink.rows = conv_weight_moments(
                layer, x, d, grad_w, call.budget, call.patches, bias=bias
            )
        return grad_input, grad_w, grad_b, None


def _summed_products(
    a: torch.Tensor, d: torch.Tensor, kernel, stride, padding, dilation, call: _Call, bias: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(S, ‖g_i‖², ⟨g_i, S⟩) from every sample's [weight | bias] gradient, formed a few samples
    at a time into `call.products` (all N kept: ⟨g_i, S⟩ needs S, the sum of all of them).
    A chunk's norms and its share of S are taken while it is in cache; the inner products
    are one matrix-vector product over all rows at the end. S is in the products' layout
    (input channel, kh, kw, output channel), then the bias's O entries. The arguments are
    a Conv2d call's, as `conv2d_args` gives them."""
    n, o = a.shape[0], d.shape[1]
    rows = a.shape[1] * kernel[0] * kernel[1] + bias
    out = call.products.take(a, (n, rows, o))[0]
    flat = out.view(n, rows * o)
    total, sq, ones = a.new_zeros(rows * o), a.new_empty(n), a.new_ones(n)
    chunks = conv_per_sample_chunks(
        a, d, kernel, stride, padding, dilation, out=out, work=call.patches, ones=bias
    )
    for i, g, _ in chunks:
        chunk = flat[i : i + g.shape[0]]
        sq[i : i + g.shape[0]] = torch.mm(chunk, chunk.T).diagonal()
        total.addmv_(chunk.T, ones[: g.shape[0]])
    return total, sq.double(), (flat @ total).double()

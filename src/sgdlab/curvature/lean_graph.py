"""First derivatives recorded for one more differentiation, without the work PyTorch's own
double-backward formulas waste: `lean_first_derivatives()` is where `HessianOperator` builds the
graph of ∇L(θ) that every Hessian-vector product H v = ∂⟨∇L, v⟩/∂θ differentiates again
(Pearlmutter 1994, "Fast exact multiplication by the Hessian").

Inside it, convolutions, ReLUs and 2-D max pooling run as autograd Functions whose backward is
written with differentiable operations, so that the second differentiation computes only what
the Hessian needs. PyTorch's built-in formulas do three things the Hessian does not need:

  convolution   the double backward (`_convolution_double_backward`) computes the gradient
                with respect to the layer's input whether or not that input needs one. For a
                first layer the input is the data, so this is a transposed convolution per
                product that is thrown away. It also computes the weight's part as a
                convolution whose kernel is the output's spatial size, which is slower than
                the weight-gradient kernel. Here the first derivatives are
                    g_x = convᵀ(g_out, W),   g_W = wgrad(x, g_out),   g_b = Σ g_out,
                each recorded on its own (`_ConvGrad`, a slot each), and their backward computes
                    conv(gg_x, W) → g_out,     wgrad(gg_x, g_out) → W,
                    conv(x, gg_W) → g_out,     convᵀ(g_out, gg_W) → x,
                each only when its input needs a gradient (`needs_input_grad`). The kernels are
                the same ones (aten's convolution and convolution_backward).
  ReLU          threshold_backward's derivative with respect to the activation is a tensor of
                zeros. ReLU is piecewise linear, so ReLU'' = 0 almost everywhere. Filling that
                tensor and adding it into the gradient costs a pass over the layer's largest
                activation twice per product. Here the first derivative g ⊙ 1[out > 0] reads
                the output as a constant.
  max pooling   the same: the derivative with respect to the pooled input is zeros. Here the
                pooled input is a constant of the first derivative, which scatters g to the
                maxima's indices.

The values are those of the built-in formulas: the same kernels, and zero terms left out rather
than computed. On the 3C3D CNN (CIFAR-10, 128 samples, one thread) a product takes 215 ms
against 295 ms on PyTorch's formulas (benchmarks/floors.py: hvp_ms, hvp_builtin_ms).

Anything else falls through to PyTorch unchanged: padding given as a string ("valid" aside), an
unbatched input, an in-place ReLU, pooling that returns its indices, other layers. The first
derivatives are differentiable once more, which is all a Hessian-vector product takes; a third
differentiation (create_graph through them) raises `ThirdDerivativeError` instead of returning
a value without the terms it would miss.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

aten = torch.ops.aten

# (stride, padding, dilation, transposed, output_padding, groups): aten.convolution's arguments
# after the tensors, and convolution_backward's before its output mask
ConvParams = tuple[list[int], list[int], list[int], bool, list[int], int]


class ThirdDerivativeError(RuntimeError):
    """A graph built under `lean_first_derivatives` was differentiated a third time."""


def _once_more() -> None:
    """Refuse create_graph through a second derivative: its terms are computed as constants."""
    if torch.is_grad_enabled():
        raise ThirdDerivativeError(
            "first derivatives built under sgdlab.curvature.lean_graph are differentiable once "
            "more, not twice: build the graph outside lean_first_derivatives() for third derivatives"
        )


class _ConvGrad(torch.autograd.Function):
    """One of a convolution's first derivatives as a function of g_out and the other operand:
    slot 0 is g_x = convᵀ(g_out, W) (the weight the operand, `x` giving the shape only), slot 1
    is g_W = wgrad(x, g_out) (x the operand, `weight` the shape). Since ⟨gg, g_slot⟩ =
    ⟨conv(x, W) with gg in that slot, g_out⟩, its backward puts gg in the slot:
    conv(·) → g_out, and convolution_backward's other result → the operand."""

    @staticmethod
    def forward(ctx, g_out, x, weight, slot, params):  # noqa: ANN001, ANN205
        ctx.save_for_backward(g_out, x, weight)
        ctx.slot, ctx.params = slot, params
        mask = (slot == 0, slot == 1, False)
        return aten.convolution_backward(g_out, x, weight, None, *params, mask)[slot]

    @staticmethod
    def backward(ctx, gg):  # noqa: ANN001, ANN205
        _once_more()
        g_out, *operands = ctx.saved_tensors
        slot, other = ctx.slot, 1 - ctx.slot
        operands[slot] = gg
        d_out = aten.convolution(*operands, None, *ctx.params) if ctx.needs_input_grad[0] else None
        grads: list[torch.Tensor | None] = [None, None]
        if ctx.needs_input_grad[1 + other]:
            mask = (other == 0, other == 1, False)
            grads[other] = aten.convolution_backward(g_out, *operands, None, *ctx.params, mask)[other]
        return d_out, *grads, None, None


class _Conv(torch.autograd.Function):
    """aten.convolution(x, W, b) whose backward is made of `_ConvGrad`'s two slots and a sum,
    each only where a gradient is needed."""

    @staticmethod
    def forward(ctx, x, weight, bias, params):  # noqa: ANN001, ANN205
        ctx.save_for_backward(x, weight)
        ctx.params = params
        return aten.convolution(x, weight, bias, *params)

    @staticmethod
    def backward(ctx, g_out):  # noqa: ANN001, ANN205
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b, _ = ctx.needs_input_grad
        g_x = _ConvGrad.apply(g_out, x.detach(), weight, 0, ctx.params) if need_x else None
        g_w = _ConvGrad.apply(g_out, x, weight.detach(), 1, ctx.params) if need_w else None
        g_b = g_out.sum([0, *range(2, g_out.ndim)]) if need_b else None
        return g_x, g_w, g_b, None


class _ReLU(torch.autograd.Function):
    """max(x, 0), whose first derivative g ⊙ 1[out > 0] reads the output as a constant."""

    @staticmethod
    def forward(ctx, x):  # noqa: ANN001, ANN205
        out = torch.relu(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):  # noqa: ANN001, ANN205
        (out,) = ctx.saved_tensors
        return aten.threshold_backward(g, out.detach(), 0)


class _MaxPool2d(torch.autograd.Function):
    """2-D max pooling, whose first derivative scatters g to the maxima with the pooled input
    read as a constant."""

    @staticmethod
    def forward(ctx, x, kernel, stride, padding, dilation, ceil_mode):  # noqa: ANN001, ANN205
        out, indices = aten.max_pool2d_with_indices(x, kernel, stride, padding, dilation, ceil_mode)
        ctx.save_for_backward(x, indices)
        ctx.args = (kernel, stride, padding, dilation, ceil_mode)
        ctx.mark_non_differentiable(indices)
        return out

    @staticmethod
    def backward(ctx, g):  # noqa: ANN001, ANN205
        x, indices = ctx.saved_tensors
        g_x = aten.max_pool2d_with_indices_backward(g, x.detach(), *ctx.args, indices)
        return g_x, None, None, None, None, None


def _bind(names: tuple[str, ...], defaults: dict[str, Any], args: tuple, kwargs: dict) -> dict[str, Any]:
    """A call's arguments by name: positional ones in `names` order, then keywords, then defaults."""
    return {**defaults, **dict(zip(names, args, strict=False)), **kwargs}


def _tuple(value: int | tuple | list, n: int) -> list[int]:
    return [value] * n if isinstance(value, int) else list(value)


_CONV_NAMES = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")
_CONV_DEFAULTS = {"bias": None, "stride": 1, "padding": 0, "dilation": 1, "groups": 1}
_CONVS = {torch.conv1d: 1, torch.conv2d: 2, torch.conv3d: 3}
_POOL_NAMES = ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")
_POOL_DEFAULTS = {"stride": None, "padding": 0, "dilation": 1, "ceil_mode": False, "return_indices": False}


def _conv(dims: int, args: tuple, kwargs: dict) -> torch.Tensor | None:
    a = _bind(_CONV_NAMES, _CONV_DEFAULTS, args, kwargs)
    x, padding = a["input"], a["padding"]
    if isinstance(padding, str) and padding != "valid" or x.ndim != dims + 2:
        return None
    padding = 0 if isinstance(padding, str) else padding
    params = (
        _tuple(a["stride"], dims),
        _tuple(padding, dims),
        _tuple(a["dilation"], dims),
        False,
        [0] * dims,
        a["groups"],
    )
    return _Conv.apply(x, a["weight"], a["bias"], params)


def _relu(args: tuple, kwargs: dict) -> torch.Tensor | None:
    if kwargs.get("inplace", args[1] if len(args) > 1 else False):
        return None
    return _ReLU.apply(args[0])


def _max_pool2d(args: tuple, kwargs: dict) -> torch.Tensor | None:
    a = _bind(_POOL_NAMES, _POOL_DEFAULTS, args, kwargs)
    x, kernel = a["input"], _tuple(a["kernel_size"], 2)
    if a["return_indices"] or x.ndim != 4:
        return None
    stride = _tuple(a["stride"], 2) if a["stride"] else kernel  # stride None or () means the kernel
    padding, dilation = _tuple(a["padding"], 2), _tuple(a["dilation"], 2)
    return _MaxPool2d.apply(x, kernel, stride, padding, dilation, a["ceil_mode"])


def _handler(func: Callable) -> Callable[[tuple, dict], torch.Tensor | None] | None:
    if func in _CONVS:
        dims = _CONVS[func]
        return lambda args, kwargs: _conv(dims, args, kwargs)
    if func in (F.relu, torch.relu, torch.Tensor.relu):
        return _relu
    if func is F.max_pool2d:
        return _max_pool2d
    return None


class _LeanMode(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        kwargs = kwargs or {}
        handler = _handler(func)
        out = handler(args, kwargs) if handler is not None else None
        return func(*args, **kwargs) if out is None else out


@contextmanager
def lean_first_derivatives() -> Iterator[None]:
    """Within: convolutions, ReLUs and 2-D max pooling record first derivatives whose
    differentiation computes no zero or unneeded terms (the module docstring says which)."""
    with _LeanMode():
        yield

"""Per-sample weight gradients of a convolution, a few samples at a time: the unfolded input
patches U_i [C·kh·kw, T] of each sample times its output gradients δ_i [O, T] (one batched
matmul per chunk of samples), in scratch memory reused from call to call. The outer-product
identity (`ghost`) and the O(N·P) moments (`moments`) use them where forming the per-sample
gradients costs less than the identity's double sum over output positions."""

from __future__ import annotations

import math
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn


def conv2d_args(layer: nn.Module, a: torch.Tensor, d: torch.Tensor):
    """A Conv1d call as a Conv2d one: (input [N,C,H,W], output grad [N,O,H',W'], kernel, stride,
    padding, dilation), all 2-tuples."""
    if isinstance(layer, nn.Conv1d):
        return (
            a.unsqueeze(2),
            d.unsqueeze(2),
            (1, layer.kernel_size[0]),
            (1, layer.stride[0]),
            (0, layer.padding[0]),
            (1, layer.dilation[0]),
        )
    return a, d, layer.kernel_size, layer.stride, layer.padding, layer.dilation


def _patch_view(a: torch.Tensor, kernel, stride, dilation, out_hw) -> torch.Tensor:
    """The patches of an (already padded) input as a strided view [N, C, kh, kw, H', W'], no copy."""
    n, c = a.shape[:2]
    sn, sc, sh, sw = a.stride()
    return a.as_strided(
        (n, c, kernel[0], kernel[1], out_hw[0], out_hw[1]),
        (sn, sc, sh * dilation[0], sw * dilation[1], sh * stride[0], sw * stride[1]),
    )


def _padded(a: torch.Tensor, padding) -> torch.Tensor:
    return F.pad(a, (padding[1], padding[1], padding[0], padding[0])) if any(padding) else a


def patches(a: torch.Tensor, kernel, stride, padding, dilation, out_hw) -> torch.Tensor:
    """The input patches of a convolution, [N, C·kh·kw, H'·W'] (F.unfold's layout), by one
    strided copy of the zero-padded input (several times faster than F.unfold on CPU)."""
    view = _patch_view(_padded(a, padding), kernel, stride, dilation, out_hw)
    return view.reshape(a.shape[0], a.shape[1] * kernel[0] * kernel[1], out_hw[0] * out_hw[1])


CACHE_BYTES = 2 << 20  # per-sample work is done a few samples at a time, within a core's L2 cache


def sample_chunk(per_sample_bytes: int) -> int:
    """How many samples' temporaries (`per_sample_bytes` each) fit in CACHE_BYTES (at least 1)."""
    return max(1, CACHE_BYTES // max(1, per_sample_bytes))


class Workspace:
    """Scratch memory reused from call to call (a probe keeps one for its run): per-sample
    temporaries are written into the same pages at every step. Fresh ones cost their allocation
    and page faults each time: on the 3C3D CNN's economy step the per-sample convolution path's
    patch copies took 5.7 ms instead of 8.9 (second layer) and 2.7 instead of 5.2 (first), by
    the profiler's op times."""

    def __init__(self) -> None:
        self._buffer: torch.Tensor | None = None

    def take(self, like: torch.Tensor, *shapes: tuple[int, ...]) -> list[torch.Tensor]:
        """Uninitialized tensors of `shapes` (like's dtype and device): consecutive views of one
        buffer, valid until the next `take`."""
        sizes = [math.prod(shape) for shape in shapes]
        buf = self._buffer
        if buf is None or buf.numel() < sum(sizes) or (buf.dtype, buf.device) != (like.dtype, like.device):
            buf = self._buffer = like.new_empty(sum(sizes))
        out, offset = [], 0
        for shape, size in zip(shapes, sizes, strict=True):
            out.append(buf[offset : offset + size].view(shape))
            offset += size
        return out


def conv_per_sample_chunks(
    a: torch.Tensor,
    d: torch.Tensor,
    kernel,
    stride,
    padding,
    dilation,
    out: torch.Tensor | None = None,
    work: Workspace | None = None,
    ones: bool = False,
    tail: torch.Tensor | None = None,
) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
    """∇_W ℓ_i of a Conv2d, transposed and a few samples at a time: (i, the gradients of
    samples i … i+s−1 as [s, C·kh·kw, O], the buffer they are in as rows). Each is the input
    patches times the output gradients, U_i δ_iᵀ ([C·kh·kw, T] × [T, O]), in one batched
    matmul per chunk. With `ones` the patches get a last row of ones, so that each product
    ends in a row Σ_t δ_it, the bias gradient, with no pass of its own over δ:
    [s, C·kh·kw + 1, O]. The products are written into `out` [N, C·kh·kw (+ 1), O] when
    given, else (as the patches) into `work`'s buffer (fresh memory without one): valid until
    the next chunk. `tail` (k blocks shaped like one sample's products) is copied
    once behind that buffer's samples, and the third item is the buffer with it,
    [step + k, C·kh·kw·O (+ O)]: a chunk's rows first (a shorter last chunk is followed by
    stale ones), the tail's last, so that a caller takes a chunk's inner products with the
    tail and with itself in one matmul.
    Measured on one CPU core, within a 3C3D CNN's training step, `conv_weight_moments` of its
    second layer took 26.2 ms this way and 28.9 computing δ_i U_iᵀ (the same matmul, the
    other orientation); either is 1.1–3.5× faster than the weight-gradient kernel of a grouped
    convolution (groups = samples)."""
    if out is not None and tail is not None:
        raise ValueError("`out` holds the per-sample gradients only: no `tail`")
    a = _padded(a, padding)
    n, c = a.shape[:2]
    o, hw = d.shape[1], d.shape[2:]
    t, d_in = hw[0] * hw[1], c * kernel[0] * kernel[1]
    rows = d_in + 1 if ones else d_in
    step = min(n, sample_chunk(a.element_size() * rows * (t + o)))
    # One chunk's buffers and views, made once: a chunk then costs a handful of ops (the
    # dispatch of ~40 small ones per chunk was 5 ms of a 35 ms call on a 3C3D's second layer).
    extra = 0 if tail is None else tail.shape[0]
    shapes = [(step, rows, t)] if out is not None else [(step, rows, t), (step + extra, rows, o)]
    taken = work.take(a, *shapes) if work is not None else [a.new_empty(shape) for shape in shapes]
    u = taken[0]
    if out is not None:
        products, chunk = out.view(n, -1), out
    else:
        products, chunk = taken[1].view(step + extra, -1), taken[1][:step]
        if tail is not None:
            taken[1][step:].copy_(tail)
    target = u[:, :d_in].view(step, c, kernel[0], kernel[1], hw[0], hw[1])
    if ones:
        u[:, d_in].fill_(1)
    source = _patch_view(a, kernel, stride, dilation, hw)
    d_t = d.reshape(n, o, t).transpose(1, 2)
    for i in range(0, n, step):
        s = min(step, n - i)
        full = s == step  # only the last chunk may be shorter: its views are sliced
        (target if full else target[:s]).copy_(source[i : i + s])
        g = out[i : i + s] if out is not None else (chunk if full else chunk[:s])
        torch.bmm(u if full else u[:s], d_t[i : i + s], out=g)
        yield i, g, products


def conv_per_sample_grads(
    a: torch.Tensor, d: torch.Tensor, kernel, stride, padding, dilation
) -> torch.Tensor:
    """∇_W ℓ_i of a Conv2d for every sample, each transposed: [N, C·kh·kw·O], row i the
    weight's gradient in (input channel, kh, kw, output channel) order
    (`conv_per_sample_chunks`); inner products between rows are those of the gradients."""
    out = a.new_empty(a.shape[0], a.shape[1] * kernel[0] * kernel[1], d.shape[1])
    for _ in conv_per_sample_chunks(a, d, kernel, stride, padding, dilation, out=out):
        pass  # the chunks are written into `out`
    return out.reshape(a.shape[0], -1)

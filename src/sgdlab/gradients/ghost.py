"""The outer-product ("ghost") identity: per-sample gradient inner products of a layer from its
inputs and output gradients, without forming any per-sample gradient (Goodfellow 2015,
"Efficient per-example gradient computations").

A Linear layer z = W a + b applied to sample i at positions t = 1…T (T = 1 for a plain vector
input; sequence or other extra dimensions otherwise) has ∇_W ℓ_i = Σ_t δ_it a_itᵀ with
δ_it = ∂ℓ_i/∂z_it, so

    ⟨∇_W ℓ_i, ∇_W ℓ_j⟩ = Σ_{t,s} ⟨a_it, a_js⟩ ⟨δ_it, δ_js⟩      (T = 1: (A Aᵀ) ∘ (D Dᵀ))
    ⟨∇_b ℓ_i, ∇_b ℓ_j⟩ = ⟨Σ_t δ_it, Σ_s δ_js⟩.

A Conv1d/Conv2d layer is the same Linear map applied to the unfolded input patches, with T the
number of output positions. For large T the double sum costs N²T²(d_in + d_out) while forming
the per-sample weight gradients costs N·T·d_in·d_out + N²·d_in·d_out; each layer takes the
cheaper one (for LeNet's convolutions: the latter). The Gram matrices of the layers add up to
the Gram matrix of the whole gradient, since ⟨g_i, g_j⟩ is a sum over parameter blocks.

Layers are supported by exact type (a subclass may compute differently): nn.Linear, sgdlab's
NTKLinear, nn.Conv1d, nn.Conv2d (groups = 1, zero padding given as numbers). A supported layer
is used for the identity only if its hook fires exactly once per forward and no other module
shares its parameters; everything else is left to the generic (vmap) path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.hooks import RemovableHandle

from ..models.layers import NTKLinear


@dataclass
class Record:
    """One call of a hooked layer: its input, its output and (once known) ∂loss/∂output."""

    layer: nn.Module
    input: torch.Tensor
    output: torch.Tensor
    grad: torch.Tensor | None = None
    version: int = 0  # the output's version counter when recorded (an in-place op bumps it)
    hook: RemovableHandle | None = None  # the tensor hook on `output` (Capture(grad_hooks=True))

    @property
    def modified(self) -> bool:
        """Whether the output was changed in place after the layer (e.g. ReLU(inplace=True))."""
        return self.output._version != self.version


def _conv_supported(m: nn.Module) -> bool:
    """A convolution the identity handles: one group, zero padding given as numbers."""
    if not isinstance(m, (nn.Conv1d, nn.Conv2d)):
        return False
    return m.groups == 1 and m.padding_mode == "zeros" and not isinstance(m.padding, str)


SUPPORTED: dict[type, Callable[[nn.Module], bool]] = {
    nn.Linear: lambda m: True,
    NTKLinear: lambda m: True,
    nn.Conv1d: _conv_supported,
    nn.Conv2d: _conv_supported,
}


def trainable_names(layer: nn.Module) -> list[str]:
    """Local names ("weight", "bias") of the layer's own trainable parameters."""
    return [n for n, p in layer.named_parameters(recurse=False) if p.requires_grad]


def candidate_layers(model: nn.Module) -> dict[str, nn.Module]:
    """{qualified name: layer} of the layers the identity can handle: supported type, at least one
    trainable parameter, and no parameter shared with another module."""
    owners: dict[int, int] = {}
    for m in model.modules():
        for p in m.parameters(recurse=False):
            owners[id(p)] = owners.get(id(p), 0) + 1
    out = {}
    for name, m in model.named_modules():
        check = SUPPORTED.get(type(m))
        if check is None or not check(m) or not trainable_names(m):
            continue
        if any(owners[id(p)] > 1 for p in m.parameters(recurse=False)):
            continue
        out[name] = m
    return out


class Capture:
    """Forward hooks on `layers` recording each call's input and output; with `grad_hooks`, also a
    tensor hook on each output that keeps ∂loss/∂output when a backward pass runs (the training
    step's own backward). Hooks only read: values and gradients are unchanged."""

    def __init__(self, layers: dict[str, nn.Module], grad_hooks: bool = False):
        self.layers, self.grad_hooks = layers, grad_hooks
        self.records: list[Record] = []
        self._handles: list = []

    def __enter__(self) -> "Capture":
        self.records = []
        self._handles = [m.register_forward_hook(self._hook) for m in self.layers.values()]
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def _hook(self, layer: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        record = Record(layer, inputs[0].detach(), output, version=output._version)
        self.records.append(record)
        if self.grad_hooks and output.requires_grad:

            def keep(grad: torch.Tensor, record: Record = record) -> None:
                record.grad = grad.detach()

            record.hook = output.register_hook(keep)

    def release(self) -> None:
        """Drop the records once their Gram matrices are formed. A tensor hook is held by
        autograd's C++ side, out of sight of Python's garbage collector, so the cycle output →
        hook → record → output would keep every recorded activation alive (about 100 MB per
        step on a CIFAR-10 CNN at batch 128) unless the hooks are removed."""
        for record in self.records:
            if record.hook is not None:
                record.hook.remove()
        self.records = []

    def calls(self) -> dict[str, int]:
        """How many times each hooked layer ran since the context was entered, by qualified name."""
        by_id = {id(m): name for name, m in self.layers.items()}
        counts = {name: 0 for name in self.layers}
        for r in self.records:
            counts[by_id[id(r.layer)]] += 1
        return counts


def _conv2d_args(layer: nn.Module, a: torch.Tensor, d: torch.Tensor):
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


def patches(a: torch.Tensor, kernel, stride, padding, dilation, out_hw) -> torch.Tensor:
    """The input patches of a convolution, [N, C·kh·kw, H'·W'] (F.unfold's layout), by one
    strided copy of the zero-padded input (several times faster than F.unfold on CPU)."""
    if any(padding):
        a = F.pad(a, (padding[1], padding[1], padding[0], padding[0]))
    n, c = a.shape[:2]
    sn, sc, sh, sw = a.stride()
    view = a.as_strided(
        (n, c, kernel[0], kernel[1], out_hw[0], out_hw[1]),
        (sn, sc, sh * dilation[0], sw * dilation[1], sh * stride[0], sw * stride[1]),
    )
    return view.reshape(n, c * kernel[0] * kernel[1], out_hw[0] * out_hw[1])


CACHE_BYTES = 2 << 20  # per-sample work is done a few samples at a time, within a core's L2 cache


def sample_chunk(per_sample_bytes: int) -> int:
    """How many samples' temporaries (`per_sample_bytes` each) fit in CACHE_BYTES (at least 1)."""
    return max(1, CACHE_BYTES // max(1, per_sample_bytes))


def conv_per_sample_grads(
    a: torch.Tensor, d: torch.Tensor, kernel, stride, padding, dilation
) -> torch.Tensor:
    """∇_W ℓ_i of a Conv2d for every sample, [N, O·C·kh·kw]: the output gradients times the input
    patches, δ_i U_iᵀ ([O, T] × [T, C·kh·kw]), a few samples per batched matmul so the patches
    and products stay in cache. Measured on one CPU core against the weight-gradient kernel of a
    grouped convolution (groups = samples) on a CIFAR-10 CNN's layers: 1.1–3.5× faster, the
    most where there are few output positions (3.5× at 6×6)."""
    n, c = a.shape[:2]
    o, hw = d.shape[1], d.shape[2:]
    t, d_in = hw[0] * hw[1], c * kernel[0] * kernel[1]
    out = a.new_empty(n, o, d_in)
    step = sample_chunk(a.element_size() * d_in * (t + o))
    for i in range(0, n, step):
        u = patches(a[i : i + step], kernel, stride, padding, dilation, hw)
        torch.bmm(d[i : i + step].reshape(-1, o, t), u.transpose(1, 2), out=out[i : i + step])
    return out.reshape(n, -1)


def conv_weight_gram(
    layer: nn.Module, a: torch.Tensor, d: torch.Tensor, budget: int, diag: bool = False
) -> torch.Tensor:
    """⟨∇_W ℓ_i, ∇_W ℓ_j⟩ of a Conv1d/Conv2d call: the identity's double sum over output
    positions when it is cheaper, else the Gram matrix of the per-sample weight gradients
    (in blocks of output channels within `budget`)."""
    a, d, kernel, stride, padding, dilation = _conv2d_args(layer, a, d)
    n, c = a.shape[:2]
    o, hw = d.shape[1], d.shape[2:]
    t, d_in = hw[0] * hw[1], c * kernel[0] * kernel[1]
    pairs = 1 if diag else n
    if n * pairs * t * t * (d_in + o) <= n * t * d_in * o + n * pairs * d_in * o:
        u = patches(a, kernel, stride, padding, dilation, hw).transpose(1, 2)
        return weight_gram(u, d.reshape(n, o, t).transpose(1, 2), budget, diag)
    rows = max(1, min(o, budget // (a.element_size() * n * d_in)))
    out = torch.zeros(*((n,) if diag else (n, n)), dtype=torch.float64, device=a.device)
    for start in range(0, o, rows):
        g = conv_per_sample_grads(a, d[:, start : start + rows], kernel, stride, padding, dilation)
        out += _reduce(g, diag)
    return out


def _scales(layer: nn.Module) -> tuple[float, float]:
    """(weight, bias) factors of the layer's forward: NTKLinear uses (σ/√n_in)·W and σ·b."""
    if isinstance(layer, NTKLinear):
        return layer.sigma / math.sqrt(layer.n_in), layer.sigma
    return 1.0, 1.0


def weight_gram(a: torch.Tensor, d: torch.Tensor, budget: int, diag: bool = False) -> torch.Tensor:
    """Σ_{t,s} ⟨a_it, a_js⟩⟨δ_it, δ_js⟩ for a [N, T, d_in], d [N, T, d_out], float64 [N, N]:
    by the identity or through the per-sample gradients δ_iᵀ a_i, whichever costs less; blocks
    keep temporaries within `budget` bytes."""
    n, t, d_in = a.shape
    d_out = d.shape[2]
    size = a.element_size()
    if t == 1:
        a2, d2 = a[:, 0], d[:, 0]
        if diag:
            return (a2 * a2).sum(dim=1).double() * (d2 * d2).sum(dim=1).double()
        return (a2 @ a2.T).double() * (d2 @ d2.T).double()
    pairs = 1 if diag else n  # the identity's cost per sample: its own T×T block, or all N
    if n * pairs * t * t * (d_in + d_out) <= n * t * d_in * d_out + n * pairs * d_in * d_out:
        if diag:
            rows = max(1, budget // (2 * size * t * t))
            out = torch.empty(n, dtype=torch.float64, device=a.device)
            for i in range(0, n, rows):
                ka = torch.bmm(a[i : i + rows], a[i : i + rows].transpose(1, 2))
                kd = torch.bmm(d[i : i + rows], d[i : i + rows].transpose(1, 2))
                out[i : i + rows] = (ka * kd).sum(dim=(1, 2)).double()
            return out
        flat_a, flat_d = a.reshape(n * t, d_in), d.reshape(n * t, d_out)
        rows = max(1, budget // (2 * size * n * t * t))
        out = torch.empty(n, n, dtype=torch.float64, device=a.device)
        for i in range(0, n, rows):
            ka = a[i : i + rows].reshape(-1, d_in) @ flat_a.T
            kd = d[i : i + rows].reshape(-1, d_out) @ flat_d.T
            out[i : i + rows] = (ka * kd).reshape(-1, t, n, t).sum(dim=(1, 3)).double()
        return out
    rows = max(1, min(d_out, budget // (size * n * d_in)))
    out = torch.zeros(*((n,) if diag else (n, n)), dtype=torch.float64, device=a.device)
    for o in range(0, d_out, rows):
        g = torch.einsum("nto,nti->noi", d[:, :, o : o + rows], a).reshape(n, -1)
        out += _reduce(g, diag)
    return out


def _reduce(g: torch.Tensor, diag: bool) -> torch.Tensor:
    """Per-sample gradient rows → their Gram matrix (float64), or only its diagonal."""
    return (g * g).sum(dim=1).double() if diag else (g @ g.T).double()


def record_gram(record: Record, scale: float, budget: int, diag: bool = False) -> torch.Tensor:
    """The Gram matrix of one layer call's trainable parameters, from its input and ∂loss/∂output
    (times `scale`: N when the loss was a batch mean); with `diag` only its diagonal."""
    layer = record.layer
    a = record.input
    n = a.shape[0]
    out = torch.zeros(*((n,) if diag else (n, n)), dtype=torch.float64, device=a.device)
    if record.grad is None:  # the output did not reach the loss: zero gradients
        return out
    d = record.grad * scale
    conv = isinstance(layer, (nn.Conv1d, nn.Conv2d))
    s_w, s_b = _scales(layer)
    names = trainable_names(layer)
    if "weight" in names:
        if conv:
            out += conv_weight_gram(layer, a, d, budget, diag)
        else:
            out += (s_w * s_w) * weight_gram(
                a.reshape(n, -1, a.shape[-1]), d.reshape(n, -1, d.shape[-1]), budget, diag
            )
    if "bias" in names:
        db = d.reshape(n, d.shape[1], -1).sum(dim=2) if conv else d.reshape(n, -1, d.shape[-1]).sum(dim=1)
        out += (s_b * s_b) * _reduce(db, diag)
    return out


# ---------------------------------------------------------------------------------------
# Moments: ‖g_i‖² and ⟨g_i, S⟩ (S = Σ_j g_j) without the N×N Gram matrix, in O(N·P)


def weight_moments(
    a: torch.Tensor, d: torch.Tensor, total: torch.Tensor, budget: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(‖r_i‖², ⟨r_i, S⟩) of r_i = Σ_t δ_it a_itᵀ for a [N, T, d_in], d [N, T, d_out] and
    S = `total` [d_out, d_in], float64 [N] each. ⟨r_i, S⟩ = Σ_t δ_itᵀ S a_it is one matmul over
    all samples and positions; ‖r_i‖² comes from the identity's own T×T block when that is
    cheaper than forming r_i, else from r_i (a few samples at a time). With T = 1 the Gram
    matrix itself is often cheaper (`linear_moments` decides)."""
    n, t, d_in = a.shape
    d_out = d.shape[2]
    rows = ((a.reshape(n * t, d_in) @ total.T).reshape(n, t, d_out) * d).sum(dim=(1, 2)).double()
    if t * t * (d_in + d_out) <= t * d_in * d_out:
        return weight_gram(a, d, budget, diag=True), rows
    norms = a.new_empty(n)
    step = sample_chunk(a.element_size() * d_in * d_out)
    for i in range(0, n, step):
        r = torch.einsum("nto,nti->noi", d[i : i + step], a[i : i + step]).reshape(-1, d_in * d_out)
        torch.linalg.vector_norm(r, dim=1, out=norms[i : i + step])
    return norms.double().square(), rows


def linear_moments(
    a: torch.Tensor, d: torch.Tensor, total: torch.Tensor, budget: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """`weight_moments` of a Linear call, or the diagonal and row sums of its Gram block
    (`weight_gram`) when forming that costs less: N²T²(d_in + d_out) against N·T·d_in·d_out
    (at T = 1 and a batch of 128, the Gram block is the cheaper one for layers wider than
    about 128 → 128)."""
    n, t, d_in = a.shape
    d_out = d.shape[2]
    if n * t * t * (d_in + d_out) <= t * d_in * d_out:
        gram = weight_gram(a, d, budget)
        return gram.diagonal().clone(), gram.sum(dim=1)
    return weight_moments(a, d, total, budget)


def conv_weight_moments(
    layer: nn.Module, a: torch.Tensor, d: torch.Tensor, total: torch.Tensor, budget: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(‖∇_W ℓ_i‖², ⟨∇_W ℓ_i, S⟩) of a Conv1d/Conv2d call, S = `total` (the weight's shape).
    With few output positions (T²(d_in + O) < T·d_in·O): the identity's T×T blocks for the
    norms and one convolution of the inputs with S for the inner products, since
    ⟨∇_W ℓ_i, S⟩ = Σ_t δ_itᵀ S u_it = ⟨δ_i, conv(a_i; S)⟩ (measured 1.4–1.8× faster than
    per-sample gradients at 6×6 output positions); otherwise the per-sample gradients, a few
    samples at a time, never all of them at once."""
    a, d, kernel, stride, padding, dilation = _conv2d_args(layer, a, d)
    n, c = a.shape[:2]
    o, hw = d.shape[1], d.shape[2:]
    t, d_in = hw[0] * hw[1], c * kernel[0] * kernel[1]
    if t * t * (d_in + o) < t * d_in * o:
        weight = total.reshape(o, c, *kernel)
        rows = (F.conv2d(a, weight, None, stride, padding, dilation) * d).sum(dim=(1, 2, 3)).double()
        u = patches(a, kernel, stride, padding, dilation, hw).transpose(1, 2)
        return weight_gram(u, d.reshape(n, o, t).transpose(1, 2), budget, diag=True), rows
    flat = total.reshape(-1)
    norms, rows = a.new_empty(n), a.new_empty(n)
    step = sample_chunk(a.element_size() * d_in * (t + o))
    for i in range(0, n, step):
        g = conv_per_sample_grads(a[i : i + step], d[i : i + step], kernel, stride, padding, dilation)
        torch.linalg.vector_norm(g, dim=1, out=norms[i : i + step])
        torch.mv(g, flat, out=rows[i : i + step])
    return norms.double().square(), rows.double()


def record_moments(
    record: Record, scale: float, budget: int, weight_grad: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(‖g_i‖², ⟨g_i, S⟩), S = Σ_j g_j, of one layer call's trainable parameters (float64 [N]
    each), from its input and ∂loss/∂output (times `scale`, as `record_gram`). `weight_grad`:
    the weight's gradient of that same loss, so S_W = scale·weight_grad (the training step
    has just computed it); without it the weight's part comes from its Gram block. Both are
    quadratic in the output gradients, so `scale` multiplies the results (no scaled copy)."""
    layer = record.layer
    a = record.input
    n = a.shape[0]
    sq = torch.zeros(n, dtype=torch.float64, device=a.device)
    rows = torch.zeros(n, dtype=torch.float64, device=a.device)
    if record.grad is None:  # the output did not reach the loss: zero gradients
        return sq, rows
    d = record.grad
    conv = isinstance(layer, (nn.Conv1d, nn.Conv2d))
    s_w, s_b = _scales(layer)
    names = trainable_names(layer)
    if "weight" in names:
        if weight_grad is None:
            if conv:
                gram = conv_weight_gram(layer, a, d, budget)
            else:
                gram = weight_gram(a.reshape(n, -1, a.shape[-1]), d.reshape(n, -1, d.shape[-1]), budget)
            w_sq, w_rows = gram.diagonal(), gram.sum(dim=1)
        else:
            total = weight_grad.detach() / s_w  # Σ_i δ_i a_iᵀ in the units of `d`
            if conv:
                w_sq, w_rows = conv_weight_moments(layer, a, d, total, budget)
            else:
                w_sq, w_rows = linear_moments(
                    a.reshape(n, -1, a.shape[-1]), d.reshape(n, -1, d.shape[-1]), total, budget
                )
        sq += (s_w * s_w) * w_sq
        rows += (s_w * s_w) * w_rows
    if "bias" in names:
        db = d.reshape(n, d.shape[1], -1).sum(dim=2) if conv else d.reshape(n, -1, d.shape[-1]).sum(dim=1)
        sq += (s_b * s_b) * _reduce(db, diag=True)
        rows += (s_b * s_b) * (db @ db.sum(dim=0)).double()
    return sq.mul_(scale * scale), rows.mul_(scale * scale)

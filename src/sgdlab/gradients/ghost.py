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
cheaper one (for LeNet's convolutions: the latter, from `conv`). The Gram matrices of the
layers add up to the Gram matrix of the whole gradient, since ⟨g_i, g_j⟩ is a sum over
parameter blocks.

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
from torch import nn
from torch.utils.hooks import RemovableHandle

from ..models.layers import NTKLinear
from .conv import conv2d_args, conv_per_sample_grads, patches


@dataclass
class Record:
    """One call of a hooked layer: its input, its output (None where the capture keeps only its
    gradient) and (once known) ∂loss/∂output."""

    layer: nn.Module
    input: torch.Tensor
    output: torch.Tensor | None
    grad: torch.Tensor | None = None
    version: int = 0  # the output's version counter when recorded (an in-place op bumps it)
    hook: RemovableHandle | None = None  # the tensor hook on `output` (Capture(grad_hooks=True))

    @property
    def kept_output(self) -> torch.Tensor:
        """The output, for a caller that differentiates with respect to it."""
        if self.output is None:
            raise ValueError("the output was not kept: Capture(outputs=False)")
        return self.output

    @property
    def modified(self) -> bool:
        """Whether the output was changed in place after the layer (e.g. ReLU(inplace=True))."""
        return self.kept_output._version != self.version


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
    step's own backward); with `weight_grads`, a hook on each layer's trainable weight that keeps
    the gradient that backward computes for it (`step_weight_grads`). Hooks only read: values
    and gradients are unchanged. With `outputs = False` (and `grad_hooks`) the records keep the
    outputs' gradients but not the outputs themselves, which the forward can then free as it
    would without the hooks (a CIFAR-10 CNN's first convolution: 25 MB at batch 128); the tensor
    hook set at the forward still gives the layer's own output gradient, also where the output
    is later changed in place."""

    def __init__(
        self,
        layers: dict[str, nn.Module],
        grad_hooks: bool = False,
        weight_grads: bool = False,
        outputs: bool = True,
    ):
        if not outputs and not grad_hooks:
            raise ValueError("a capture without outputs keeps their gradients: grad_hooks = True")
        self.layers, self.grad_hooks, self.keep_weight_grads = layers, grad_hooks, weight_grads
        self.keep_outputs = outputs
        self.records: list[Record] = []
        self.weight_grads: dict[nn.Module, tuple[torch.Tensor, int]] = {}  # gradient, its version
        self._handles: list = []

    def __enter__(self) -> "Capture":
        self.records, self.weight_grads = [], {}
        self._handles = [m.register_forward_hook(self._hook) for m in self.layers.values()]
        if self.keep_weight_grads:
            for m in self.layers.values():
                if "weight" in trainable_names(m):

                    def keep(grad: torch.Tensor, layer: nn.Module = m) -> None:
                        self.weight_grads[layer] = (grad.detach(), grad._version)

                    self._handles.append(m.get_parameter("weight").register_hook(keep))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def _hook(self, layer: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        kept = output if self.keep_outputs else None
        record = Record(layer, inputs[0].detach(), kept, version=output._version)
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
        self.records, self.weight_grads = [], {}

    def step_weight_grads(self) -> dict[nn.Module, torch.Tensor]:
        """{layer: its weight's gradient from the backward that ran inside the context}, for the
        gradients still as that backward computed them. Autograd may make the very tensor a
        hook saw the weight's `.grad`, which the loop can then zero, clip or add to in place
        (sgdlab.attach measures after the user's optimizer step): such a gradient is left out
        (its version counter moved), so the caller falls back to what needs no weight gradient,
        and no copy is made where nothing touched it (the engine's step)."""
        return {layer: g for layer, (g, version) in self.weight_grads.items() if g._version == version}

    def calls(self) -> dict[str, int]:
        """How many times each hooked layer ran since the context was entered, by qualified name."""
        by_id = {id(m): name for name, m in self.layers.items()}
        counts = {name: 0 for name in self.layers}
        for r in self.records:
            counts[by_id[id(r.layer)]] += 1
        return counts


def conv_weight_gram(
    layer: nn.Module, a: torch.Tensor, d: torch.Tensor, budget: int, diag: bool = False
) -> torch.Tensor:
    """⟨∇_W ℓ_i, ∇_W ℓ_j⟩ of a Conv1d/Conv2d call: the identity's double sum over output
    positions when it is cheaper, else the Gram matrix of the per-sample weight gradients
    (in blocks of output channels within `budget`)."""
    a, d, kernel, stride, padding, dilation = conv2d_args(layer, a, d)
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
        out += gram_of_rows(g, diag)
    return out


def layer_scales(layer: nn.Module) -> tuple[float, float]:
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
        out += gram_of_rows(g, diag)
    return out


def gram_of_rows(g: torch.Tensor, diag: bool) -> torch.Tensor:
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
    s_w, s_b = layer_scales(layer)
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
        out += (s_b * s_b) * gram_of_rows(db, diag)
    return out

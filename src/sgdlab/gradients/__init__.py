"""Per-sample gradients of a batch as their Gram matrix G_ij = ⟨∇ℓ_i(θ), ∇ℓ_j(θ)⟩ — norms,
agreement μ, cosines, variance and Cockpit's batch-size tests follow from it (`gram_stats`) —
without ever holding the N × P per-sample gradients.

Two paths, chosen per layer:
  fast     the outer-product identity (`ghost`) for Linear / NTKLinear / Conv1d / Conv2d
           layers, from each layer's input and output gradient (one forward and one backward
           to the layer outputs: no weight gradients are formed);
  generic  vmap(grad(functional_call)) for every other parameter (`generic`), chunked to a
           memory budget and reduced at once.
`path = "auto"` uses the identity where it applies and the generic path for the rest (a mixed
model is exact: the Gram matrix is a sum over parameter blocks); "fast" refuses a model with
parameters the identity cannot handle; "vmap" uses the generic path for everything.

Per-sample quantities are computed in eval mode: batch norm in training mode couples the
samples of a batch (each output depends on the batch's statistics), so ∇ℓ_i would not be a
property of sample i; with running statistics it is. Dropout is off for the same reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..errors import UserError
from ..modes import eval_mode
from .generic import PerSampleLoss, vmap_gram
from .ghost import Capture, Record, candidate_layers, record_gram, trainable_names
from .stats import gram_stats, minibatch_agreement, minibatch_gram, sample_batches

PATHS = ("auto", "fast", "vmap")
DEFAULT_BUDGET_MB = 512.0


@dataclass
class PerSampleGram:
    """G (float64 [N, N]) and which parameters each path computed."""

    gram: torch.Tensor
    ghost: tuple[str, ...]
    generic: tuple[str, ...]

    @property
    def norms(self) -> torch.Tensor:
        """‖g_i‖ = √G_ii, float64 [N]."""
        return self.gram.diagonal().clamp_min(0).sqrt()

    def stats(self, quantiles: tuple[float, ...] = (0.1, 0.5, 0.9)) -> dict[str, float]:
        """`gram_stats` of G: norms, agreement, cosines, variance and the three batch-size tests."""
        return gram_stats(self.gram, quantiles)


@dataclass(frozen=True)
class Split:
    """Which layers the identity handles (qualified name → layer) and which parameters (by
    qualified name) go to the generic path."""

    ghost: dict[str, nn.Module]
    generic: tuple[str, ...]

    @property
    def ghost_params(self) -> tuple[str, ...]:
        """The qualified names of the parameters the identity computes."""
        return tuple(
            _qualified(name, local) for name, m in self.ghost.items() for local in trainable_names(m)
        )


def _qualified(layer: str, local: str) -> str:
    return f"{layer}.{local}" if layer else local


def per_sample_loss(loss: Any) -> PerSampleLoss:
    """An sgdlab Loss (its `per_sample`) or a callable (out, y) → [N] losses."""
    return getattr(loss, "per_sample", loss)


def check_path(path: str, key: str = "path") -> None:
    """A UserError naming `key` unless `path` is one of "auto", "fast", "vmap"."""
    if path not in PATHS:
        raise UserError(f"{key}: {path!r} is not one of {', '.join(PATHS)}")


def _trainable(model: nn.Module) -> list[str]:
    return [n for n, p in model.named_parameters() if p.requires_grad]


def split_for(model: nn.Module, calls: dict[str, int], path: str, layers: dict[str, nn.Module]) -> Split:
    """The split once the hooks counted each candidate layer's calls in one forward: a layer
    is handled by the identity if it ran exactly once."""
    once = {name: m for name, m in layers.items() if calls.get(name) == 1}
    split = Split(once, ())
    covered = set(split.ghost_params)
    generic = tuple(n for n in _trainable(model) if n not in covered)
    if path == "fast" and generic:
        raise UserError(
            f"path 'fast': the outer-product identity cannot compute the parameters "
            f"{', '.join(generic[:6])}{' …' if len(generic) > 6 else ''} (supported: "
            "Linear, NTKLinear, Conv1d, Conv2d layers called once per forward); use "
            "path 'auto' to compute them by vmap"
        )
    return Split(once, generic)


@torch.no_grad()
def plan_split(model: nn.Module, x: torch.Tensor, path: str = "auto") -> Split:
    """Decide the split from one forward on `x` (a sample or a few), in eval mode."""
    check_path(path)
    layers = {} if path == "vmap" else candidate_layers(model)
    with eval_mode(model), Capture(layers) as cap:
        model(x)
    return split_for(model, cap.calls(), path, layers)


def per_sample_gram(
    model: nn.Module,
    loss: Any,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    path: str = "auto",
    budget_mb: float = DEFAULT_BUDGET_MB,
) -> PerSampleGram:
    """G_ij = ⟨∇_θ ℓ_i, ∇_θ ℓ_j⟩ over the trainable parameters, ℓ_i the loss of sample i, in eval
    mode; no parameter, buffer, .grad or RNG state changes.

    For f(x) = wᵀx and the squared loss ℓ_i = ½(wᵀx_i − y_i)², ∇ℓ_i = (wᵀx_i − y_i)·x_i; at
    w = (1, 1), x_1 = (2, 0), x_2 = (0, 1), y = 0 the gradients are (4, 0) and (0, 1):

    >>> import torch
    >>> from torch import nn
    >>> from sgdlab.gradients import per_sample_gram
    >>> from sgdlab.losses import get_loss
    >>> model = nn.Linear(2, 1, bias=False)
    >>> _ = torch.nn.init.ones_(model.weight)
    >>> x, y = torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.zeros(2)
    >>> result = per_sample_gram(model, get_loss("squared", "real"), x, y)
    >>> result.gram
    tensor([[16.,  0.],
            [ 0.,  1.]], dtype=torch.float64)
    >>> result.ghost, result.generic  # the Linear layer went by the outer-product identity
    (('weight',), ())
    >>> result.norms
    tensor([4., 1.], dtype=torch.float64)
    """
    gram, split = _compute(model, loss, x, y, path, budget_mb, diag=False)
    return PerSampleGram(gram, split.ghost_params, split.generic)


def per_sample_norms(
    model: nn.Module,
    loss: Any,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    path: str = "auto",
    budget_mb: float = DEFAULT_BUDGET_MB,
) -> torch.Tensor:
    """‖∇_θ ℓ_i‖ of every sample (float64 [N]): the diagonal of the Gram matrix alone, cheaper
    (for a Linear layer ‖a_i‖·‖δ_i‖: no N×N products).

    >>> import torch
    >>> from torch import nn
    >>> from sgdlab.gradients import per_sample_norms
    >>> model = nn.Linear(2, 1, bias=False)
    >>> _ = torch.nn.init.ones_(model.weight)
    >>> x, y = torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.zeros(2)
    >>> per_sample_norms(model, lambda out, y: 0.5 * (out[:, 0] - y) ** 2, x, y)  # any (out, y) → [N]
    tensor([4., 1.], dtype=torch.float64)
    """
    sq, _ = _compute(model, loss, x, y, path, budget_mb, diag=True)
    return sq.clamp_min(0).sqrt()


def _compute(
    model: nn.Module, loss: Any, x: torch.Tensor, y: torch.Tensor, path: str, budget_mb: float, diag: bool
) -> tuple[torch.Tensor, Split]:
    check_path(path)
    fn = per_sample_loss(loss)
    budget = int(budget_mb * 2**20)
    n = x.shape[0]
    gram = torch.zeros(*((n,) if diag else (n, n)), dtype=torch.float64, device=x.device)
    layers = {} if path == "vmap" else candidate_layers(model)
    with eval_mode(model):
        if layers:
            with Capture(layers, grad_hooks=True) as cap:
                total = fn(model(x), y).sum()
            split = split_for(model, cap.calls(), path, layers)
            records = [r for r in cap.records if any(r.layer is m for m in split.ghost.values())]
            try:
                if records:
                    gram += records_gram(records, total, 1.0, budget, diag)
            finally:
                cap.release()
        else:
            split = Split({}, tuple(_trainable(model)))
        gram += vmap_gram(model, fn, x, y, list(split.generic), budget, diag)
    return gram, split


def records_gram(
    records: list[Record], total: torch.Tensor | None, scale: float, budget: int, diag: bool = False
) -> torch.Tensor:
    """Σ over recorded layer calls of their Gram matrices; with `total` (a loss whose backward
    has not run), the output gradients come from torch.autograd.grad(total, outputs), which
    backpropagates to the layer outputs only (no weight gradients, no .grad writes)."""
    if not records:
        raise ValueError("no recorded layer calls")
    if total is not None:
        # An output changed in place (ReLU(inplace=True)) no longer is the layer's output: its
        # gradient comes from the tensor hook set at the forward, reached by asking for the
        # layer's weight gradient instead (records must come from Capture(grad_hooks=True)).
        fresh = [r for r in records if not r.modified]
        outputs = [r.output for r in fresh]
        weights: list[torch.Tensor] = [
            p for r in records if r.modified for p in r.layer.parameters(recurse=False) if p.requires_grad
        ]
        grads = torch.autograd.grad(total, outputs + weights, allow_unused=True)
        # the outputs' gradients come first; the weights' are not needed (their hooks set r.grad)
        for r, g in zip(fresh, grads[: len(fresh)], strict=True):
            r.grad = g
    n = records[0].input.shape[0]
    out = torch.zeros(*((n,) if diag else (n, n)), dtype=torch.float64, device=records[0].input.device)
    for r in records:
        out += record_gram(r, scale, budget, diag)
    return out


__all__ = [
    "Capture",
    "DEFAULT_BUDGET_MB",
    "PATHS",
    "PerSampleGram",
    "Split",
    "gram_stats",
    "minibatch_agreement",
    "minibatch_gram",
    "per_sample_gram",
    "per_sample_loss",
    "per_sample_norms",
    "plan_split",
    "records_gram",
    "sample_batches",
    "vmap_gram",
]

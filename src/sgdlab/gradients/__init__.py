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

When only norms, variance and the batch-size tests are wanted, `per_sample_moments` gives the
Gram matrix's diagonal ‖g_i‖² and row sums ⟨g_i, Σ_j g_j⟩ in O(N·P) rather than O(N²·P)
(`moments`; the layers' weight gradient Σ_j g_j is what the training step's backward computes
anyway).

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
from .conv import Workspace
from .generic import PerSampleLoss, vmap_gram, vmap_moments
from .ghost import Capture, Record, candidate_layers, record_gram, trainable_names
from .moments import record_moments
from .stats import gram_stats, minibatch_agreement, minibatch_gram, moment_stats, sample_batches

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


@dataclass
class PerSampleMoments:
    """G_ii = ‖g_i‖² and the row sums Σ_j G_ij = N⟨g_i, ḡ⟩ (float64 [N] each) — what norms,
    variance, SNR and the three batch-size tests need, without G — and which parameters each
    path computed."""

    sq_norms: torch.Tensor
    row_sums: torch.Tensor
    ghost: tuple[str, ...]
    generic: tuple[str, ...]

    @property
    def norms(self) -> torch.Tensor:
        """‖g_i‖, float64 [N]."""
        return self.sq_norms.clamp_min(0).sqrt()

    def stats(self, quantiles: tuple[float, ...] = (0.1, 0.5, 0.9)) -> dict[str, float]:
        """`moment_stats`: norms, ‖ḡ‖, mean inner product, variance, SNR and the three tests."""
        return moment_stats(self.sq_norms, self.row_sums, quantiles)


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
    gram, split = _compute(model, loss, x, y, path, budget_mb, mode="gram")
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
    sq, _ = _compute(model, loss, x, y, path, budget_mb, mode="diag")
    return sq.clamp_min(0).sqrt()


def per_sample_moments(
    model: nn.Module,
    loss: Any,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    path: str = "auto",
    budget_mb: float = DEFAULT_BUDGET_MB,
) -> PerSampleMoments:
    """‖∇_θ ℓ_i‖² and ⟨∇_θ ℓ_i, Σ_j ∇_θ ℓ_j⟩ of every sample (the diagonal and row sums of the
    Gram matrix) in O(N·P): enough for norms, variance, SNR and the three batch-size tests
    (`moment_stats`), not for agreement or cosines. Eval mode; nothing changes.

    With the gradients (4, 0) and (0, 1) of `per_sample_gram`'s example, G = diag(16, 1):

    >>> import torch
    >>> from torch import nn
    >>> from sgdlab.gradients import per_sample_moments
    >>> from sgdlab.losses import get_loss
    >>> model = nn.Linear(2, 1, bias=False)
    >>> _ = torch.nn.init.ones_(model.weight)
    >>> x, y = torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.zeros(2)
    >>> m = per_sample_moments(model, get_loss("squared", "real"), x, y)
    >>> m.sq_norms, m.row_sums
    (tensor([16.,  1.], dtype=torch.float64), tensor([16.,  1.], dtype=torch.float64))
    """
    both, split = _compute(model, loss, x, y, path, budget_mb, mode="moments")
    return PerSampleMoments(both[0], both[1], split.ghost_params, split.generic)


def _compute(
    model: nn.Module, loss: Any, x: torch.Tensor, y: torch.Tensor, path: str, budget_mb: float, mode: str
) -> tuple[torch.Tensor, Split]:
    """By `mode`: "gram" G [N, N]; "diag" G_ii [N]; "moments" G_ii and Σ_j G_ij stacked, [2, N]."""
    check_path(path)
    fn = per_sample_loss(loss)
    budget = int(budget_mb * 2**20)
    n = x.shape[0]
    shape = {"gram": (n, n), "diag": (n,), "moments": (2, n)}[mode]
    out = torch.zeros(*shape, dtype=torch.float64, device=x.device)
    layers = {} if path == "vmap" else candidate_layers(model)
    with eval_mode(model):
        if layers:
            with Capture(layers, grad_hooks=True) as cap:
                total = fn(model(x), y).sum()
            split = split_for(model, cap.calls(), path, layers)
            records = [r for r in cap.records if any(r.layer is m for m in split.ghost.values())]
            try:
                if records and mode == "moments":
                    out += torch.stack(records_moments(records, total, 1.0, budget))
                elif records:
                    out += records_gram(records, total, 1.0, budget, diag=mode == "diag")
            finally:
                cap.release()
        else:
            split = Split({}, tuple(_trainable(model)))
        generic = list(split.generic)
        if mode == "moments":
            out += torch.stack(vmap_moments(model, fn, x, y, generic, budget))
        else:
            out += vmap_gram(model, fn, x, y, generic, budget, diag=mode == "diag")
    return out, split


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
        outputs = [r.kept_output for r in fresh]
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


def records_moments(
    records: list[Record],
    total: torch.Tensor | None,
    scale: float,
    budget: int,
    weight_grads: dict[nn.Module, torch.Tensor] | None = None,
    work: Workspace | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Σ over recorded layer calls of (‖g_i‖², ⟨g_i, Σ_j g_j⟩), float64 [N] each, in O(N·P).
    `weight_grads`: each layer's weight gradient of the loss the records' output gradients
    belong to (the training step's, as `Capture(weight_grads=True)` keeps it), which gives
    Σ_j g_j. With `total` (a loss whose
    backward has not run), one torch.autograd.grad gives the output gradients and the weight
    gradients together (no .grad writes). `work`: scratch memory the caller keeps from step to
    step (a probe's `Workspace`)."""
    if not records:
        raise ValueError("no recorded layer calls")
    if total is not None:
        fresh = [r for r in records if not r.modified]
        weights: dict[nn.Module, torch.Tensor] = {
            r.layer: r.layer.get_parameter("weight") for r in records if "weight" in trainable_names(r.layer)
        }
        # a modified output's tensor hook fires once a gradient flows to one of its parameters
        extra: list[torch.Tensor] = [
            p
            for r in records
            if r.modified and r.layer not in weights
            for p in r.layer.parameters(recurse=False)
            if p.requires_grad
        ]
        inputs = [r.kept_output for r in fresh] + list(weights.values()) + extra
        grads = torch.autograd.grad(total, inputs, allow_unused=True)
        for r, g in zip(fresh, grads[: len(fresh)], strict=True):
            r.grad = g
        found = grads[len(fresh) : len(fresh) + len(weights)]
        weight_grads = {m: g for m, g in zip(weights, found, strict=True) if g is not None}
    n = records[0].input.shape[0]
    sq = torch.zeros(n, dtype=torch.float64, device=records[0].input.device)
    rows = torch.zeros_like(sq)
    for r in records:
        r_sq, r_rows = record_moments(r, scale, budget, (weight_grads or {}).get(r.layer), work)
        sq += r_sq
        rows += r_rows
    return sq, rows


__all__ = [
    "Capture",
    "DEFAULT_BUDGET_MB",
    "PATHS",
    "PerSampleGram",
    "PerSampleMoments",
    "Split",
    "Workspace",
    "gram_stats",
    "minibatch_agreement",
    "minibatch_gram",
    "moment_stats",
    "per_sample_gram",
    "per_sample_loss",
    "per_sample_moments",
    "per_sample_norms",
    "plan_split",
    "records_gram",
    "records_moments",
    "sample_batches",
    "vmap_gram",
    "vmap_moments",
]

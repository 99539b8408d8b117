"""θ as one flat vector: read and write all trainable parameters of a model at once.

θ ∈ ℝ^P is the concatenation of the trainable parameters, each flattened in row-major order,
in `model.parameters()` order. `flat_params` copies θ out and `set_flat_params` writes it back;
`named_views` goes the other way without copying: views into a given flat θ shaped like the
parameters, for `torch.func.functional_call` (evaluate the model at θ, differentiate through
θ). `distance` and `norm_and_distance` take θ in either form, flat or as the parameter tensors."""

from __future__ import annotations

import math

import torch
from torch import nn


def trainable(model: nn.Module) -> list[torch.Tensor]:
    """The parameters with requires_grad, in `model.parameters()` order: the order of θ's
    entries in every flat view here."""
    return [p for p in model.parameters() if p.requires_grad]


@torch.no_grad()
def flat_params(model: nn.Module) -> torch.Tensor:
    """A detached copy of θ: the trainable parameters flattened and concatenated (a vector of
    length P)."""
    return torch.cat([p.detach().reshape(-1) for p in trainable(model)])


@torch.no_grad()
def set_flat_params(model: nn.Module, theta: torch.Tensor) -> None:
    """Write the flat vector θ into the trainable parameters in place (the inverse of
    `flat_params`). θ must have exactly P entries (a longer one raises a ValueError)."""
    offset = 0
    for p in trainable(model):
        n = p.numel()
        p.copy_(theta[offset : offset + n].view_as(p))
        offset += n
    if offset != theta.numel():
        raise ValueError(f"θ has {theta.numel()} entries, the model {offset}")


def named_views(model: nn.Module, theta: torch.Tensor) -> dict[str, torch.Tensor]:
    """{name: view of theta} shaped like the model's trainable parameters (for functional_call)."""
    out, offset = {}, 0
    for name, p in model.named_parameters():
        if p.requires_grad:
            out[name] = theta[offset : offset + p.numel()].view_as(p)
            offset += p.numel()
    return out


CHUNK = 1 << 16  # entries per pass of `distance`: a scratch row that stays in a core's L2 cache

Vector = torch.Tensor | list[torch.Tensor]  # θ flat, or as the model's parameter tensors


def _segments(a: Vector, b: Vector) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Aligned flat pieces of a and b (in flat_params order), at most CHUNK entries each."""
    if isinstance(a, torch.Tensor) and isinstance(b, list):
        return [(y, x) for x, y in _segments(b, a)]
    pieces = [p.detach().reshape(-1) for p in a] if isinstance(a, list) else [a]
    if isinstance(b, list):
        others = [p.detach().reshape(-1) for p in b]
    else:  # b flat: the slice of it that lines up with each piece of a
        others, offset = [], 0
        for piece in pieces:
            others.append(b[offset : offset + piece.numel()])
            offset += piece.numel()
    out = []
    for i, piece in enumerate(pieces):
        other = others[i]
        for start in range(0, piece.numel(), CHUNK):
            out.append((piece[start : start + CHUNK], other[start : start + CHUNK]))
    return out


def _squares(a: Vector, b: Vector, work: torch.Tensor | None, with_norm: bool) -> list[float]:
    """[‖a − b‖²] (and ‖a‖² first, `with_norm`), chunk by chunk: each difference is written
    into the scratch row `work` (reused, and small enough to stay in cache) and squared there;
    the chunks' float32 sums are added in float64 after one device sync."""
    segments = _segments(a, b)
    if not segments:
        return [0.0, 0.0] if with_norm else [0.0]
    first = segments[0][0]
    if work is None or work.numel() < CHUNK or (work.dtype, work.device) != (first.dtype, first.device):
        work = torch.empty(CHUNK, dtype=first.dtype, device=first.device)
    sums = []
    for x, y in segments:
        row = work[: x.numel()]
        torch.sub(x, y, out=row)
        if with_norm:
            sums.append(torch.dot(x, x))
        sums.append(torch.dot(row, row))
    parts = torch.stack(sums).double().view(len(segments), -1).sum(dim=0)
    return parts.tolist()


@torch.no_grad()
def distance(a: Vector, b: Vector, work: torch.Tensor | None = None) -> float:
    """‖a − b‖ for θ's given flat or as parameter tensors (no flat copy of the latter), chunk by
    chunk into the reusable scratch row `work` and summed in float64: no P-sized temporary,
    whose page faults cost more than the arithmetic at P ≈ 10^6."""
    return math.sqrt(_squares(a, b, work, with_norm=False)[0])


@torch.no_grad()
def norm_and_distance(a: Vector, b: Vector, work: torch.Tensor | None = None) -> tuple[float, float]:
    """(‖a‖, ‖a − b‖) in one pass over a and b, chunk by chunk as `distance` (each chunk of a is
    still in cache when its own square is summed): one read of a where a norm and `distance`
    make two."""
    size_sq, dist_sq = _squares(a, b, work, with_norm=True)
    return math.sqrt(size_sq), math.sqrt(dist_sq)


def all_finite(model: nn.Module) -> bool:
    """Whether every parameter entry (trainable or not) is finite: no NaN, no ±inf."""
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


def in_format_of(view: torch.Tensor, param: torch.Tensor) -> torch.Tensor:
    """`view` in `param`'s memory format: a channels-last copy where the model keeps a conv
    weight channels-last (functional_call with plain views of θ would otherwise run the conv
    on mismatched formats, ~3× slower on a CPU); `view` itself otherwise."""
    if (
        param.dim() == 4
        and not param.is_contiguous()
        and param.is_contiguous(memory_format=torch.channels_last)
    ):
        return view.contiguous(memory_format=torch.channels_last)
    return view

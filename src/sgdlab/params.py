"""θ as one flat vector: read and write all trainable parameters of a model at once."""

from __future__ import annotations

import torch
from torch import nn


def trainable(model: nn.Module) -> list[torch.Tensor]:
    return [p for p in model.parameters() if p.requires_grad]


@torch.no_grad()
def flat_params(model: nn.Module) -> torch.Tensor:
    """A detached copy of θ."""
    return torch.cat([p.detach().reshape(-1) for p in trainable(model)])


@torch.no_grad()
def set_flat_params(model: nn.Module, theta: torch.Tensor) -> None:
    offset = 0
    for p in trainable(model):
        n = p.numel()
        p.copy_(theta[offset:offset + n].view_as(p))
        offset += n
    if offset != theta.numel():
        raise ValueError(f"θ has {theta.numel()} entries, the model {offset}")


def named_views(model: nn.Module, theta: torch.Tensor) -> dict[str, torch.Tensor]:
    """{name: view of theta} shaped like the model's trainable parameters (for functional_call)."""
    out, offset = {}, 0
    for name, p in model.named_parameters():
        if p.requires_grad:
            out[name] = theta[offset:offset + p.numel()].view_as(p)
            offset += p.numel()
    return out


def all_finite(model: nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


def in_format_of(view: torch.Tensor, param: torch.Tensor) -> torch.Tensor:
    """`view` in `param`'s memory format: a channels-last copy where the model keeps a conv
    weight channels-last (functional_call with plain views of θ would otherwise run the conv
    on mismatched formats, ~3× slower on a CPU); `view` itself otherwise."""
    if param.dim() == 4 and not param.is_contiguous() and param.is_contiguous(memory_format=torch.channels_last):
        return view.contiguous(memory_format=torch.channels_last)
    return view

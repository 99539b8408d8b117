"""Models by name: `build_model(cfg, input_shape, n_outputs)`."""

from __future__ import annotations

import torch
from torch import nn

from ..config import ModelConfig
from . import alexnet, lenet, mlp, residual_mlp, resnet, vgg  # noqa: F401  (registers)
from .registry import models


def build_model(cfg: ModelConfig, input_shape: tuple[int, ...], n_outputs: int) -> nn.Module:
    """The model `cfg` names (resolved config); seed torch's RNG before calling. Conv nets
    come with channels-last weights, which makes their CPU convolutions 1.05–1.25× faster
    (benchmarks/channels_last.py) without changing what they compute."""
    entry = models.get(cfg.name, "model.name")
    model = entry.factory(cfg, tuple(input_shape), n_outputs)
    if entry.extra.get("channels_last"):
        model = model.to(memory_format=torch.channels_last)
    return model


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = ["build_model", "count_params", "models"]

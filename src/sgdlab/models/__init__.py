"""Models by name: `build_model(cfg, input_shape, n_outputs)`."""

from __future__ import annotations

from torch import nn

from ..config import ModelConfig
from . import mlp  # noqa: F401  (registers)
from .registry import models


def build_model(cfg: ModelConfig, input_shape: tuple[int, ...], n_outputs: int) -> nn.Module:
    """The model `cfg` names (resolved config); seed torch's RNG before calling."""
    return models.get(cfg.name, "model.name").factory(cfg, tuple(input_shape), n_outputs)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = ["build_model", "count_params", "models"]

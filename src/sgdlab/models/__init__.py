"""Models by name: `build_model(cfg, input_shape, n_outputs)`.

A model is built from a resolved config (`sgdlab.build.resolve` fills in the options the
model reads from its registered defaults):

>>> import torch
>>> from sgdlab.build import resolve
>>> from sgdlab.config import load_config
>>> cfg = resolve(load_config(raw={"model": {"name": "lenet"}}))
>>> _ = torch.manual_seed(0)
>>> model = build_model(cfg.model, (3, 32, 32), 10)
>>> count_params(model)  # the parameter count the exact-convergence study's LeNet is pinned by
121802
>>> model(torch.zeros(2, 3, 32, 32)).shape
torch.Size([2, 10])
>>> cfg.model.widths is None, cfg.model.width  # lenet reads `width`, not the mlp's `widths`
(True, 32)
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import ModelConfig
from . import alexnet, lenet, mlp, residual_mlp, resnet, transformer, vgg  # noqa: F401  (registers)
from .registry import ModelOptions, models


def build_model(cfg: ModelConfig, input_shape: tuple[int, ...], n_outputs: int) -> nn.Module:
    """The model `cfg` names (resolved config); seed torch's RNG before calling. Conv nets
    come with channels-last weights, which makes their CPU convolutions 1.05–1.25× faster
    (benchmarks/channels_last.py) without changing what they compute.

    Args:
        cfg: A resolved model config; an option the model reads that is still unset raises
            a ConfigError naming it.
        input_shape: Shape of one input without the batch axis: (channels, height, width)
            for the conv nets, any shape for the dense ones (they flatten it).
        n_outputs: Width of the last layer (classes, or target dimension).
    """
    entry = models.get(cfg.name, "model.name")
    model: nn.Module = entry.factory(ModelOptions(cfg), tuple(input_shape), n_outputs)
    if entry.extra.get("channels_last"):
        # torch's stubs omit the memory_format keyword that Module.to documents and accepts
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return model


def count_params(model: nn.Module) -> int:
    """Number of trainable scalars (entries of parameters with requires_grad), P = dim θ."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = ["ModelOptions", "build_model", "count_params", "models"]

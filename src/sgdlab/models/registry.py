"""The model table and the typed options its builders receive.

A builder is `build(opts: ModelOptions, input_shape, n_outputs) -> nn.Module`, registered with
the ModelConfig fields it reads as `options` (with their defaults). `sgdlab.build.resolve`
fills every field a model reads from those defaults, so inside a builder none of them is None:
`ModelOptions` states that in its types and raises a ConfigError naming the field if a config
reaches a builder unresolved (or a builder reads a field it did not register)."""

from __future__ import annotations

from typing import Callable

from torch import nn

from ..config import ModelConfig
from ..registry import OptionsView, Registry


class ModelOptions(OptionsView):
    """A resolved ModelConfig as a builder reads it: each model-specific option typed without
    its `None` (the "unset" that resolution replaces by the model's default). The options are
    declared, with their help, in `sgdlab.config.schema.ModelConfig`."""

    schema = ModelConfig
    section = "model"
    kind = "model"

    widths: tuple[int, ...]
    residual_widths: tuple[int, ...]
    width: int
    activation: str
    batch_norm: str
    skips: str
    dropout: float
    init: str
    parametrization: str
    sigma: float
    bias: bool
    head: str


ModelBuilder = Callable[[ModelOptions, tuple[int, ...], int], nn.Module]

models: Registry[ModelBuilder] = Registry("model")

"""The model table and the typed options its builders receive.

A builder is `build(opts: ModelOptions, input_shape, n_outputs) -> nn.Module`, registered with
the ModelConfig fields it reads as `options` (with their defaults). `sgdlab.build.resolve`
fills every field a model reads from those defaults, so inside a builder none of them is None:
`ModelOptions` states that in its types and raises a ConfigError naming the field if a config
reaches a builder unresolved (or a builder reads a field it did not register)."""

from __future__ import annotations

from typing import Callable, TypeVar

from torch import nn

from ..config import ModelConfig
from ..registry import Registry, registered_option

T = TypeVar("T")


class ModelOptions:
    """A resolved ModelConfig as a builder reads it: each model-specific option typed without
    its `None` (the "unset" that resolution replaces by the model's default)."""

    def __init__(self, cfg: ModelConfig):
        self.cfg = cfg

    def _get(self, value: T | None, field: str) -> T:
        return registered_option(value, f"model.{field}", f"model {self.cfg.name!r}")

    @property
    def name(self) -> str:
        """The registered model name."""
        return self.cfg.name

    @property
    def widths(self) -> tuple[int, ...]:
        """Hidden widths of the dense layers, input side first."""
        return self._get(self.cfg.widths, "widths")

    @property
    def residual_widths(self) -> tuple[int, ...]:
        """Widths of the residual dense layers (before the plain `widths`)."""
        return self._get(self.cfg.residual_widths, "residual_widths")

    @property
    def width(self) -> int:
        """Base channel width of a conv net; every layer scales with it."""
        return self._get(self.cfg.width, "width")

    @property
    def activation(self) -> str:
        """Hidden activation, a name of `layers.activation`."""
        return self._get(self.cfg.activation, "activation")

    @property
    def batch_norm(self) -> str:
        """Where batch norm goes: "all", "first-in-block" or "none"."""
        return self._get(self.cfg.batch_norm, "batch_norm")

    @property
    def skips(self) -> str:
        """Which residual shortcuts a ResNet keeps."""
        return self._get(self.cfg.skips, "skips")

    @property
    def dropout(self) -> float:
        """Dropout probability after hidden dense layers (0: none)."""
        return self._get(self.cfg.dropout, "dropout")

    @property
    def init(self) -> str:
        """Weight initialization: "default" (PyTorch's), "he", "ntk-normal" or "zeros"."""
        return self._get(self.cfg.init, "init")

    @property
    def parametrization(self) -> str:
        """Dense layer parametrization: "standard" or "ntk"."""
        return self._get(self.cfg.parametrization, "parametrization")

    @property
    def sigma(self) -> float:
        """Initialization / NTK scale σ."""
        return self._get(self.cfg.sigma, "sigma")

    @property
    def bias(self) -> bool:
        """Whether the layers have biases."""
        return self._get(self.cfg.bias, "bias")

    @property
    def head(self) -> str:
        """Classifier head variant of a conv net."""
        return self._get(self.cfg.head, "head")


ModelBuilder = Callable[[ModelOptions, tuple[int, ...], int], nn.Module]

models: Registry[ModelBuilder] = Registry("model")

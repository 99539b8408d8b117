"""The dataset table. A loader is `load(cfg: DataConfig, gen) -> RawData`, registered with the
DataConfig fields it reads as `options` (with their defaults).

`sgdlab.build.resolve` fills each of those fields that is unset from the dataset's defaults,
so a synthetic loader can read its sizes and shape options through `DataOptions`, typed
without None."""

from __future__ import annotations

from typing import Any, Callable, TypeVar

import torch

from ..config import DataConfig
from ..registry import Registry, registered_option
from .dataset import RawData

T = TypeVar("T")

DatasetLoader = Callable[[DataConfig, torch.Generator], RawData]

datasets: Registry[DatasetLoader] = Registry("dataset")

# Common defaults of a registered dataset (its `options` may override any of them).
IMAGE_DEFAULTS: dict[str, Any] = {"standardize": True}
SYNTHETIC_DEFAULTS: dict[str, Any] = {"standardize": False}


class DataOptions:
    """A resolved DataConfig as a synthetic loader reads it: the sizes and the dataset-specific
    options it registered, typed without their `None` (which resolution replaces by the
    dataset's default). Reading one that is still unset raises a ConfigError naming it.

    Only for loaders that register `n_train` and `n_test`: for the file-backed sets an unset
    size means "all points", which this view does not express."""

    def __init__(self, cfg: DataConfig):
        self.cfg = cfg

    def _get(self, value: T | None, field: str) -> T:
        return registered_option(value, f"data.{field}", f"dataset {self.cfg.name!r}")

    @property
    def n_train(self) -> int:
        """Number of training points drawn."""
        return self._get(self.cfg.n_train, "n_train")

    @property
    def n_test(self) -> int:
        """Number of test points drawn."""
        return self._get(self.cfg.n_test, "n_test")

    @property
    def n_total(self) -> int:
        """n_train + n_test: how many points a loader draws before splitting."""
        return self.n_train + self.n_test

    @property
    def dim(self) -> int:
        """Input dimension."""
        return self._get(self.cfg.dim, "dim")

    @property
    def noise(self) -> float:
        """Noise level (a standard deviation)."""
        return self._get(self.cfg.noise, "noise")

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return self._get(self.cfg.n_classes, "n_classes")

    @property
    def margin(self) -> float:
        """Margin gap of separable data."""
        return self._get(self.cfg.margin, "margin")

    @property
    def teacher_widths(self) -> tuple[int, ...]:
        """Hidden widths of the random teacher network."""
        return self._get(self.cfg.teacher_widths, "teacher_widths")

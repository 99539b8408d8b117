"""The dataset table. A loader is `load(cfg: DataConfig, gen) -> RawData`, registered with the
DataConfig fields it reads as `options` (with their defaults).

`sgdlab.build.resolve` fills each of those fields that is unset from the dataset's defaults,
so a synthetic loader can read its sizes and shape options through `DataOptions`, typed
without None."""

from __future__ import annotations

from typing import Any, Callable

import torch

from ..config import DataConfig
from ..registry import OptionsView, Registry
from .dataset import RawData

DatasetLoader = Callable[[DataConfig, torch.Generator], RawData]

datasets: Registry[DatasetLoader] = Registry("dataset")

# Common defaults of a registered dataset (its `options` may override any of them).
IMAGE_DEFAULTS: dict[str, Any] = {"standardize": True}
SYNTHETIC_DEFAULTS: dict[str, Any] = {"standardize": False}


class DataOptions(OptionsView):
    """A resolved DataConfig as a synthetic loader reads it: the sizes and the dataset-specific
    options it registered, typed without their `None` (which resolution replaces by the
    dataset's default). Reading one that is still unset raises a ConfigError naming it. The
    options are declared, with their help, in `sgdlab.config.schema.DataConfig`.

    Only for loaders that register `n_train` and `n_test`: for the file-backed sets an unset
    size means "all points", which this view does not express."""

    schema = DataConfig
    section = "data"
    kind = "dataset"

    n_train: int
    n_test: int
    dim: int
    noise: float
    n_classes: int
    margin: float
    teacher_widths: tuple[int, ...]

    @property
    def n_total(self) -> int:
        """n_train + n_test: how many points a loader draws before splitting."""
        return self.n_train + self.n_test

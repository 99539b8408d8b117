"""The dataset table. A loader is `load(cfg: DataConfig, gen) -> RawData`."""

from ..registry import Registry

datasets = Registry("dataset")

# Common defaults of a registered dataset (its `options` may override any of them).
IMAGE_DEFAULTS = {"standardize": True}
SYNTHETIC_DEFAULTS = {"standardize": False}

"""Datasets by name: `build_dataset(cfg, seed)` loads, subsets and encodes one."""

from __future__ import annotations

from ..config import DataConfig
from ..seeding import generator
from . import cifar10, cifar100, digits, fashion_mnist, mnist, separable, synthetic  # noqa: F401  (registers)
from .dataset import TARGET_KINDS, Dataset, RawData, Split
from .pipeline import prepare
from .registry import datasets


def build_dataset(cfg: DataConfig, seed: int) -> Dataset:
    """The dataset `cfg` names, prepared on the CPU. `cfg` must be resolved."""
    gen = generator(cfg.seed if cfg.seed is not None else seed, "data")
    raw = datasets.get(cfg.name, "data.name").factory(cfg, gen)
    return prepare(raw, cfg, gen)


__all__ = ["Dataset", "RawData", "Split", "TARGET_KINDS", "build_dataset", "datasets"]

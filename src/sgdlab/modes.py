"""Switching a model's train/eval behaviour for a measurement, and switching it back."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from torch import nn

DROPOUT_TYPES = (
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
)


@contextmanager
def dropout_off(model: nn.Module) -> Iterator[None]:
    """Dropout modules in eval mode, everything else (BN batch statistics) as it is."""
    switched = [m for m in model.modules() if isinstance(m, DROPOUT_TYPES) and m.training]
    for m in switched:
        m.eval()
    try:
        yield
    finally:
        for m in switched:
            m.train()


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """The whole model in eval mode (dropout off, BN on running statistics), restored after."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)

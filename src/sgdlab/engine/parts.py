"""Everything a run is made of, built from a config (sgdlab.build) or by hand."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..config import Config
from ..data import Dataset
from ..losses import Loss
from ..optim import UpdateRule
from ..probes import Probe
from .samplers import Sampler


@dataclass
class Parts:
    """The built pieces of one run, as `train` uses them.

    Attributes:
        config: the resolved config they were built from (what the run directory records).
        data: the train and test splits, already on `device` in the config's dtype.
        model: the network; its parameters are θ.
        loss: the training loss ℓ(f(x), y).
        rule: the update rule: step-size schedule η_k, torch optimizer and post-step transforms.
        sampler: which training points each step's minibatch B_k holds.
        probes: the measurements taken during training, in config order.
        device: where the model and data live.
    """

    config: Config
    data: Dataset
    model: nn.Module
    loss: Loss
    rule: UpdateRule
    sampler: Sampler
    probes: list[Probe]
    device: torch.device

    @property
    def n_params(self) -> int:
        """The number of trainable scalars, dim θ (parameters with requires_grad=False excluded)."""
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad)

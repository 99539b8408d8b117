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
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad)

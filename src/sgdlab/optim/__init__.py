"""Optimizers by name, step-size rules and post-step transforms, composed into an UpdateRule."""

from __future__ import annotations

import torch

from ..config import OptimConfig
from ..seeding import generator
from .registry import optimizers
from .rule import BallProjection, LangevinNoise, PostStep, UpdateRule
from .schedules import StepSize


def build_rule(
    cfg: OptimConfig, params: list[torch.Tensor], seed: int, device: torch.device | str = "cpu"
) -> UpdateRule:
    """The update rule `cfg` (resolved) describes, over `params`."""
    entry = optimizers.get(cfg.name, "optim.name")
    base = entry.factory(cfg, params)
    post: list[PostStep] = []
    if entry.extra.get("post") == "langevin":
        post.append(LangevinNoise(cfg.noise, cfg.noise_decay, generator(seed, "noise", device)))
    if cfg.project_radius is not None:
        post.append(BallProjection(cfg.project_radius))
    return UpdateRule(params, base, StepSize(cfg.lr, cfg.schedule), post)


__all__ = ["BallProjection", "LangevinNoise", "StepSize", "UpdateRule", "build_rule", "optimizers"]

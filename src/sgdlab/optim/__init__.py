"""Optimizers by name, step-size rules and post-step transforms, composed into an UpdateRule."""

from __future__ import annotations

import torch

from ..config import OptimConfig
from ..seeding import generator
from .registry import OptimOptions, optimizers
from .rule import BallProjection, LangevinNoise, PostStep, UpdateRule
from .schedules import StepSize


def build_rule(
    cfg: OptimConfig, params: list[torch.Tensor], seed: int, device: torch.device | str = "cpu"
) -> UpdateRule:
    """The update rule `cfg` (resolved) describes, over `params`: the entry's torch optimizer,
    the step-size schedule η_k = lr·rule(k), then the post-step transforms (SGDL's Langevin
    noise drawn from the run's "noise" stream, the projection onto ‖θ‖ ≤ project_radius)."""
    opts = OptimOptions(cfg)
    entry = optimizers.get(cfg.name, "optim.name")
    base: torch.optim.Optimizer = entry.factory(opts, params)
    post: list[PostStep] = []
    if entry.extra.get("post") == "langevin":
        post.append(LangevinNoise(opts.noise, opts.noise_decay, generator(seed, "noise", device)))
    if cfg.project_radius is not None:
        post.append(BallProjection(cfg.project_radius))
    return UpdateRule(params, base, StepSize(cfg.lr, cfg.schedule), post)


__all__ = [
    "BallProjection",
    "LangevinNoise",
    "OptimOptions",
    "StepSize",
    "UpdateRule",
    "build_rule",
    "optimizers",
]

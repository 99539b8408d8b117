"""Instruments with a schedule. `build_probes(cfg)` makes the probes a config lists."""

from __future__ import annotations

from typing import Any

from ..config import ProbesConfig
from . import basic, gamma, gradients, hessian, ntk  # noqa: F401  (registers)
from .base import ITERATION_NEEDS, Deferred, Probe, capturing
from .context import Reference, Runtime, StepContext, batch_loss_at, eval_mode
from .registry import probes
from .schedules import Schedule, each_step, epoch_ends, every, final_only, log_spaced, never, parse_schedule


def build_probes(cfg: ProbesConfig) -> list[Probe]:
    """Probes of a resolved ProbesConfig, in `use` order."""
    built = []
    for name in cfg.use:
        entry = probes.get(name, "probes.use")
        options: dict[str, Any] = dict(cfg.options.get(name, {}))
        built.append(entry.factory(name, **options))
    return built


__all__ = [
    "Deferred",
    "ITERATION_NEEDS",
    "Probe",
    "capturing",
    "Reference",
    "Runtime",
    "batch_loss_at",
    "Schedule",
    "StepContext",
    "build_probes",
    "each_step",
    "epoch_ends",
    "eval_mode",
    "every",
    "final_only",
    "log_spaced",
    "never",
    "parse_schedule",
    "probes",
]

"""A resumable training state: everything that decides the rest of the trajectory, as
tensors and plain values (loadable with weights_only=True)."""

from __future__ import annotations

from typing import Any

import torch

from .parts import Parts


def capture(parts: Parts, step: int, wall_time: float) -> dict[str, Any]:
    state = {
        "step": step,
        "wall_time": wall_time,
        "model": parts.model.state_dict(),
        "rule": parts.rule.state_dict(),
        "sampler": parts.sampler.state_dict(),
        "probes": {p.name: p.state_dict() for p in parts.probes},
        "torch_rng": torch.get_rng_state(),
    }
    if parts.device.type == "cuda":
        state["cuda_rng"] = torch.cuda.get_rng_state(parts.device)
    return state


def restore(parts: Parts, state: dict[str, Any]) -> int:
    """Load `state` into `parts`; returns the step to continue from."""
    parts.model.load_state_dict(state["model"])
    parts.rule.load_state_dict(state["rule"])
    parts.sampler.load_state_dict(state["sampler"])
    for probe in parts.probes:
        probe.load_state_dict(state["probes"].get(probe.name, {}))
    torch.set_rng_state(state["torch_rng"])
    if "cuda_rng" in state and parts.device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda_rng"], parts.device)
    return int(state["step"])

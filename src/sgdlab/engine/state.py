"""A resumable training state: everything that decides the rest of the trajectory, as
tensors and plain values (loadable with weights_only=True).

A state is a dict:

  step       the step k it was taken at (a step boundary: θ_k, before update k)
  wall_time  seconds of training so far, so a resumed run reports the total
  model      the model's state_dict (θ_k and buffers)
  rule       the update rule's state: the torch optimizer's state_dict (momentum buffers, Adam
             moments) and its post-step transforms' (e.g. the Langevin noise generator); step
             sizes η_k are functions of k and need nothing
  sampler    the sampler's generator and current epoch order
  probes     each probe's own state (running sums, previous values), by probe name
  torch_rng  the global CPU generator (dropout and other global draws)
  cuda_rng   the CUDA generator of the run's device, on CUDA only

Restoring all of it makes the continued run bit-identical to one that was never stopped (on the
same kind of machine, with the same thread count). A state is loaded on the CPU; `restore`
puts the probes' floating-point tensors (saved references, eigenvectors, stored iterates) back
on the run's device, and leaves integer ones (indices, generator states) where they are.
"""

from __future__ import annotations

from typing import Any

import torch

from .parts import Parts


def capture(parts: Parts, step: int, wall_time: float) -> dict[str, Any]:
    """The resumable state of `parts` at step boundary `step` (see the module docstring).

    The model and optimizer tensors are the live ones, not copies: save the state before
    training goes on.
    """
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


def on_device(value: Any, device: torch.device) -> Any:
    """`value` (nested dicts, lists and tuples of tensors and plain values) with every
    floating-point tensor moved to `device`; other tensors (indices, generator states, which
    torch wants on the CPU) and plain values as they are."""
    if isinstance(value, torch.Tensor):
        return value.to(device) if value.is_floating_point() else value
    if isinstance(value, dict):
        return {k: on_device(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(on_device(v, device) for v in value)
    return value


def restore(parts: Parts, state: dict[str, Any]) -> int:
    """Load `state` (from `capture`) into `parts`; returns the step to continue from.

    Restores the model, update rule, sampler, probe states (floating tensors on the run's
    device, see `on_device`) and the global RNGs. A probe the state has nothing for is given
    an empty dict.
    """
    parts.model.load_state_dict(state["model"])
    parts.rule.load_state_dict(state["rule"])
    parts.sampler.load_state_dict(state["sampler"])
    for probe in parts.probes:
        probe.load_state_dict(on_device(state["probes"].get(probe.name, {}), parts.device))
    torch.set_rng_state(state["torch_rng"])
    if "cuda_rng" in state and parts.device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda_rng"], parts.device)
    return int(state["step"])

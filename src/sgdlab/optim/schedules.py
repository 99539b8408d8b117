"""Step-size rules η_k (Giselsson's lecture on SGD's qualitative convergence behavior). k counts epochs or steps; ⌈k/K⌉ grows
by one every K units. `g` is the minibatch gradient norm, computed only by rules that use it.

  constant       η_k = γ0
  inverse        η_k = γ0 / (1 + ⌈k/K⌉)
  inverse-sqrt   η_k = γ0 / (1 + √⌈k/K⌉)
  grad-damped    η_k = γ0 / (α‖g_k‖ + 1)
  combined       η_k = γ0 / ((1 + ψ(⌈k/K⌉)) (α‖g_k‖ + 1)),  ψ(x) = c·x or c·√x
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from ..config import ScheduleConfig


@dataclass(frozen=True)
class StepSize:
    """η_k as a function of the counter k (epochs or steps) and, lazily, the gradient norm."""

    lr: float
    cfg: ScheduleConfig

    @property
    def constant(self) -> bool:
        return self.cfg.name == "constant"

    @property
    def needs_grad_norm(self) -> bool:
        return self.cfg.name in ("grad-damped", "combined")

    def __call__(self, step: int, epoch: int, grad_norm: Callable[[], float]) -> float:
        cfg = self.cfg
        if cfg.name == "constant":
            return self.lr
        k = epoch if cfg.unit == "epoch" else step
        phase = math.ceil(k / cfg.period)
        decay = {
            "inverse": 1.0 + phase,
            "inverse-sqrt": 1.0 + math.sqrt(phase),
            "combined": 1.0 + self.psi(phase),
        }.get(cfg.name, 1.0)
        damping = cfg.alpha * grad_norm() + 1.0 if self.needs_grad_norm else 1.0
        return self.lr / (decay * damping)

    def psi(self, x: float) -> float:
        return self.cfg.c * (x if self.cfg.psi == "linear" else math.sqrt(x))

"""Step-size rules η_k (Giselsson, "Stochastic gradient descent: qualitative convergence
behavior", lecture, Lund University), γ0 = optim.lr. k counts epochs or steps; ⌈k/K⌉ grows by
one every K units. `g` is the minibatch gradient norm, computed only by rules that use it.

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
        """η_k = lr for every k (the update rule then never rewrites the optimizer's lr)."""
        return self.cfg.name == "constant"

    @property
    def needs_grad_norm(self) -> bool:
        """Whether η_k depends on ‖g_k‖ (grad-damped and combined)."""
        return self.cfg.name in ("grad-damped", "combined")

    def __call__(self, step: int, epoch: int, grad_norm: Callable[[], float]) -> float:
        """η_k for k = `epoch` or `step` (per the schedule's unit); `grad_norm` is called only
        by the rules that damp by ‖g_k‖."""
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
        """ψ(x) of the combined rule: c·x (psi "linear") or c·√x (psi "sqrt")."""
        return self.cfg.c * (x if self.cfg.psi == "linear" else math.sqrt(x))

"""When a probe measures: small factories returning `Schedule`s (Cockpit's idea). A schedule
answers `due(step, steps_per_epoch)`; state probes also run at the final step.

Spec strings, as written in configs:  "step" · "every:K" · "epoch" · "epoch:K" ·
"log" / "log:BASE" (steps 0, 1, 2, … ⌊BASE^i⌋, default base 1.1) · "final" · "never".
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from typing import Callable

from ..errors import ConfigError


@dataclass(frozen=True)
class Schedule:
    spec: str
    rule: Callable[[int, int], bool]
    at_end: bool = True

    def due(self, step: int, steps_per_epoch: int) -> bool:
        return self.rule(step, steps_per_epoch)


def every(k: int) -> Schedule:
    return Schedule(f"every:{k}", lambda step, spe: step % k == 0)


def each_step() -> Schedule:
    return Schedule("step", lambda step, spe: True)


def epoch_ends(k: int = 1) -> Schedule:
    """Steps that end every k-th epoch (and step 0, the state before training)."""
    return Schedule("epoch" if k == 1 else f"epoch:{k}", lambda step, spe: step % (spe * k) == 0)


def final_only() -> Schedule:
    return Schedule("final", lambda step, spe: False)


def never() -> Schedule:
    return Schedule("never", lambda step, spe: False, at_end=False)


@dataclass
class _LogSteps:
    base: float
    steps: list[int] = field(default_factory=lambda: [0])
    _x: float = 1.0

    def __call__(self, step: int, spe: int) -> bool:
        while self.steps[-1] < step:
            self.steps.append(max(self.steps[-1] + 1, math.floor(self._x)))
            self._x *= self.base
        i = bisect.bisect_left(self.steps, step)
        return self.steps[i] == step


def log_spaced(base: float = 1.1) -> Schedule:
    """Steps 0, 1, 2, …, ⌊base^i⌋: evenly spaced on a log axis, dense early."""
    return Schedule(f"log:{base:g}", _LogSteps(base))


def parse_schedule(spec: str, key: str = "schedule") -> Schedule:
    name, _, arg = spec.partition(":")
    try:
        if name == "step" and not arg:
            return each_step()
        if name == "every" and int(arg) >= 1:
            return every(int(arg))
        if name == "epoch":
            if not arg or int(arg) >= 1:
                return epoch_ends(int(arg) if arg else 1)
        if name == "log":
            if not arg or float(arg) > 1:
                return log_spaced(float(arg) if arg else 1.1)
        if name in ("final", "never") and not arg:
            return final_only() if name == "final" else never()
    except ValueError:
        pass
    raise ConfigError(
        f"{key}: {spec!r} is not a schedule (step, every:K, epoch, epoch:K, log, log:BASE>1, final, never)"
    )

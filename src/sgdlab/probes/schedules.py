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

from ..errors import ConfigError, quote


@dataclass(frozen=True)
class Schedule:
    """When a probe measures: `rule(step, steps_per_epoch)`; `at_end` also measures the final
    step (state probes); `spec` is the config string it was parsed from."""

    spec: str
    rule: Callable[[int, int], bool]
    at_end: bool = True

    def due(self, step: int, steps_per_epoch: int) -> bool:
        """Whether the probe measures at `step`."""
        return self.rule(step, steps_per_epoch)


def every(k: int) -> Schedule:
    """Steps 0, k, 2k, … ("every:K")."""
    return Schedule(f"every:{k}", lambda step, spe: step % k == 0)


def each_step() -> Schedule:
    """Every step ("step")."""
    return Schedule("step", lambda step, spe: True)


def epoch_ends(k: int = 1) -> Schedule:
    """Steps that end every k-th epoch (and step 0, the state before training)."""
    return Schedule("epoch" if k == 1 else f"epoch:{k}", lambda step, spe: step % (spe * k) == 0)


def final_only() -> Schedule:
    """Only the final step ("final"; the end is where state probes measure anyway)."""
    return Schedule("final", lambda step, spe: False)


def never() -> Schedule:
    """Not at all, not even at the end ("never": the probe is listed but off)."""
    return Schedule("never", lambda step, spe: False, at_end=False)


@dataclass
class LogSteps:
    """The rule of `log_spaced`: steps 0, 1, 2, … ⌊base^i⌋, generated as far as asked."""

    base: float
    steps: list[int] = field(default_factory=lambda: [0])
    _x: float = 1.0

    def __call__(self, step: int, spe: int) -> bool:
        """Whether `step` is one of the log-spaced steps."""
        while self.steps[-1] < step:
            self.steps.append(max(self.steps[-1] + 1, math.floor(self._x)))
            self._x *= self.base
        i = bisect.bisect_left(self.steps, step)
        return self.steps[i] == step

    def up_to(self, last: int) -> list[int]:
        """The due steps in [0, last] (a handful: they grow geometrically)."""
        self(last, 1)
        return self.steps[: bisect.bisect_right(self.steps, last)]


def log_spaced(base: float = 1.1) -> Schedule:
    """Steps 0, 1, 2, …, ⌊base^i⌋: evenly spaced on a log axis, dense early."""
    return Schedule(f"log:{base:g}", LogSteps(base))


def parse_schedule(spec: str, key: str = "schedule") -> Schedule:
    """The Schedule a config string names (see the module docstring); a ConfigError naming `key`
    otherwise.

    >>> from sgdlab.probes import parse_schedule
    >>> s = parse_schedule("every:3")
    >>> [k for k in range(10) if s.due(k, steps_per_epoch=4)]
    [0, 3, 6, 9]
    >>> [k for k in range(10) if parse_schedule("epoch").due(k, 4)]
    [0, 4, 8]
    >>> [k for k in range(40) if parse_schedule("log:2").due(k, 1)]
    [0, 1, 2, 4, 8, 16, 32]
    """
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
        f"{key}: {quote(spec)} is not a schedule "
        "(step, every:K, epoch, epoch:K, log, log:BASE>1, final, never)"
    )

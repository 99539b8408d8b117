"""Which training points step k uses. Every sampler is a function of the step counter and its
own generator, so its state (generator + current order) is all a checkpoint needs.

  reshuffle  cyclic order, a fresh random permutation each epoch (the default)
  cyclic     fixed order 0..N-1, every epoch the same
  iid        each batch drawn uniformly with replacement; an epoch is ⌈N/B⌉ steps
  full       the whole training set every step (gradient descent)
"""

from __future__ import annotations

import math
from typing import Any

import torch

KINDS = ("reshuffle", "cyclic", "iid", "full")


class Sampler:
    def __init__(self, kind: str, n: int, batch_size: int, gen: torch.Generator, drop_last: bool = False):
        if kind not in KINDS:
            raise ValueError(f"sampler {kind!r} is not one of {', '.join(KINDS)}")
        if n < 1:
            raise ValueError("the training set is empty")
        self.kind, self.n, self.gen = kind, n, gen
        self.batch_size = n if kind == "full" else min(batch_size, n)
        per_epoch = n // self.batch_size if drop_last else math.ceil(n / self.batch_size)
        self.steps_per_epoch = max(1, per_epoch)
        self.order = torch.arange(n) if kind in ("cyclic", "reshuffle") else None

    def indices(self, step: int) -> torch.Tensor | slice:
        """Training-set indices of the batch of `step`; steps must be asked for in order."""
        if self.kind == "full":
            return slice(None)
        if self.kind == "iid":
            return torch.randint(0, self.n, (self.batch_size,), generator=self.gen)
        pos = step % self.steps_per_epoch
        if pos == 0 and self.kind == "reshuffle":
            self.order = torch.randperm(self.n, generator=self.gen)
        start = pos * self.batch_size
        return self.order[start : start + self.batch_size]

    def state_dict(self) -> dict[str, Any]:
        return {"gen": self.gen.get_state(), "order": self.order}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.gen.set_state(state["gen"])
        self.order = state["order"]

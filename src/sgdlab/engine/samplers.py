"""Which training points step k uses. Every sampler is a function of the step counter and its
own generator, so its state (generator + current order) is all a checkpoint needs.

  reshuffle  cyclic order, a fresh random permutation each epoch (the default)
  cyclic     fixed order 0..N-1, every epoch the same
  iid        each batch drawn uniformly with replacement; an epoch is ⌈N/B⌉ steps
  full       the whole training set every step (gradient descent)

An epoch is `steps_per_epoch` = ⌈N/B⌉ steps (⌊N/B⌋ with `drop_last`, at least 1). Under
`reshuffle` and `cyclic` every epoch visits each point exactly once (without replacement; the
last batch of an epoch is the remainder, smaller than B, unless `drop_last` drops it), so
epochs are real passes over the data. Under `iid` points are drawn with replacement, a point may
appear twice in one batch, and an "epoch" is only a count of steps, used by schedules.
"""

from __future__ import annotations

import math
from typing import Any

import torch

KINDS = ("reshuffle", "cyclic", "iid", "full")


class Sampler:
    """The minibatch index sequence B_0, B_1, … of one run (module docstring: the kinds).

    Args:
        kind: "reshuffle", "cyclic", "iid" or "full".
        n: the number of training points N.
        batch_size: B, clipped to N ("full" always uses N).
        gen: the generator every random draw comes from (the run's "sampler" stream).
        drop_last: count ⌊N/B⌋ steps per epoch instead of ⌈N/B⌉; under the cyclic orders this
            drops each epoch's incomplete last batch.
    """

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
        order = self.order
        assert order is not None  # set for the cyclic kinds, the only ones that reach here
        return order[start : start + self.batch_size]

    def state_dict(self) -> dict[str, Any]:
        """The generator state and the current epoch's order: enough to continue the sequence."""
        return {"gen": self.gen.get_state(), "order": self.order}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the sequence saved by `state_dict` (from the step it was saved at)."""
        self.gen.set_state(state["gen"])
        self.order = state["order"]

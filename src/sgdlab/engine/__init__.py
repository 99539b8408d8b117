"""The engine: samplers, the loop, resumable states.

`train` runs the loop on a `Parts` (see `engine.loop` for what happens at each step),
`Sampler` decides each step's minibatch, and `capture` / `restore` turn the whole training
state into a dict of tensors and back, which is what makes a killed run resumable.
"""

from .loop import Outcome, last_step, train
from .parts import Parts
from .samplers import Sampler
from .state import capture, restore

__all__ = ["Outcome", "Parts", "Sampler", "capture", "last_step", "restore", "train"]

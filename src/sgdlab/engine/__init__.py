"""The engine: samplers, the loop, resumable states."""

from .loop import Outcome, last_step, train
from .parts import Parts
from .samplers import Sampler
from .state import capture, restore

__all__ = ["Outcome", "Parts", "Sampler", "capture", "last_step", "restore", "train"]

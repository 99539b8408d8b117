"""Losses by name, in per-sample form (per-sample probes need it) and mean form (training),
and the classification error that goes with each target kind. For an output f(x) and target y:

  cross-entropy  ℓ = −log softmax(f(x))_y = log Σ_j exp f_j(x) − f_y(x)   (y a class index)
  squared        ℓ = ½‖f(x) − y‖²   (one-hot, ±1 or real y; a single output may be [N] or [N, 1])
  logistic       ℓ = log(1 + exp(−y·f(x)))   (y = ±1, one output)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from .errors import ConfigError
from .registry import Registry

losses: Registry[Loss] = Registry("loss")


@dataclass(frozen=True)
class Loss:
    """A loss ℓ(f(x), y) by name: the target kinds it accepts, its per-sample values [N] and
    their mean (what training minimizes). Calling it gives the mean."""

    name: str
    targets: tuple[str, ...]
    per_sample: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    mean: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

    def __call__(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(1/N) Σ_n ℓ(f(x_n), y_n) for model outputs `out` [N, k] and targets `y`."""
        return self.mean(out, y)


def _squeeze(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return out.squeeze(-1) if out.ndim == y.ndim + 1 and out.shape[-1] == 1 else out


def _squared(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    diff = _squeeze(out, y) - y
    return 0.5 * (diff * diff if diff.ndim == 1 else (diff * diff).sum(dim=1))


def _logistic(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.softplus(-y * _squeeze(out, y))


for _loss, _help in (
    (
        Loss(
            "cross-entropy", ("index",), lambda o, y: F.cross_entropy(o, y, reduction="none"), F.cross_entropy
        ),
        "softmax cross-entropy on class indices",
    ),
    (
        Loss("squared", ("onehot", "pm1", "real"), _squared, lambda o, y: _squared(o, y).mean()),
        "½‖f(x) − y‖² per sample (one-hot, ±1 or real targets)",
    ),
    (
        Loss("logistic", ("pm1",), _logistic, lambda o, y: _logistic(o, y).mean()),
        "log(1 + exp(−y·f(x))) with ±1 targets and one output",
    ),
):
    losses.register(_loss.name, help=_help, targets=_loss.targets)(_loss)


def get_loss(name: str, target_kind: str) -> Loss:
    """The loss `name`; a ConfigError (with the data.targets setting to try) when it does not
    accept the data's `target_kind`."""
    entry = losses.get(name, "train.loss")
    loss = entry.factory
    if not isinstance(loss, Loss):
        raise TypeError(f"loss {name!r} is registered as {loss!r}, not as a Loss")
    if target_kind not in loss.targets:
        hint = {"index": 'data.targets = "onehot" or "pm1"', "pm1": 'data.targets = "index"'}
        raise ConfigError(
            f"train.loss: {name!r} needs {' or '.join(loss.targets)} targets but the "
            f"data has {target_kind} targets" + (f" (try {hint[target_kind]})" if target_kind in hint else "")
        )
    return loss


def misclassified(out: torch.Tensor, y: torch.Tensor, target_kind: str) -> torch.Tensor | None:
    """Per-sample 0/1 misclassification, or None when the targets are not classes."""
    if target_kind == "index":
        return out.argmax(dim=1) != y
    if target_kind == "onehot":
        return out.argmax(dim=1) != y.argmax(dim=1)
    if target_kind == "pm1":
        return _squeeze(out, y) * y <= 0
    return None

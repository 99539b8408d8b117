"""The step sizes of `which-minimizer`'s runs, deterministic functions of a run's config (cached
per config, so planning and running compute the same numbers):

  gd_lr         2N/(λ_min + λ_max) of Θ̂ at θ_0 (`ntk.gd_learning_rate`)
  sign_step     |y_1 − f_0(x_1)|/‖φ_1‖₁ on one training point: the AdaGrad step whose first update
                lands the linearized net on y_1 (Example 1)
  searched_lr   the largest step of a doubling grid with a monotonically falling full-batch loss
                on a probe run (`settings.Search`), for methods without a theoretical step
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ...ntk import empirical_ntk, gd_learning_rate
from .settings import Search


@functools.lru_cache(maxsize=None)
def _gd_lr(key: str) -> float:
    from ... import runner

    parts = runner.prepare(json.loads(key))
    x = parts.data.train.x
    return gd_learning_rate(empirical_ntk(parts.model, x))


def gd_lr(raw: dict[str, Any]) -> float:
    """2N/(λ_min + λ_max) of Θ̂ at the θ_0 of config `raw` (cached per config)."""
    return _gd_lr(json.dumps(raw, sort_keys=True))


@functools.lru_cache(maxsize=None)
def _sign_step(key: str) -> float:
    from ... import runner

    parts = runner.prepare(json.loads(key))
    model, x, y = parts.model, parts.data.train.x, parts.data.train.y
    if len(x) != 1:
        raise ValueError(f"the sign-kernel step is for one training point, got {len(x)}")
    out = model(x).reshape(-1)[0]
    grads = torch.autograd.grad(out, [p for p in model.parameters() if p.requires_grad])
    l1 = sum(float(g.abs().sum()) for g in grads)
    return abs(float(y.reshape(-1)[0]) - float(out.detach())) / l1


def sign_step(raw: dict[str, Any]) -> float:
    """|y_1 − f_0(x_1)|/‖φ_1‖₁ at the θ_0 of the one-point config `raw` (cached per config): the
    AdaGrad step whose first update η·sign(g) lands the linearized net on y_1."""
    return _sign_step(json.dumps(raw, sort_keys=True))


@dataclass(frozen=True)
class SearchResult:
    """The step a `Search` chose (NaN if none was monotone) and every (lr, monotone, steps) it tried."""

    lr: float
    tried: tuple[tuple[float, bool, int], ...]  # (lr, monotone, steps run)


def monotone(losses: np.ndarray, tol: float) -> bool:
    """Whether `losses` are finite and never rise by more than a factor 1 + `tol` from one
    step to the next."""
    losses = np.asarray(losses, dtype=np.float64)
    return bool(np.all(np.isfinite(losses)) and np.all(losses[1:] <= losses[:-1] * (1 + tol)))


@functools.lru_cache(maxsize=None)
def _search(key: str, search: Search, start: float, up: bool) -> SearchResult:
    from ... import runner

    raw = json.loads(key)
    tried: list[tuple[float, bool, int]] = []

    def probe(lr: float) -> bool:
        cfg = dict(raw, optim=dict(raw["optim"], lr=lr), train=dict(raw["train"], max_steps=search.steps))
        result = runner.run(cfg)
        losses = result.metrics["batch_loss"].to_numpy(zero_copy_only=False)
        ok = result.status == "completed" and monotone(losses, search.tol)
        tried.append((lr, ok, int(result.summary["steps"])))
        return ok

    lr = start
    if probe(lr):
        while up and len(tried) < search.max_probes and probe(lr * search.factor):
            lr *= search.factor
    else:
        while len(tried) < search.max_probes:
            lr /= search.factor
            if probe(lr):
                break
        else:
            lr = math.nan
    return SearchResult(lr, tuple(tried))


def searched_lr(
    raw: dict[str, Any], search: Search, start: float | None = None, up: bool = True
) -> SearchResult:
    """The searched step of the full-batch config `raw` (cached per config); see `Search`."""
    start = search.start_for(raw["optim"]["name"]) if start is None else start
    return _search(json.dumps(raw, sort_keys=True), search, start, up)

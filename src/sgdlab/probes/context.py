"""What a probe can ask for at one step. Each quantity is computed on first request and
cached, so several probes due at the same step share one evaluation or one full gradient.
Full-set quantities are computed in eval mode (no dropout, BN running statistics), so they
are a function of θ alone and leave buffers and RNG streams untouched."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..data import Dataset
from ..losses import Loss, misclassified
from ..modes import DROPOUT_TYPES, dropout_off, eval_mode
from ..params import CHUNK, Vector, distance, flat_params, named_views, norm_and_distance, trainable


@dataclass
class Reference:
    """An earlier pass of the same run, for probes that need its end (deterministic replay):
    θ* (the final iterate, flat) and the minibatch loss it recorded at each step (NaN where
    not recorded), which the replay must reproduce."""

    theta_star: torch.Tensor
    batch_losses: torch.Tensor
    source: str = ""


@dataclass
class Runtime:
    """The parts probes read, fixed for the whole run."""

    model: nn.Module
    data: Dataset
    loss: Loss
    theta0: torch.Tensor
    eval_batch_size: int
    reference: Reference | None = None

    def __post_init__(self) -> None:
        self.work: torch.Tensor | None = None  # scratch row of `StepContext.distance`
        self.snapshot: torch.Tensor | None = None  # θ_k of the step in progress (`StepContext.snapshot`)

    @property
    def has_dropout(self) -> bool:
        """Whether the model has a dropout layer with p > 0 (its training loss is then random)."""
        return any(isinstance(m, DROPOUT_TYPES) and m.p > 0 for m in self.model.modules())


def _state_at(model: nn.Module, theta: torch.Tensor) -> dict[str, torch.Tensor]:
    """functional_call state: views of θ as the parameters, copies of the buffers."""
    state = {name: buf.clone() for name, buf in model.named_buffers()}
    state.update(named_views(model, theta))
    return state


@torch.no_grad()
def batch_loss_at(rt: Runtime, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> float:
    """ℓ(θ; B) computed the way training computes it (BN on the batch's statistics) but without
    dropout, and on copies of the buffers: no parameter, buffer or RNG stream changes."""
    with dropout_off(rt.model):
        out = torch.func.functional_call(rt.model, _state_at(rt.model, theta), (x,))
    return float(rt.loss(out, y))


BATCH_NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def batch_dependent(model: nn.Module) -> bool:
    """True when, in training mode, a sample's output depends on the rest of its batch (BN)."""
    return any(isinstance(m, BATCH_NORM_TYPES) for m in model.modules())


@torch.no_grad()
def sample_losses_at(rt: Runtime, theta: torch.Tensor) -> torch.Tensor:
    """ℓ_i(θ) of every training sample (float64, [n]) as `batch_loss_at` computes losses. For a
    batch-independent model ℓ(θ; B) is the mean of these over B: one pass over the training
    set serves every minibatch of a run."""
    if batch_dependent(rt.model):
        raise ValueError("per-sample losses do not give minibatch losses of a model with batch norm")
    model, part = rt.model, rt.data.train
    state = _state_at(model, theta)
    out = torch.empty(len(part), dtype=torch.float64, device=theta.device)
    with dropout_off(model):
        for start in range(0, len(part), rt.eval_batch_size):
            x, y = rt.data.batch(part, slice(start, start + rt.eval_batch_size))
            losses = rt.loss.per_sample(torch.func.functional_call(model, state, (x,)), y)
            out[start : start + len(y)] = losses.double()
    return out


class StepContext:
    """What a probe can ask for at step k (see the module docstring): θ (`params`, `tensors`),
    θ_0, U_k and ‖U_k‖ (iteration probes with needs "update"), the minibatch B_k (`batch`,
    `indices`), ℓ(θ_k; B_k), full-set evaluation and the full gradient, each cached so that the
    probes due at one step share the work."""

    def __init__(
        self,
        rt: Runtime,
        step: int,
        epoch: float,
        *,
        before: torch.Tensor | None = None,
        batch: tuple[torch.Tensor, torch.Tensor] | None = None,
        indices: torch.Tensor | slice | None = None,
        batch_loss: float | None = None,
        lr: float | None = None,
    ):
        self.rt, self.step, self.epoch = rt, step, epoch
        self.model, self.data, self.loss = rt.model, rt.data, rt.loss
        self.params_before, self.batch, self.batch_loss, self.lr = before, batch, batch_loss, lr
        self.indices = indices  # where B_k sits in the training set
        self._cache: dict[object, object] = {}

    def _cached(self, key: object, compute):  # noqa: ANN001
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    @property
    def theta0(self) -> torch.Tensor:
        """θ_0, flat: the run's initial parameters."""
        return self.rt.theta0

    @property
    def params(self) -> torch.Tensor:
        """θ as one flat vector (after the update, in an iteration probe)."""
        return self._cached("params", lambda: flat_params(self.model))

    @torch.no_grad()
    def snapshot(self) -> torch.Tensor:
        """θ_k as one flat vector that stays valid until the next step's snapshot (the engine's
        θ_k before an update): `params` if a probe has asked for them, else a copy into a buffer
        the runtime reuses from step to step, since a fresh copy of a few MB costs its page
        faults at every step."""
        if "params" in self._cache:
            return self.params
        tensors = trainable(self.model)
        n, like = sum(t.numel() for t in tensors), tensors[0]
        buf = self.rt.snapshot
        if buf is None or buf.numel() != n or (buf.dtype, buf.device) != (like.dtype, like.device):
            buf = self.rt.snapshot = torch.empty(n, dtype=like.dtype, device=like.device)
        return torch.cat([t.detach().reshape(-1) for t in tensors], out=buf)

    @property
    def update(self) -> torch.Tensor:
        """U_k = (θ_k − θ_{k+1}) / η_k, whatever the optimizer."""
        if self.params_before is None or self.lr is None:
            raise RuntimeError("the update is only available to probes that declare needs={'update'}")
        return self._cached("update", lambda: (self.params_before - self.params) / self.lr)

    @property
    def update_norm(self) -> float:
        """‖U_k‖ without forming U_k."""
        if self.params_before is None or self.lr is None:
            raise RuntimeError("the update is only available to probes that declare needs={'update'}")
        return self._cached("update_norm", lambda: self.distance(self.params_before, self.tensors) / self.lr)

    @property
    def tensors(self) -> list[torch.Tensor]:
        """θ as the model's trainable parameter tensors (live: θ_k in a state probe, θ_{k+1} in
        an iteration probe); cheaper than `params` when no flat copy is needed."""
        return trainable(self.model)

    def distance(self, a: Vector, b: Vector) -> float:
        """‖a − b‖ of θ's given flat or as tensors (sgdlab.params.distance, scratch reused)."""
        return distance(a, b, self._work())

    def norm_and_distance(self, a: Vector, b: Vector) -> tuple[float, float]:
        """(‖a‖, ‖a − b‖) in one pass (sgdlab.params.norm_and_distance, scratch reused)."""
        return norm_and_distance(a, b, self._work())

    def _work(self) -> torch.Tensor:
        rt = self.rt
        if rt.work is None or rt.work.dtype != self.theta0.dtype or rt.work.device != self.theta0.device:
            rt.work = torch.empty(CHUNK, dtype=self.theta0.dtype, device=self.theta0.device)
        return rt.work

    @property
    def batch_loss_before(self) -> float:
        """ℓ(θ_k; B_k) as `batch_loss_at` defines it: the training loss itself unless the model
        has dropout, whose masks make the training loss a different, random quantity."""

        def compute() -> float:
            if not self.rt.has_dropout:
                if self.batch_loss is None:
                    raise RuntimeError(
                        "ℓ(θ_k; B_k) is only available to probes that declare needs={'batch_loss'}"
                    )
                return self.batch_loss
            if self.params_before is None or self.batch is None:
                raise RuntimeError(
                    "ℓ(θ_k; B_k) of a model with dropout needs needs={'update', 'batch'} (θ_k and B_k)"
                )
            return batch_loss_at(self.rt, self.params_before, *self.batch)

        return self._cached("batch_loss_before", compute)

    def batch_loss_at(self, theta: torch.Tensor) -> float:
        """ℓ(θ; B_k) for any θ (see `batch_loss_at`)."""
        if self.batch is None:
            raise RuntimeError("B_k is only available to probes that declare needs={'batch'}")
        return batch_loss_at(self.rt, theta, *self.batch)

    def evaluate(self, split: str = "train") -> dict[str, float]:
        """Mean loss and error on a full split at the current θ."""
        return self._cached(("eval", split), lambda: self._evaluate(split))

    @torch.no_grad()
    def _evaluate(self, split: str) -> dict[str, float]:
        part = self.data.train if split == "train" else self.data.test
        n = len(part)
        if n == 0:
            return {}
        total_loss = torch.zeros((), dtype=torch.float64, device=part.x.device)
        total_err = torch.zeros((), dtype=torch.float64, device=part.x.device)
        has_error = True
        with eval_mode(self.model):
            for start in range(0, n, self.rt.eval_batch_size):
                x, y = self.data.batch(part, slice(start, start + self.rt.eval_batch_size))
                out = self.model(x)
                total_loss += self.loss.per_sample(out, y).sum(dtype=torch.float64)
                wrong = misclassified(out, y, self.data.target_kind)
                if wrong is None:
                    has_error = False
                else:
                    total_err += wrong.sum(dtype=torch.float64)
        result = {"loss": float(total_loss) / n}
        if has_error:
            result["error"] = float(total_err) / n
        return result

    def full_gradient(self) -> torch.Tensor:
        """∇ of the mean training loss at the current θ, as a flat vector (eval mode)."""
        return self._cached("full_grad", self._full_gradient)

    def _full_gradient(self) -> torch.Tensor:
        part = self.data.train
        n = len(part)
        params = [p for p in self.model.parameters() if p.requires_grad]
        total = [torch.zeros_like(p) for p in params]
        with eval_mode(self.model):
            for start in range(0, n, self.rt.eval_batch_size):
                x, y = self.data.batch(part, slice(start, start + self.rt.eval_batch_size))
                chunk_loss = self.loss.per_sample(self.model(x), y).sum() / n
                for acc, g in zip(total, torch.autograd.grad(chunk_loss, params), strict=True):
                    acc += g
        return torch.cat([g.reshape(-1) for g in total])

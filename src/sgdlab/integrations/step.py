"""One step of an attached loop: the handle `with lab.step(x, y) as s` gives, what a step in
flight holds between `lab.begin` and `lab.end`, and two checks of the step against what the
probes assume: that the loss the user
backpropagated is a multiple of the batch mean of `loss_fn` (so per-sample gradients read off
their backward are right, `loss_scale`), and, in `sgdlab.replay`'s second pass, that the step's
minibatch loss repeats the first pass's (`check_replayed_loss`)."""

from __future__ import annotations

import math
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import torch

from ..errors import UserError
from ..losses import Loss
from ..probes import Probe, StepContext

SCALE_RTOL = 1e-2  # the backpropagated output gradient vs a multiple of the batch mean's


@dataclass
class StepHandle:
    """What `with lab.step(x, y) as s:` gives: the step number `s.index` (k) and a slot for the
    step's minibatch loss. Setting `s.loss = loss` is needed only when your model's forward is
    not what computes the loss's input (the lab then cannot read ℓ(θ_k; B_k) off it)."""

    index: int
    loss: Any = None


@dataclass
class PendingStep:
    """One step in flight, between `begin` and `end`."""

    handle: StepHandle
    epoch: float | None  # None (a null in the table) without steps_per_epoch
    ctx: StepContext
    batch: tuple[torch.Tensor, torch.Tensor]
    due: list[Probe]
    before: torch.Tensor | None
    row: dict[str, float]
    stack: ExitStack
    need_loss: bool
    watch_grad: bool
    lr: float | None = None
    loss: torch.Tensor | None = None
    seen: bool = False  # the model's forward ran inside the step
    output: torch.Tensor | None = None
    output_grad: torch.Tensor | None = None
    hooks: list[Any] = field(default_factory=list)

    def see_output(self, out: torch.Tensor, loss: Loss | None) -> None:
        """The model's forward inside the step gave `out`: keep ℓ(θ_k; B_k) (a tensor, no sync)
        and, when a probe reuses the step's backward, the output and (by a hook) its gradient."""
        self.seen = True
        if self.need_loss and loss is not None:
            with torch.no_grad():
                self.loss = loss(out.detach(), self.batch[1])
        if self.watch_grad and out.requires_grad:
            self.output = out.detach()
            self.hooks.append(out.register_hook(self._keep_grad))

    def _keep_grad(self, grad: torch.Tensor) -> None:
        self.output_grad = grad.detach()

    def release(self) -> None:
        """Remove the hooks on the step's output."""
        for h in self.hooks:
            h.remove()
        self.hooks = []

    def minibatch_loss(self, required: bool) -> float | None:
        """ℓ(θ_k; B_k): the loss the user set on the handle, else the one read off the forward;
        a UserError if a due probe (or, `required`, the replay check) needs it and neither is
        there."""
        if self.handle.loss is not None:
            value = self.handle.loss
            return float(value.detach()) if isinstance(value, torch.Tensor) else float(value)
        if self.loss is not None:
            return float(self.loss)
        wanting = [q.name for q in self.due if "batch_loss" in q.needs]
        if wanting or required:
            raise UserError(
                f"probes {wanting or ['(replay check)']} need the step's minibatch loss, but the lab did "
                "not see the model's forward inside the step: set it with `with lab.step(x, y) as s: "
                "...; s.loss = loss`"
            )
        return None


class ReplayMismatch(UserError):
    """The second pass of `sgdlab.replay` left the first: the training function is not deterministic."""


def loss_scale(loss: Loss, output: torch.Tensor, output_grad: torch.Tensor, y: torch.Tensor, k: int) -> float:
    """The backpropagated loss as a multiple c of the batch mean of `loss`, read off the output's
    gradient `output_grad`: the least-squares c in output_grad ≈ c · ∇_out mean_i ℓ_i (1.0 when
    within 1e-5 of it). Anything that is not a multiple within SCALE_RTOL (another loss, label
    smoothing, a per-token mean) is a UserError naming step `k`."""
    out = output.detach().requires_grad_(True)
    with torch.enable_grad():
        (expected,) = torch.autograd.grad(loss.per_sample(out, y).mean(), out)
    got, expected = output_grad.double().reshape(-1), expected.double().reshape(-1)
    ref = float(expected.dot(expected))
    c = float(got.dot(expected)) / ref if ref > 0 else 1.0
    misfit = float(torch.linalg.vector_norm(got - c * expected))
    relative = misfit / max(abs(c) * math.sqrt(ref), 1e-300)
    if not relative <= SCALE_RTOL or c == 0:
        raise UserError(
            f"step {k}: the loss you backpropagated is not the batch mean of loss_fn "
            f"(nor a multiple of it: the output gradients differ by {relative:.2g} relative); "
            "per-sample gradients read off your backward would be wrong. Backpropagate "
            "loss_fn(outputs, y).mean(), or pass the loss you train with as loss_fn"
        )
    return 1.0 if abs(c - 1.0) <= 1e-5 else c


def check_replayed_loss(first_pass: torch.Tensor, tol: float, k: int, loss: float) -> None:
    """Step k of the second pass must repeat the first pass's minibatch loss `first_pass[k]`
    to a relative `tol` (a NaN there is not checked); else a ReplayMismatch saying why."""
    if k >= len(first_pass):
        raise ReplayMismatch(
            f"the second pass reached step {k}, past the {len(first_pass)} steps of the first: "
            "train_fn does not train for a fixed number of steps"
        )
    expected = float(first_pass[k])
    if not math.isnan(expected) and not abs(loss - expected) <= tol * max(1.0, abs(expected)):
        raise ReplayMismatch(
            f"the second pass left the first at step {k}: minibatch loss {loss!r} vs {expected!r}. "
            "train_fn is not deterministic: seed the initialization, the data order (a seeded "
            "generator for the loader's shuffling) and dropout inside it; on a GPU use "
            "torch.use_deterministic_algorithms(True) (nondeterministic kernels differ run to run)"
        )

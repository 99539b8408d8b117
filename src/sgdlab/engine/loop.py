"""The training loop: one loop for every optimizer, sampler and probe.

Metrics row `step = k` describes iterate θ_k and the iteration θ_k → θ_{k+1}: state probes
measure θ_k before the update, iteration probes right after it. The row of the last step
holds state probes only. Resumable states are saved at step boundaries, before row k.

One pass of the loop, at step k:

1. Boundary: a resumable state is saved if the checkpoint policy says one is due (never at the
   step the loop started or resumed from), and a pending Ctrl-C / SIGTERM stops the run here,
   after saving a state.
2. State probes: the stop rules are checked (the step cap from `train.epochs` / `train.max_steps`;
   at epoch boundaries, `train.stop_loss` against the full training loss of θ_k); every state
   probe whose schedule is due — at the last step, every one that runs at the end — measures θ_k,
   and θ_k itself is saved if `checkpoint.iterates` asks for it. At the last step the loop ends
   here.
3. The update: the sampler gives the indices of B_k, the update rule takes one step on the
   minibatch loss ℓ(θ_k; B_k) (its forward and backward run inside the due iteration probes'
   `capture` contexts, so they can reuse it), then the due iteration probes measure with
   θ_k, θ_{k+1}, B_k, ℓ(θ_k; B_k) and η_k at hand. A non-finite minibatch loss ends the run as
   diverged.

After the loop θ_final is evaluated on the train and test splits, and at a completed stop every
probe's `finish` may add rows for earlier steps (merged by step) and a summary.

Host syncs. On a GPU, reading a number computed on the device (`.item()`, `float(t)`) makes
the host wait for every queued kernel; one per step keeps a small model's GPU idle between
steps. So the loop reads the minibatch loss only when it must: when an iteration probe is due
(it records ℓ(θ_k; B_k), or its row must be dropped if an earlier step diverged), before
anything else is recorded or saved (state probes, resumable states, iterates, the last step),
and at the progress report (at most every REPORT_SECONDS). Between those points the losses of
the quiet steps wait on the device (`PendingLosses`) and are checked together, with one read.
The first non-finite one ends the run as diverged at its own step, exactly as a step-by-step
check would; only the model may have gone on a few quiet steps (it is not finite by then
either). What remains per step are the reads the recorded metrics themselves need (each
probe's values), the gradient norm of the step-size rules that damp by ‖g_k‖, and the moves
of B_k's indices to the device (no sync: `non_blocking` from host memory).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from .. import faults
from ..config import TrainConfig
from ..errors import UserError
from ..params import all_finite, flat_params
from ..probes import Reference, Runtime, StepContext, capturing, parse_schedule
from ..store import Recorder
from .interrupt import StopRequest
from .parts import Parts
from .state import capture, restore

Progress = Callable[[int, float], None]  # (steps done, last minibatch loss)
REPORT_SECONDS = 0.2  # the progress report (and the check of the quiet steps' losses) at most this often


class PendingLosses:
    """The minibatch losses of steps not yet read on the host, kept on the device.

    `read` checks them all with one host read and empties the list: it returns the first step
    whose loss is not finite (None if all are) and the last step's loss as a float.

    >>> import torch
    >>> pending = PendingLosses()
    >>> for step, value in enumerate([0.5, 0.25, float("nan"), float("inf")]):
    ...     pending.add(step, torch.tensor(value))
    >>> pending.read()
    (2, inf)
    >>> len(pending), pending.read()
    (0, (None, nan))
    """

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.values: list[torch.Tensor] = []

    def __len__(self) -> int:
        return len(self.steps)

    def add(self, step: int, loss: torch.Tensor) -> None:
        """Keep ℓ(θ_step; B_step) (detached) for the next `read`."""
        self.steps.append(step)
        self.values.append(loss.detach())

    def read(self) -> tuple[int | None, float]:
        """(first step with a non-finite loss or None, the last loss) with one host read."""
        if not self.values:
            return None, math.nan
        values = torch.stack(self.values).tolist()
        steps = self.steps
        self.steps, self.values = [], []
        bad = next((s for s, v in zip(steps, values, strict=True) if not math.isfinite(v)), None)
        return bad, values[-1]


def autocast_enabled(device_type: str) -> bool:
    """Whether torch.autocast is active for `device_type` here (any torch ≥ 2.3)."""
    try:
        return bool(torch.is_autocast_enabled(device_type))  # torch ≥ 2.4
    except TypeError:  # torch 2.3: no device argument
        if device_type == "cpu":
            return bool(torch.is_autocast_cpu_enabled())
        return bool(torch.is_autocast_enabled())


def refuse_mixed_precision(device: torch.device) -> None:
    """A UserError when training would run under torch.autocast (mixed precision).

    sgdlab trains and measures in one floating type (`dtype`: float32 or float64): the probes
    recompute losses and gradients at θ_k and θ* in that type, and the γ replay must reproduce
    pass 1 bit for bit; under autocast the step's own loss would come from float16/bfloat16
    kernels and no longer match them.
    """
    if autocast_enabled(device.type):
        raise UserError(
            f"mixed precision is not supported: torch.autocast is active for {device.type}. sgdlab "
            "trains and measures in one floating type (config dtype = float32 or float64); the "
            "probes and the γ replay compare the step's loss with their own recomputation. "
            "Call sgdlab outside the autocast context."
        )


def on_device(idx: torch.Tensor | slice, device: torch.device) -> torch.Tensor | slice:
    """B_k's indices where the data lives: the sampler draws them on the CPU (its generator's
    stream is the same on every device); the copy from host memory is non-blocking (no sync)."""
    if isinstance(idx, slice) or idx.device == device:
        return idx
    return idx.to(device, non_blocking=True)


@dataclass
class Outcome:
    """How a call to `train` ended.

    Attributes:
        status: "completed", "diverged" or "interrupted".
        steps: the step counter at the end, i.e. the number of updates made (counting those
            before a resume); θ_steps is the final iterate.
        stop_reason: "epochs", "max_steps", "stop_loss", "diverged" or "interrupted".
        wall_time: seconds spent training, including the time recorded before a resume.
        final: θ_final evaluated on both splits, keyed "train_loss", "train_error",
            "test_loss", … (empty when interrupted).
        diverged_at: the step whose minibatch loss was not finite (or the step count, when the
            loss stayed finite but the final parameters are not); None if it did not diverge.
            `steps` is then diverged_at + 1, as if the loop had stopped right there, though the
            model may have gone on a few unrecorded steps (module docstring: host syncs).
        probe_summaries: what each probe's `finish` reported, by probe name.
    """

    status: str  # completed | diverged | interrupted
    steps: int
    stop_reason: str
    wall_time: float
    final: dict[str, float] = field(default_factory=dict)
    diverged_at: int | None = None
    probe_summaries: dict[str, dict[str, Any]] = field(default_factory=dict)


def last_step(train: TrainConfig, steps_per_epoch: int) -> int | None:
    """The step at which training stops by count (None: only the loss threshold stops it)."""
    caps = [
        c
        for c in (train.epochs * steps_per_epoch if train.epochs is not None else None, train.max_steps)
        if c is not None
    ]
    return min(caps) if caps else None


def train(
    parts: Parts,
    recorder: Recorder,
    *,
    theta0: torch.Tensor | None = None,
    reference: Reference | None = None,
    state: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> Outcome:
    """Train `parts` until a stop rule fires, sending every metrics row and state to `recorder`.

    See the module docstring for what happens at each step. Nothing is written here directly:
    the recorder decides what reaches disk.

    Args:
        parts: the model, data, loss, update rule, sampler and probes (their state is changed:
            the model ends at θ_final).
        recorder: receives metrics rows, resumable states, saved iterates and deferred rows.
        theta0: θ_0 as a flat vector, for probes that measure against it (e.g. `dist_init`);
            default: the model's parameters when `train` is called, before `state` is restored
            (so a resume must pass the recorded θ_0).
        reference: the final iterate and per-step losses of an earlier pass, for probes that
            need θ* (the replay pass of a two-phase run).
        state: a resumable state from `capture`; training continues from its step with every
            random stream and optimizer buffer as they were.
        progress: called with (steps done, last minibatch loss) at most about every 0.2 s, and
            once at the end with the final training loss (NaN when interrupted).

    Returns:
        The Outcome; its `final` metrics are also what a run's summary records.
    """
    cfg, model, data, rule, sampler = parts.config.train, parts.model, parts.data, parts.rule, parts.sampler
    spe = sampler.steps_per_epoch
    stop_at = last_step(cfg, spe)
    rt = Runtime(
        model,
        data,
        parts.loss,
        theta0 if theta0 is not None else flat_params(model),
        cfg.eval_batch_size,
        reference,
    )
    for probe in parts.probes:
        probe.setup(rt)
    save_iterate = parse_schedule(parts.config.checkpoint.iterates, "checkpoint.iterates")
    state_probes = [p for p in parts.probes if not p.iteration]
    iteration_probes = [p for p in parts.probes if p.iteration]
    step = restore(parts, state) if state is not None else 0
    start, wall_before = step, (state or {}).get("wall_time", 0.0)
    t0 = last_report = time.perf_counter()
    count_reason = "max_steps" if cfg.max_steps is not None and cfg.max_steps == stop_at else "epochs"
    status, reason, diverged_at = "completed", count_reason, None
    model.train()
    refuse_mixed_precision(parts.device)
    pending = PendingLosses()  # losses of quiet steps, not yet read (module docstring: host syncs)
    loss_value = math.nan  # the last minibatch loss read
    ctx: StepContext | None = None

    with StopRequest() as stop:
        while True:
            wall = wall_before + time.perf_counter() - t0
            epoch = step / spe
            last = stop_at is not None and step >= stop_at
            save_due = step > start and recorder.state_due(step)
            loss_check = not last and cfg.stop_loss is not None and step % spe == 0
            due_state = [p for p in state_probes if (last and p.schedule.at_end) or p.schedule.due(step, spe)]
            iterate_due = save_iterate.due(step, spe) or (last and save_iterate.at_end)
            if pending and (last or save_due or stop.requested or loss_check or due_state or iterate_due):
                bad, _ = pending.read()  # nothing is recorded past a step that diverged
                if bad is not None:
                    status, reason, diverged_at, step, ctx = "diverged", "diverged", bad, bad + 1, None
                    break
            if save_due:
                recorder.save_state(step, capture(parts, step, wall))
            if stop.requested:
                recorder.save_state(step, capture(parts, step, wall))
                status, reason = "interrupted", "interrupted"
                break

            # State probes see θ_k; at the last step every state probe that runs at the end does.
            row: dict[str, float] = {}
            ctx = None  # made only where something reads θ_k: most steps of a quiet run need none
            if loss_check or due_state or iterate_due or last:
                ctx = StepContext(rt, step, epoch)
                if loss_check and cfg.stop_loss is not None and ctx.evaluate("train")["loss"] < cfg.stop_loss:
                    last, reason = True, "stop_loss"
                    due_state = [p for p in state_probes if p.schedule.at_end or p.schedule.due(step, spe)]
                    iterate_due = iterate_due or save_iterate.at_end
                for probe in due_state:
                    _put(row, probe.measure(ctx), probe.name)
                if iterate_due:
                    recorder.save_iterate(step, ctx.params)
            if last:
                if row:
                    recorder.append(step, epoch, row)
                break

            # The update θ_k → θ_{k+1} on batch B_k.
            idx = sampler.indices(step)
            x, y = data.batch(data.train, on_device(idx, data.train.x.device))
            due = [p for p in iteration_probes if p.schedule.due(step, spe)]
            rule.zero_grad()
            if due:
                ctx = ctx or StepContext(rt, step, epoch)
                before = ctx.snapshot() if any("update" in p.needs for p in due) else None  # θ_k, a copy
                with capturing(due, ctx, (x, y)):  # due probes may reuse this forward/backward
                    loss = parts.loss(model(x), y)
                    loss.backward()
            else:
                loss = parts.loss(model(x), y)
                loss.backward()
            lr = rule.step(step, step // spe)
            pending.add(step, loss)
            bad = None
            if due:
                bad, loss_value = pending.read()
                if bad is not None and bad < step:  # an earlier quiet step diverged: no row here
                    status, reason, diverged_at, step, ctx = "diverged", "diverged", bad, bad + 1, None
                    break
                ictx = StepContext(
                    rt, step, epoch, before=before, batch=(x, y), indices=idx, batch_loss=loss_value, lr=lr
                )
                for probe in due:
                    _put(row, probe.measure(ictx), probe.name)
            faults.point("step")
            if row:
                recorder.append(step, epoch, row)
            if bad == step:
                status, reason, diverged_at = "diverged", "diverged", step
                step += 1
                break
            step += 1

            if time.perf_counter() - last_report > REPORT_SECONDS:
                last_report = time.perf_counter()
                if pending:
                    bad, loss_value = pending.read()
                    if bad is not None:
                        status, reason, diverged_at, step, ctx = "diverged", "diverged", bad, bad + 1, None
                        break
                recorder.maybe_flush(step)
                if progress is not None:
                    progress(step, loss_value)

    if status == "completed" and not all_finite(model):
        status, reason, diverged_at = "diverged", "diverged", step
    final: dict[str, float] = {}
    summaries: dict[str, dict[str, Any]] = {}
    if status != "interrupted":
        # At a completed stop the last state context already holds θ_final's evaluation.
        final_ctx = ctx if ctx is not None and ctx.step == step else StepContext(rt, step, step / spe)
        final = {
            f"{split}_{k}": v for split in ("train", "test") for k, v in final_ctx.evaluate(split).items()
        }
        if status == "completed":
            for probe in parts.probes:
                deferred = probe.finish(final_ctx)
                if deferred is not None:
                    recorder.merge(deferred.rows, spe)
                    summaries[probe.name] = deferred.summary
    if progress is not None:
        progress(step, final.get("train_loss", float("nan")))
    return Outcome(
        status, step, reason, wall_before + time.perf_counter() - t0, final, diverged_at, summaries
    )


def _put(row: dict[str, float], values: dict[str, float], probe: str) -> None:
    """Add a probe's values to the row; two probes reporting the same metric name is a bug."""
    clash = row.keys() & values.keys()
    if clash:
        raise RuntimeError(f"probe {probe} reports {sorted(clash)}, already reported by another probe")
    row.update(values)

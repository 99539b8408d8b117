"""The training loop: one loop for every optimizer, sampler and probe.

Metrics row `step = k` describes iterate θ_k and the iteration θ_k → θ_{k+1}: state probes
measure θ_k before the update, iteration probes right after it. The row of the last step
holds state probes only. Resumable states are saved at step boundaries, before row k.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from .. import faults
from ..config import TrainConfig
from ..params import all_finite, flat_params
from ..probes import Reference, Runtime, StepContext, capturing, parse_schedule
from ..store import Recorder
from .interrupt import StopRequest
from .parts import Parts
from .state import capture, restore

Progress = Callable[[int, float], None]  # (steps done, last minibatch loss)


@dataclass
class Outcome:
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
    theta0=None,
    reference: Reference | None = None,
    state: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> Outcome:
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

    with StopRequest() as stop:
        while True:
            wall = wall_before + time.perf_counter() - t0
            if step > start and recorder.state_due(step):
                recorder.save_state(step, capture(parts, step, wall))
            if stop.requested:
                recorder.save_state(step, capture(parts, step, wall))
                status, reason = "interrupted", "interrupted"
                break

            # State probes see θ_k; at the last step every state probe that runs at the end does.
            epoch = step / spe
            row: dict[str, float] = {}
            ctx = StepContext(rt, step, epoch)
            final = stop_at is not None and step >= stop_at
            if (
                not final
                and cfg.stop_loss is not None
                and step % spe == 0
                and ctx.evaluate("train")["loss"] < cfg.stop_loss
            ):
                final, reason = True, "stop_loss"
            for probe in state_probes:
                if (final and probe.schedule.at_end) or probe.schedule.due(step, spe):
                    _put(row, probe.measure(ctx), probe.name)
            if save_iterate.due(step, spe) or (final and save_iterate.at_end):
                recorder.save_iterate(step, ctx.params)
            if final:
                if row:
                    recorder.append(step, epoch, row)
                break

            # The update θ_k → θ_{k+1} on batch B_k.
            idx = sampler.indices(step)
            x, y = data.batch(data.train, idx)
            due = [p for p in iteration_probes if p.schedule.due(step, spe)]
            before = ctx.params if any("update" in p.needs for p in due) else None  # θ_k, a copy
            rule.zero_grad()
            with capturing(due, ctx, (x, y)):  # due probes may reuse this forward/backward
                loss = parts.loss(model(x), y)
                loss.backward()
            lr = rule.step(step, step // spe)
            loss_value = loss.item()
            if due:
                ictx = StepContext(
                    rt, step, epoch, before=before, batch=(x, y), indices=idx, batch_loss=loss_value, lr=lr
                )
                for probe in due:
                    _put(row, probe.measure(ictx), probe.name)
            faults.point("step")
            if row:
                recorder.append(step, epoch, row)
            if not math.isfinite(loss_value):
                status, reason, diverged_at = "diverged", "diverged", step
                step += 1
                break
            step += 1

            if time.perf_counter() - last_report > 0.2:
                last_report = time.perf_counter()
                recorder.maybe_flush(step)
                if progress is not None:
                    progress(step, loss_value)

    if status == "completed" and not all_finite(model):
        status, reason, diverged_at = "diverged", "diverged", step
    final: dict[str, float] = {}
    summaries: dict[str, dict[str, Any]] = {}
    if status != "interrupted":
        # At a completed stop the last state context already holds θ_final's evaluation.
        final_ctx = ctx if ctx.step == step else StepContext(rt, step, step / spe)
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
    clash = row.keys() & values.keys()
    if clash:
        raise RuntimeError(f"probe {probe} reports {sorted(clash)}, already reported by another probe")
    row.update(values)

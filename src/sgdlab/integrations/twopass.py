"""`sgdlab.replay(train_fn)`: θ*-dependent probes (γ) on a training function of your own, by
deterministic replay, as the engine does for `sgdlab.run` (sgdlab.runner).

`train_fn(attach)` is your whole training run — it builds the model, the optimizer and the
data order from fixed seeds, calls `attach(model, optimizer)` once and steps the lab. `replay`
calls it twice:

  pass 1  every probe except the θ*-dependent ones, plus the minibatch loss of every step;
          θ* is the final iterate
  pass 2  only the θ*-dependent probes (RUN/replay/), with θ* known, the minibatch loss of
          every step checked against pass 1's (exactly by default: `tol = 0`)

and merges pass 2's columns into the run's metrics. Memory is O(#params): θ* and one loss per
step. A second pass that leaves the first — nondeterministic kernels, a data order or dropout
not seeded — stops with a ReplayMismatch naming the step and the two losses.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from ..errors import UserError
from ..params import flat_params
from ..probes import Reference
from ..probes import probes as registry
from ..store import MetricsLog, RunDir
from ..store.metrics import merge_tables
from .lab import Lab, ReplayMismatch, attach

REPLAY_DIR = "replay"
AttachFn = Callable[..., Lab]


def _needs_theta_star(name: str, options: dict[str, Any]) -> bool:
    probe = registry.get(name, "probes").factory(name, **options)
    return "theta_star" in probe.needs


def _probe_tables(config: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """`config` with only the [probes.NAME] tables of `names` (a pass's probes)."""
    tables = {k: v for k, v in config.get("probes", {}).items() if k in names}
    return {**config, "probes": tables}


def replay(
    train_fn: Callable[[AttachFn], Any],
    out: str | Path | None = None,
    *,
    probes: Sequence[str] = ("gamma",),
    config: dict[str, Any] | None = None,
    tol: float = 0.0,
    **options: Any,
) -> Lab:
    """Run `train_fn` twice to measure the probes that need θ* (see the module docstring).

    Args:
        train_fn: called as `train_fn(attach)`; it must call `attach(model, optimizer)` once
            (with any other `sgdlab.attach` keyword but `out`, `probes`, `reference`) and step
            the lab it returns; an open lab is closed when train_fn returns.
        out: the run directory (None: in memory).
        probes: probe names, θ*-dependent (`gamma`) or not.
        config: as for `sgdlab.attach` (probe options under "probes").
        tol: the largest relative difference allowed between the two passes' minibatch losses.
        **options: passed to `sgdlab.attach` in both passes (loss_fn, eval_data, steps_per_epoch, …).

    Returns:
        The first pass's Lab, closed, its metrics holding both passes' columns.

    Raises:
        ReplayMismatch: the second pass left the first (with the step and both losses).
        UserError: train_fn did not attach, or an option `replay` sets itself was given.
    """
    config = dict(config or {})
    tables = config.get("probes", {})
    names = list(probes)
    star = [n for n in names if _needs_theta_star(n, tables.get(n, {}))]
    if not star:
        raise UserError(f"replay: none of the probes {names} needs θ* (use sgdlab.attach)")
    first = [n for n in names if n not in star]
    if "batch_loss" not in first:
        first.append("batch_loss")
    first_cfg = _probe_tables(config, first)
    first_cfg["probes"]["batch_loss"] = {**first_cfg["probes"].get("batch_loss", {}), "schedule": "step"}

    lab1 = _run_pass(train_fn, dict(options, out=out, probes=first, config=first_cfg), phase="train")
    steps = lab1.steps
    losses = torch.full((steps,), float("nan"), dtype=torch.float64)
    for k, value in lab1.batch_losses.items():
        losses[k] = value
    reference = Reference(flat_params(lab1.model), losses, str(lab1.path) if lab1.path else "memory")
    replay_out = Path(out) / REPLAY_DIR if out is not None else None
    lab2 = _run_pass(
        train_fn,
        dict(
            options,
            out=replay_out,
            probes=star,
            config=_probe_tables(config, star),
            reference=reference,
            overwrite=True,
        ),
        phase="replay",
        tol=tol,
    )
    if lab2.steps != steps:
        raise ReplayMismatch(
            f"the second pass made {lab2.steps} steps, the first {steps}: train_fn is not deterministic"
        )
    _merge(lab1, lab2)
    return lab1


def _run_pass(
    train_fn: Callable[[AttachFn], Any], fixed: dict[str, Any], phase: str, tol: float | None = None
) -> Lab:
    made: list[Lab] = []

    def attach_pass(model: torch.nn.Module, optimizer: Any, **kwargs: Any) -> Lab:
        clash = sorted(set(kwargs) & {"out", "probes", "reference", "resume"})
        if clash:
            raise UserError(f"replay: train_fn passed {clash} to attach; sgdlab.replay sets them")
        if made:
            raise UserError("replay: train_fn called attach twice; one training run attaches once")
        lab = attach(model, optimizer, **{**fixed, **kwargs})
        lab.keep_losses, lab.phase = True, phase
        if tol is not None:
            lab.verify_tol = tol
        made.append(lab)
        return lab

    train_fn(attach_pass)
    if not made:
        raise UserError("replay: train_fn never called attach(model, optimizer)")
    lab = made[0]
    if not lab.closed:
        lab.close()
    if lab.summary.get("status") not in ("completed", "running"):
        raise UserError(f"replay: the {phase} pass ended {lab.summary.get('status')}: nothing to replay")
    return lab


def _merge(lab1: Lab, lab2: Lab) -> None:
    """Pass 2's columns and probe summaries into pass 1's run, which is then completed."""
    recorder = lab1.recorder
    recorder.metrics = MetricsLog(merge_tables(recorder.metrics.table(), lab2.metrics))
    summary = recorder.summary
    summary.setdefault("probes", {}).update(lab2.summary.get("probes", {}))
    summary.update(status="completed", replay_wall_time_s=lab2.summary.get("wall_time_s"))
    summary.pop("phase", None)
    run_dir = recorder.run_dir
    if run_dir is None:
        recorder.flush()
        return
    run_dir.lock()
    try:
        recorder.flush()
    finally:
        run_dir.unlock()
    if lab2.path is not None:
        shutil.rmtree(RunDir(lab2.path).checkpoints, ignore_errors=True)


__all__ = ["ReplayMismatch", "replay"]

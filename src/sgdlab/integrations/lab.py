"""`sgdlab.attach`: the engine's probes on a training loop of your own.

    lab = sgdlab.attach(model, optimizer, out="runs/mine", probes=["norms", "gradients"],
                        loss_fn=per_sample_loss, eval_data=(x_val, y_val), steps_per_epoch=len(loader))
    for x, y in loader:
        with lab.step(x, y):              # state probes measure θ_k (and B_k) here
            loss = per_sample_loss(model(x), y).mean()
            loss.backward()
            optimizer.step(); optimizer.zero_grad()
                                          # iteration probes measure θ_k → θ_{k+1} here
    lab.close()                           # θ_final, summary.json status "completed"

Each `lab.step` is one step k of the engine's loop (sgdlab.engine.loop), cut where your code
goes: on entering, the state probes due at k measure θ_k and the due iteration probes' `capture`
contexts are entered (so the gradients probe reuses *your* forward and backward through its
hooks); on leaving, the iteration probes measure with θ_k, θ_{k+1}, B_k, ℓ(θ_k; B_k) (read off
your model's output by a forward hook, or the loss you hand over as `s.loss`) and η_k (the
optimizer's `param_groups[0]["lr"]` when it stepped). Row k of the metrics table gets both, as in
the engine, so the same model, data, seed and batches give the same table either way.

What is measured on fixed data (full-set loss and gradient, Hessian, NTK subset, the gradients
probe's `batch = "eval"`) uses `eval_data`: a pair (x, y), a {"train": (x, y), "test": (x, y)}
dict (`train_…` and `test_…` columns) or a `sgdlab.Dataset`; a pair counts as the training set
of the `train_…` columns. Without it, probes that need it are refused and the NTK probe uses
the first batch.

A probe never changes your trajectory: probes run with the torch RNG forked, every module's
train/eval flag restored and no parameter, buffer or `.grad` touched (bit-identical with and
without `attach`, tested). The run directory is the engine's (sgdlab.store.run_dir), written
crash-safe: rows, summary and the probes' state are flushed together every `flush_seconds`, at
`lab.flush()` and at `close()`; a process killed in between leaves every flushed row readable,
and `attach(..., resume=True, step=k)` on the restarted loop drops rows from step k on and
continues the probes from the state saved at k (call `lab.flush()` where you save your own
checkpoint to make that exact).

Under torch.distributed only rank 0 measures and writes; the other ranks get an inert lab. On
rank 0: `batch_loss` and the gradients probe (`batch = "train"`) see rank 0's local batch;
`update_norm`, `lr`, `norms`, `gamma` see θ, which every rank shares after DDP's all-reduce (the
update is the all-reduced one); `eval`, `grad_norm`, `hessian`, `ntk` and `batch = "eval"` see
rank 0's `eval_data` at the shared θ. Nothing a probe does is a collective.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from ..allocator import keep_freed_memory
from ..errors import UserError
from ..params import trainable
from ..probes import Probe
from .inputs import (
    LOSS_NEEDS,
    OutputsOf,
    as_dataset,
    as_loss,
    as_reference,
    build_attached,
    check_per_sample,
    check_probes,
    itself,
    probes_config,
    rank,
    run_config,
    unwrap,
)
from .loop import Lab
from .step import ReplayMismatch, StepHandle

__all__ = ["Lab", "ReplayMismatch", "StepHandle", "attach"]


def attach(
    model: nn.Module,
    optimizer: Any,
    out: str | Path | None = None,
    *,
    probes: Sequence[str | Probe] | None = None,
    loss_fn: Any = None,
    eval_data: Any = None,
    config: dict[str, Any] | None = None,
    steps_per_epoch: int | None = None,
    reference: Any = None,
    resume: bool = False,
    step: int | None = None,
    flush_seconds: float = 30.0,
    view: nn.Module | None = None,
    outputs: Callable[[Any], torch.Tensor] | None = None,
    overwrite: bool = False,
) -> Lab:
    """Attach sgdlab's probes to your own training loop; see the module docstring for the loop.

    Args:
        model: the network you train (a DistributedDataParallel wrapper is looked through).
        optimizer: its optimizer; η_k is read from `param_groups[0]["lr"]` when it steps.
        out: the run directory to create (None: keep the metrics in memory, `lab.metrics`).
        probes: registered probe names (`sgdlab list probes`) and/or Probe instances; default:
            the engine's defaults (those that need eval data only when it is given).
        loss_fn: (outputs, targets) → per-sample losses [N], a `sgdlab.losses` Loss, or a loss
            name; the loss you backpropagate must be their batch mean (or a multiple of it).
        eval_data: fixed data for full-set probes: (x, y), {"train": …, "test": …} or a Dataset.
        config: the tables of an sgdlab config; `probes` holds the probes' options as in a TOML
            config ({"probes": {"hessian": {"schedule": "every:50"}}}), `seed`, `train`, …
            are recorded in config.toml as given.
        steps_per_epoch: for the `epoch` column and epoch schedules (e.g. len(loader)).
        reference: θ*, a known minimizer, for the probes that need the end of the path (γ): a
            flat tensor, a state dict, a checkpoint file or a run directory.
        resume: continue the run in `out` (a missing one is started) from `step`.
        step: the step your restarted loop continues from (default: the last flush).
        flush_seconds: the longest time between two writes of rows, summary and probe state.
        view: the module probes evaluate as x → output tensor, sharing `model`'s parameters (for
            a model whose forward takes keyword inputs); default: the model itself, or
            `outputs(model(x))` when `outputs` is given.
        outputs: reads the output tensor from what `model`'s forward returns (default: itself).
        overwrite: replace a run already in `out`.

    Returns:
        The Lab: `with lab.step(x, y):` around each step, then `lab.close()`. Attaching also
        sets the process's C allocator to keep freed memory (sgdlab.allocator: fewer page
        faults for the step and the probes; SGDLAB_KEEP_FREED_MEMORY=0 leaves it alone).

    Raises:
        UserError: what cannot work, before anything is written: no trainable parameters; a
            loss_fn that does not return per-sample losses (checked on eval_data, else at the
            first step); per-sample gradients reusing the step of a model with batch norm in
            training mode; probes needing eval_data, θ* or steps_per_epoch without them.
    """
    module = unwrap(model)
    outputs = outputs or itself
    if view is None:
        view = module if outputs is itself else OutputsOf(module, outputs)
    if not trainable(module):
        raise UserError(
            f"{type(module).__name__} has no trainable parameters (requires_grad): nothing to measure"
        )
    user = dict(config or {})
    data = as_dataset(eval_data)
    param = trainable(module)[0]
    if data is not None:
        data = data.to(param.device, param.dtype)
    loss = as_loss(loss_fn)
    probes_cfg = probes_config(probes, user, data is not None)
    built = build_attached(probes_cfg, probes)
    lossy = [p.name for p in built if p.needs & LOSS_NEEDS]
    if loss is None and lossy:
        raise UserError(f"probes {lossy} need loss_fn: (outputs, targets) → per-sample losses [N]")
    check_probes(built, module, data, steps_per_epoch, reference)
    if data is not None and loss is not None:
        check_per_sample(view, loss, *data.batch(data.train, slice(0, 2)))
    cfg = run_config(module, optimizer, loss, data, probes_cfg, user)
    keep_freed_memory()  # the probes' temporaries reuse the step's pages (sgdlab.allocator)
    lab = Lab(
        model=module,
        view=view,
        outputs=outputs,
        optimizer=optimizer,
        probes=built,
        loss=loss,
        data=data,
        steps_per_epoch=steps_per_epoch,
        eval_batch_size=cfg.train.eval_batch_size,
        reference=as_reference(module, reference),
        flush_seconds=flush_seconds,
        active=rank() == 0,
        batch_size_given="batch_size" in user.get("train", {}),
    )
    if lab.active:
        lab._open(out, cfg, resume=resume, step=step, overwrite=overwrite)
    return lab

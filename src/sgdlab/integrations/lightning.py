"""sgdlab's probes in a Lightning `Trainer` (the extra `sgdlab[lightning]`).

    trainer = lightning.pytorch.Trainer(max_epochs=3, callbacks=[
        SgdlabCallback("runs/mine", probes=["norms", "gradients", "hessian"],
                       loss_fn=per_sample_loss, eval_data=(x_val, y_val))])

Each optimizer step is one `lab.step` of `sgdlab.attach` (sgdlab.integrations.lab): it begins at
`on_train_batch_start` (state probes at θ_k; the gradients probe's hooks go on for the step's own
forward and backward), takes ℓ(θ_k; B_k) from `on_before_backward`, and ends at
`on_train_batch_end`, after the optimizer step (update probes, η_k from the optimizer). The run
directory is created at `on_train_start` and completed at `on_train_end`; an exception marks it
failed. Steps per epoch come from the trainer. Automatic optimization with one optimizer and no
gradient accumulation (one batch per optimizer step) is what it measures; anything else is an
error at the start of training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import lightning.pytorch as pl
import torch

from ..errors import UserError
from .lab import Lab, StepHandle, attach


def first_two(batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y) of a batch given as a pair (or a longer tuple/list: its first two entries)."""
    if isinstance(batch, (tuple, list)) and len(batch) >= 2:
        return batch[0], batch[1]
    raise UserError("SgdlabCallback: the batch is not an (x, y) pair; pass split=lambda batch: (x, y)")


class SgdlabCallback(pl.Callback):
    """Attach sgdlab's probes to a Lightning training run (see the module docstring).

    Args:
        out: the run directory (None: in memory; `callback.lab.metrics`).
        split: batch → (x, y), the inputs the model takes and the targets of loss_fn.
        **options: `sgdlab.attach`'s options: probes, loss_fn, eval_data, config, ….
    """

    def __init__(
        self,
        out: str | Path | None = None,
        *,
        split: Callable[[Any], tuple[torch.Tensor, torch.Tensor]] = first_two,
        **options: Any,
    ):
        self.out, self.split, self.options = out, split, options
        self.lab: Lab | None = None
        self._handle: StepHandle | None = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Check the setup, then attach to the module and its optimizer."""
        if not pl_module.automatic_optimization or len(trainer.optimizers) != 1:
            raise UserError("SgdlabCallback: needs automatic optimization with one optimizer")
        if trainer.accumulate_grad_batches != 1:
            raise UserError(
                "SgdlabCallback: accumulate_grad_batches > 1 makes several batches one optimizer "
                "step; the probes measure one batch per step"
            )
        spe = trainer.num_training_batches
        options = dict(self.options)
        if isinstance(spe, int) and spe > 0:
            options.setdefault("steps_per_epoch", spe)
        self.lab = attach(pl_module, trainer.optimizers[0], self.out, **options)

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        """Step k begins: the state probes measure θ_k."""
        if self.lab is not None:
            self._handle = self.lab.begin(*self.split(batch))

    def on_before_backward(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: torch.Tensor
    ) -> None:
        """The step's minibatch loss, as the module computed it."""
        if self._handle is not None:
            self._handle.loss = loss.detach()

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """Step k ends after the optimizer step: the update probes measure θ_k → θ_{k+1}."""
        if self.lab is not None and self._handle is not None:
            self._handle = None
            self.lab.end()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """θ_final: the run is completed."""
        if self.lab is not None:
            self.lab.close()

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        """The run is marked failed (interrupted for Ctrl-C) with what was recorded kept."""
        if self.lab is not None and not self.lab.closed:
            self.lab.abort(exception)


__all__ = ["SgdlabCallback"]

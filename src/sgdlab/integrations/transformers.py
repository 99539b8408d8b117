"""sgdlab's probes in a Hugging Face `Trainer` (the extra `sgdlab[transformers]`).

    trainer = transformers.Trainer(model, args, train_dataset=..., callbacks=[
        SgdlabCallback("runs/mine", probes=["norms", "gradients", "hessian"],
                       eval_data=(input_ids, labels))])

Each optimizer step is one `lab.step` of `sgdlab.attach` (sgdlab.integrations.lab). HF callbacks do
not see the batch, so the step begins in a forward pre-hook on the model at the first forward
after `on_step_begin` (the batch's `input_ids` and `labels`; state probes at θ_k, the gradients
probe's hooks on for that forward and its backward), takes ℓ(θ_k; B_k) from the model output's
`loss`, and ends at `on_optimizer_step`, right after the optimizer step (update probes, η_k from
the optimizer). The probes evaluate the model as input_ids → logits (`LogitsView`); the default
loss_fn is the per-sample cross-entropy of sequence classification (labels [N], logits [N, C]),
the mean of which is what such a model trains on. Other inputs (attention masks) are not passed
to the probes' own evaluations: measure on unpadded sequences. One batch per optimizer step
(gradient_accumulation_steps = 1) is what it measures; anything else is an error at the start.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import transformers
from torch import nn

from ..errors import UserError
from .lab import Lab, StepHandle, attach


def sequence_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """ℓ_i = −log softmax(logits_i)_{labels_i}: the per-sample loss of sequence classification."""
    return F.cross_entropy(logits, labels, reduction="none")


class LogitsView(nn.Module):
    """The model as x → logits for the probes: `model(**{input_name: x}).logits`, sharing its
    parameters."""

    def __init__(self, model: nn.Module, input_name: str = "input_ids"):
        super().__init__()
        self.model, self.input_name = model, input_name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the inputs x."""
        return self.model(**{self.input_name: x}).logits


def _logits(output: Any) -> Any:
    return getattr(output, "logits", output)


class SgdlabCallback(transformers.TrainerCallback):
    """Attach sgdlab's probes to a Hugging Face Trainer run (see the module docstring).

    Args:
        out: the run directory (None: in memory; `callback.lab.metrics`).
        input_name: the batch key of the model's input (x).
        label_name: the batch key of the targets (y).
        **options: `sgdlab.attach`'s options: probes, loss_fn, eval_data, config, ….
    """

    def __init__(
        self,
        out: str | Path | None = None,
        *,
        input_name: str = "input_ids",
        label_name: str = "labels",
        **options: Any,
    ):
        self.out, self.input_name, self.label_name, self.options = out, input_name, label_name, options
        self.lab: Lab | None = None
        self._armed = False
        self._handle: StepHandle | None = None
        self._hooks: list[Any] = []

    def on_train_begin(
        self, args: Any, state: Any, control: Any, model: nn.Module | None = None, **kwargs: Any
    ) -> None:
        """Check the setup, then attach to the model and its (unwrapped) optimizer."""
        if args.gradient_accumulation_steps != 1:
            raise UserError(
                "SgdlabCallback: gradient_accumulation_steps > 1 makes several batches one optimizer "
                "step; the probes measure one batch per step"
            )
        optimizer = kwargs.get("optimizer")
        if model is None or optimizer is None:
            raise UserError("SgdlabCallback: the Trainer passed no model or optimizer to on_train_begin")
        optimizer = getattr(optimizer, "optimizer", optimizer)  # accelerate's wrapper
        options = dict(self.options)
        options.setdefault("loss_fn", sequence_cross_entropy)
        loader = kwargs.get("train_dataloader")
        if loader is not None and "steps_per_epoch" not in options:
            options["steps_per_epoch"] = max(1, math.ceil(len(loader) / args.gradient_accumulation_steps))
        self.lab = attach(
            model, optimizer, self.out, view=LogitsView(model, self.input_name), outputs=_logits, **options
        )
        self._hooks = [
            model.register_forward_pre_hook(self._begin, with_kwargs=True),
            model.register_forward_hook(self._loss),
        ]

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """The next forward of the model is step k's."""
        self._armed = True

    def _begin(self, module: nn.Module, args: tuple, kwargs: dict[str, Any]) -> None:
        if not self._armed or self.lab is None:
            return
        self._armed = False
        if self.input_name not in kwargs or self.label_name not in kwargs:
            raise UserError(
                f"SgdlabCallback: the model was called without {self.input_name!r} and "
                f"{self.label_name!r} (pass input_name= and label_name=)"
            )
        self._handle = self.lab.begin(kwargs[self.input_name], kwargs[self.label_name])

    def _loss(self, module: nn.Module, args: tuple, output: Any) -> None:
        loss = getattr(output, "loss", None)
        if self._handle is not None and self._handle.loss is None and isinstance(loss, torch.Tensor):
            self._handle.loss = loss.detach()

    def on_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Step k ends right after the optimizer step: the update probes measure θ_k → θ_{k+1}."""
        if self.lab is not None and self._handle is not None:
            self._handle = None
            self.lab.end()

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """θ_final: the run is completed."""
        for hook in self._hooks:
            hook.remove()
        self._hooks = []
        if self.lab is not None:
            self.lab.close()


__all__ = ["LogitsView", "SgdlabCallback", "sequence_cross_entropy"]

"""The loop side of `sgdlab.attach` (see `integrations.lab` for the loop it serves): `Lab`
cuts each of the user's training steps where the engine's loop (sgdlab.engine.loop) measures —
state probes on entering, iteration probes on leaving — reads ℓ(θ_k; B_k) and the output's
gradient off the model's forward by hooks, and keeps every probe off the user's trajectory. The
run directory it writes is `integrations.run_files.RunFiles`'s."""

from __future__ import annotations

import atexit
import math
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, cast

import pyarrow as pa
import torch
from torch import nn

from .. import faults
from ..config import Config
from ..data import Dataset
from ..engine.loop import _put
from ..errors import UserError
from ..losses import Loss
from ..params import all_finite, trainable
from ..probes import Probe, Reference, Runtime, StepContext, capturing
from ..store import Recorder
from ..store.provenance import now
from ..two_pass import FINAL_KEYS
from .inputs import (
    NO_LOSS,
    check_per_sample,
    ctx_epoch,
)
from .run_files import RunFiles
from .step import PendingStep, StepHandle, check_replayed_loss, loss_scale


class Lab:
    """Probes attached to a loop of your own (see the module docstring); made by `attach`.

    Attributes:
        path: the run directory (None in memory).
        steps: the number of steps done, k of the next `lab.step`.
        active: False on the ranks other than 0 of a torch.distributed group (nothing happens there).
    """

    def __init__(
        self,
        *,
        model: nn.Module,
        view: nn.Module,
        outputs: Callable[[Any], torch.Tensor],
        optimizer: Any,
        probes: list[Probe],
        loss: Loss | None,
        data: Dataset | None,
        steps_per_epoch: int | None,
        eval_batch_size: int,
        reference: Reference | None,
        flush_seconds: float,
        active: bool,
        batch_size_given: bool,
    ):
        self.model, self.view, self.outputs, self.optimizer = model, view, outputs, optimizer
        self.probes, self.loss, self.data = probes, loss, data
        self.spe, self.eval_batch_size, self.reference = steps_per_epoch, eval_batch_size, reference
        self.active, self.batch_size_given = active, batch_size_given
        self.state_probes = [p for p in probes if not p.iteration]
        self.iteration_probes = [p for p in probes if p.iteration]
        self.steps = 0
        self.rt: Runtime | None = None
        self.files = RunFiles(flush_seconds)
        self.verify_tol: float | None = None  # set by sgdlab.replay's second pass
        self.closed = False
        self._pending: PendingStep | None = None
        self._busy = False
        self._hooks: list[Any] = []
        self._batch_noted = False
        self.diverged_at: int | None = None
        self.batch_losses: dict[int, float] = {}  # recorded when sgdlab.replay asks for them
        self.keep_losses = False
        self.phase: str | None = None  # "train" in sgdlab.replay's first pass: completed only once merged

    # --- opening -----------------------------------------------------------------------------

    def _open(
        self, out: str | Path | None, cfg: Config, *, resume: bool, step: int | None, overwrite: bool
    ) -> None:
        self.steps = self.files.open(
            out, cfg, self.model, self.optimizer, self.spe, resume=resume, step=step, overwrite=overwrite
        )
        self._hooks.append(self.model.register_forward_hook(self._on_forward))
        pre_hook = getattr(self.optimizer, "register_step_pre_hook", None)
        if pre_hook is not None:
            self._hooks.append(pre_hook(self._on_optimizer_step))
        if self.data is not None:
            self._setup(self.data)
        atexit.register(self._at_exit)

    def _setup(self, data: Dataset) -> None:
        """Give the probes their Runtime (once the data is known) and restore resumed states."""
        theta0 = self.files.theta0
        assert theta0 is not None
        loss = self.loss if self.loss is not None else NO_LOSS
        self.rt = Runtime(self.view, data, loss, theta0, self.eval_batch_size, self.reference)
        with self._guarded():
            for p in self.probes:
                p.setup(self.rt)
            for p in self.probes:
                if self.files.probe_states is not None:
                    p.load_state_dict(self.files.probe_states.get(p.name, {}))

    # --- the step ----------------------------------------------------------------------------

    @contextmanager
    def step(self, x: torch.Tensor, y: torch.Tensor) -> Iterator[StepHandle]:
        """One training step on the batch (x, y): run your forward, backward and optimizer step
        inside. Yields a StepHandle (`s.index` is k; set `s.loss` if the lab cannot see your
        model's output). An exception inside marks the run failed (interrupted for Ctrl-C),
        flushes what was recorded, and is re-raised."""
        try:
            handle = self.begin(x, y)
            yield handle
            self.end()
        except BaseException as exc:
            self.abort(exc)
            raise

    def begin(self, x: torch.Tensor, y: torch.Tensor) -> StepHandle:
        """Enter step k (what `with lab.step(x, y)` does first): the due state probes measure θ_k,
        θ_k is kept for the update probes, the due iteration probes' captures are entered."""
        handle = StepHandle(self.steps)
        if not self.active:
            return handle
        if self.closed:
            raise UserError("lab.step: the lab is closed")
        if self._pending is not None:
            raise UserError(f"lab.step: step {self._pending.handle.index} is still open (nested lab.step?)")
        if self.rt is None:
            self._first_batch(x, y)
        if not self._batch_noted:
            self._note_batch_size(len(y))
        assert self.rt is not None
        k, spe = self.steps, self.spe or 1
        epoch = self._epoch(k)
        ctx = StepContext(self.rt, k, ctx_epoch(epoch))
        row: dict[str, float] = {}
        due = [p for p in self.iteration_probes if p.schedule.due(k, spe)]
        stack = ExitStack()
        with self._guarded():
            for p in self.state_probes:
                if p.schedule.due(k, spe):
                    _put(row, p.measure(ctx), p.name)
            before = ctx.snapshot() if any("update" in p.needs for p in due) else None
            if due:
                stack.enter_context(capturing(due, ctx, (x, y)))
        need_loss = self.keep_losses or any("batch_loss" in p.needs for p in due)
        watch_grad = any(getattr(p, "from_step", False) for p in due)
        self._pending = PendingStep(
            handle, epoch, ctx, (x, y), due, before, row, stack, need_loss, watch_grad
        )
        return handle

    def end(self) -> None:
        """Leave the step (what the end of the `with` block does): the due iteration probes measure
        θ_k → θ_{k+1}, row k is recorded, and the rows are flushed if `flush_seconds` passed."""
        if not self.active:
            return
        p = self._pending
        if p is None:
            raise UserError("lab.end: no step is open")
        self._pending = None
        try:
            p.stack.close()
        finally:
            p.release()
        k = p.handle.index
        loss = p.minibatch_loss(required=self.verify_tol is not None)
        if self.verify_tol is not None and loss is not None:
            self._verify(k, loss)
        if p.due and self.rt is not None:
            lr = p.lr if p.lr is not None else float(self.optimizer.param_groups[0]["lr"])
            ictx = StepContext(
                self.rt,
                k,
                ctx_epoch(p.epoch),
                before=p.before,
                batch=p.batch,
                indices=None,
                batch_loss=loss,
                lr=lr,
            )
            with self._guarded():
                if p.watch_grad:
                    self._set_output_scale(p)
                for probe in p.due:
                    _put(p.row, probe.measure(ictx), probe.name)
        if self.keep_losses and loss is not None:
            self.batch_losses[k] = loss
        faults.point("step")
        if p.row:
            self.recorder.append(k, cast(float, p.epoch), p.row)  # None: a null epoch
        if loss is not None and not math.isfinite(loss) and self.diverged_at is None:
            self.diverged_at = k
        self.steps = k + 1
        if self.files.flush_due():
            self.flush()

    def _epoch(self, k: int) -> float | None:
        return k / self.spe if self.spe else None

    def _first_batch(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Without eval_data the first batch is the probes' fixed data (NTK subset); the loss is
        checked on it, and config.toml learns the batch size."""
        if self.loss is not None:
            check_per_sample(self.view, self.loss, x, y)
        self._setup(Dataset.from_tensors(x.detach(), y.detach(), name="first-batch"))

    def _note_batch_size(self, size: int) -> None:
        self._batch_noted = True
        if not self.batch_size_given and not self.steps:
            self.files.note_batch_size(size)

    def _on_forward(self, module: nn.Module, args: Any, output: Any) -> None:
        """The model's forward inside a step: keep ℓ(θ_k; B_k) (as a tensor, no sync) and, when a
        probe reuses the step's backward, the output's gradient."""
        p = self._pending
        if p is None or self._busy or p.seen:
            return
        out = self.outputs(output)
        if not isinstance(out, torch.Tensor):
            return
        p.see_output(out, self.loss)

    def _on_optimizer_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        if self._pending is not None:
            self._pending.lr = float(optimizer.param_groups[0]["lr"])

    def _set_output_scale(self, p: PendingStep) -> None:
        """The probes reusing the step's backward rescale by 1/c (`loss_scale`)."""
        if p.output is None or p.output_grad is None or self.loss is None:
            return
        c = loss_scale(self.loss, p.output, p.output_grad, p.batch[1], p.handle.index)
        for q in p.due:
            if getattr(q, "from_step", False):
                q.loss_scale = c  # type: ignore[attr-defined]

    def _verify(self, k: int, loss: float) -> None:
        ref = self.reference.batch_losses if self.reference is not None else torch.empty(0)
        assert self.verify_tol is not None
        check_replayed_loss(ref, self.verify_tol, k, loss)

    def abort(self, exc: BaseException) -> None:
        """End the run on an exception from the loop: an open step is dropped, the summary says
        "failed" ("interrupted" for Ctrl-C) with the error, and what was recorded is written."""
        p, self._pending = self._pending, None
        if p is not None:
            p.release()
            try:
                p.stack.close()
            except Exception:  # noqa: BLE001 - the user's exception is the one to see
                pass
        if not self.active or self.closed:
            return
        interrupted = isinstance(exc, KeyboardInterrupt)
        self.recorder.summary.update(
            status="interrupted" if interrupted else "failed",
            error=f"{type(exc).__name__}: {exc}",
            finished_at=now(),
        )
        self._finish_writing()

    # --- protection of the user's trajectory ----------------------------------------------------

    @contextmanager
    def _guarded(self) -> Iterator[None]:
        """Probes run here: the RNG streams forked, every module's train/eval flag put back, and
        the lab's own forward hook deaf (probes evaluate the model too)."""
        modes = [(m, m.training) for m in self.model.modules()]
        param = trainable(self.model)[0]
        devices = [param.device] if param.device.type == "cuda" else []
        self._busy = True
        try:
            with torch.random.fork_rng(devices=devices):
                yield
        finally:
            self._busy = False
            for m, training in modes:
                m.training = training

    # --- writing ----------------------------------------------------------------------------

    def flush(self) -> None:
        """Write rows, summary and the probes' state now (the state a resume at this step continues
        from): call it where you save your own checkpoint."""
        if not self.active or self.closed:
            return
        self.files.flush(self.steps, self._state())

    def _state(self) -> dict[str, Any]:
        return {
            "step": self.steps,
            "wall_time": self.files.wall_time(),
            "probes": {p.name: p.state_dict() for p in self.probes},
        }

    def state_dict(self) -> dict[str, Any]:
        """The lab's state at this step boundary: the step and every probe's state."""
        return self._state()

    def close(self) -> None:
        """End the run: the state probes measure θ_final (row `steps`), θ_final is evaluated on
        eval_data, each probe's `finish` adds its rows and summary, final.pt is saved and the
        summary says "completed" ("diverged" if a minibatch loss or θ_final is not finite)."""
        if not self.active or self.closed:
            return
        if self._pending is not None:
            raise UserError("lab.close: a step is still open")
        try:
            self._close()
        except BaseException as exc:
            self.abort(exc)
            raise

    def _close(self) -> None:
        k = self.steps
        summary = self.recorder.summary
        final: dict[str, float] = {}
        if self.rt is not None:
            epoch = self._epoch(k)
            ctx = StepContext(self.rt, k, ctx_epoch(epoch))
            row: dict[str, float] = {}
            with self._guarded():
                for p in self.state_probes:
                    if p.schedule.at_end or p.schedule.due(k, self.spe or 1):
                        _put(row, p.measure(ctx), p.name)
                if row:
                    self.recorder.append(k, cast(float, epoch), row)
                if self.data is not None:
                    final = {f"{s}_{m}": v for s in ("train", "test") for m, v in ctx.evaluate(s).items()}
                for p in self.probes:
                    deferred = p.finish(ctx)
                    if deferred is not None:
                        self.recorder.merge(deferred.rows, self.spe or 1)
                        summary.setdefault("probes", {})[p.name] = deferred.summary
        diverged = self.diverged_at is not None or not all_finite(self.model)
        summary.update(
            status="diverged" if diverged else "completed",
            steps=k,
            epochs=k / self.spe if self.spe else None,
            stop_reason="diverged" if diverged else "closed",
            wall_time_s=round(self.files.wall_time(), 3),
            finished_at=now(),
        )
        if self.phase == "train" and not diverged:
            summary.update(status="running", phase="replay")
        if self.diverged_at is not None:
            summary["diverged_at"] = self.diverged_at
        if final:
            summary["final"] = {key: final.get(key) for key in FINAL_KEYS} | final
        self.files.save_final(self.model)
        self._finish_writing()

    def _finish_writing(self) -> None:
        self.files.finish()
        for h in self._hooks:
            h.remove()
        self._hooks = []
        self.closed = True
        atexit.unregister(self._at_exit)

    def _at_exit(self) -> None:
        """The interpreter ends with the lab open: keep what was recorded, say it was not closed."""
        if self.active and not self.closed:
            self.recorder.summary.update(status="interrupted", stop_reason="lab.close() was not called")
            self._finish_writing()

    # --- reading ----------------------------------------------------------------------------

    @property
    def recorder(self) -> Recorder:
        """The engine's Recorder of this run: rows, summary, saved tensors."""
        return self.files.recorder

    @property
    def path(self) -> Path | None:
        """The run directory (None in memory)."""
        return self.files.path

    @property
    def metrics(self) -> pa.Table:
        """The metrics table so far (what `load_run(out).metrics` reads once flushed)."""
        return self.recorder.metrics.table()

    @property
    def summary(self) -> dict[str, Any]:
        """What summary.json holds (as of now)."""
        return self.recorder.summary

    def __enter__(self) -> "Lab":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc is None:
            self.close()
        elif not self.closed:
            self.abort(exc)

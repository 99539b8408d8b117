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

import atexit
import dataclasses
import math
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, cast

import pyarrow as pa
import torch
from torch import nn

from .. import faults
from ..build import resolve_probes
from ..config import CheckpointConfig, Config, ProbesConfig, config_to_toml, load_config
from ..data import Dataset
from ..data.dataset import TARGET_KINDS
from ..engine.loop import _put
from ..errors import ConfigError, UserError
from ..losses import Loss, losses
from ..params import all_finite, flat_params, trainable
from ..probes import Probe, Reference, Runtime, StepContext, build_probes, capturing
from ..probes.context import BATCH_NORM_TYPES
from ..probes.gamma import Gamma
from ..store import MetricsLog, Recorder, RunDir
from ..store.files import write_text
from ..store.provenance import now, versions
from ..two_pass import FINAL_KEYS
from .online_gamma import OnlineGamma

# The engine's default probes; those that need eval data are dropped when there is none.
DEFAULT_PROBES = ProbesConfig().use
DATA_NEEDS = frozenset({"eval", "full_grad"})
LOSS_NEEDS = DATA_NEEDS | {"batch"}
SCALE_RTOL = 1e-2  # the backpropagated output gradient vs a multiple of the batch mean's


@dataclass
class StepHandle:
    """What `with lab.step(x, y) as s:` gives: the step number `s.index` (k) and a slot for the
    step's minibatch loss. Setting `s.loss = loss` is needed only when your model's forward is
    not what computes the loss's input (the lab then cannot read ℓ(θ_k; B_k) off it)."""

    index: int
    loss: Any = None


@dataclass
class _Pending:
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


def _itself(output: Any) -> Any:
    return output


class OutputsOf(nn.Module):
    """The model as x → output tensor for the probes, when its forward returns more (a dict, a
    ModelOutput): `outputs(model(x))`, sharing the model's parameters."""

    def __init__(self, model: nn.Module, outputs: Callable[[Any], torch.Tensor]):
        super().__init__()
        self.model, self.outputs = model, outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The output tensor of x."""
        return self.outputs(self.model(x))


def ctx_epoch(epoch: float | None) -> float:
    """A StepContext's epoch: NaN where the table has a null (epochs unknown)."""
    return math.nan if epoch is None else epoch


def _unwrap(model: nn.Module) -> nn.Module:
    """The module inside DistributedDataParallel / DataParallel (probes never call the wrapper,
    so no probe is a collective)."""
    parallel = (nn.parallel.DistributedDataParallel, nn.DataParallel)
    return model.module if isinstance(model, parallel) else model


def _rank() -> int:
    dist = torch.distributed
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def as_loss(loss_fn: Any) -> Loss | None:
    """`loss_fn` as an sgdlab Loss: a Loss as it is, a registered name ("cross-entropy"), or a
    callable (outputs, targets) → per-sample losses [N], whose batch mean is the training loss."""
    if loss_fn is None or isinstance(loss_fn, Loss):
        return loss_fn
    if isinstance(loss_fn, str):
        entry = losses.get(loss_fn, "loss_fn").factory
        assert isinstance(entry, Loss)
        return entry
    if not callable(loss_fn):
        raise UserError(f"loss_fn: {loss_fn!r} is not a callable, a Loss or a loss name")
    name = getattr(loss_fn, "__name__", "custom")
    name = "custom" if not name.isidentifier() else name
    return Loss(name, TARGET_KINDS, loss_fn, lambda out, y: loss_fn(out, y).mean())


def as_dataset(eval_data: Any) -> Dataset | None:
    """`eval_data` as a Dataset: a Dataset, a pair (x, y) (the `train` split) or a dict
    {"train": (x, y), "test": (x, y)}."""
    if eval_data is None or isinstance(eval_data, Dataset):
        return eval_data
    if isinstance(eval_data, dict):
        unknown = set(eval_data) - {"train", "test"}
        if unknown or "train" not in eval_data:
            raise UserError(
                f"eval_data: a dict needs a 'train' pair and may have a 'test' one, got {sorted(eval_data)}"
            )
        test = eval_data.get("test") or (None, None)
        return Dataset.from_tensors(*eval_data["train"], *test, name="eval_data")
    if isinstance(eval_data, (tuple, list)) and len(eval_data) == 2:
        return Dataset.from_tensors(*eval_data, name="eval_data")
    raise UserError("eval_data: expected (x, y), {'train': (x, y), 'test': (x, y)} or a sgdlab.Dataset")


def flat_reference(module: nn.Module, reference: Any) -> torch.Tensor:
    """θ* as a flat vector in θ's order from a flat tensor, a state dict, or the path of a
    checkpoint (a saved state dict, or a run directory: its checkpoints/final.pt)."""
    if isinstance(reference, (str, Path)):
        path = Path(reference)
        if RunDir.is_run(path):
            reference = RunDir(path).load("final.pt")
        else:
            reference = torch.load(path, map_location="cpu", weights_only=True)
    names = [n for n, p in module.named_parameters() if p.requires_grad]
    if isinstance(reference, torch.Tensor):
        theta = reference.detach().reshape(-1)
    elif isinstance(reference, dict):
        missing = [n for n in names if n not in reference]
        if missing:
            raise UserError(f"reference: the state dict lacks the parameters {missing[:5]}")
        theta = torch.cat([reference[n].detach().reshape(-1) for n in names])
    else:
        raise UserError("reference: expected a flat tensor, a state dict or a checkpoint path")
    n_params = sum(p.numel() for p in trainable(module))
    if theta.numel() != n_params:
        raise UserError(f"reference: θ* has {theta.numel()} entries, the model {n_params}")
    return theta


def _batch_norms_in_training(module: nn.Module) -> list[str]:
    return [name for name, m in module.named_modules() if isinstance(m, BATCH_NORM_TYPES) and m.training]


def _check_probes(
    built: list[Probe], module: nn.Module, data: Dataset | None, spe: int | None, reference: Any
) -> None:
    """One clear error for what cannot work, before anything runs or is written."""
    coupled = _batch_norms_in_training(module)
    for p in built:
        if coupled and p.iteration and getattr(p, "reuse_step", False) and getattr(p, "batch", "") == "train":
            raise UserError(
                f"probe {p.name}: per-sample gradients are not defined for a model with batch norm "
                f"in training mode ({', '.join(coupled)}): each sample's output depends on the rest "
                f"of its batch. Options: config={{'probes': {{'{p.name}': {{'reuse_step': False}}}}}} "
                "measures them in eval mode (running statistics) by a separate pass over B_k; "
                f"{{'batch': 'eval'}} measures them on a fixed subset of eval_data in eval mode; or "
                "replace the layers by GroupNorm/LayerNorm, or keep them in eval mode"
            )
    needs_data = [p.name for p in built if p.needs & DATA_NEEDS]
    if data is None and needs_data:
        raise UserError(
            f"probes {needs_data} measure on fixed data: pass eval_data=(x, y) (or "
            "{'train': (x, y), 'test': (x, y)}, or a sgdlab.Dataset)"
        )
    if spe is None:
        by_epoch = [p.name for p in built if p.schedule.spec.startswith("epoch")]
        if by_epoch:
            raise UserError(
                f"probes {by_epoch} measure once per epoch, but the lab does not know how many steps "
                "an epoch has: pass steps_per_epoch=len(loader), or give them a step schedule, "
                "e.g. config={'probes': {'" + by_epoch[0] + "': {'schedule': 'every:100'}}}"
            )
    star = [p.name for p in built if "theta_star" in p.needs]
    if star and reference is None:
        raise UserError(
            f"probes {star} need θ*, the end of the path: pass reference= (a known minimizer: a "
            "tensor, a state dict or a checkpoint), or train twice with sgdlab.replay(train_fn)"
        )


def _check_per_sample(view: nn.Module, loss: Loss, x: torch.Tensor, y: torch.Tensor) -> None:
    """The loss must give one value per sample: checked on two samples, in eval mode, no grad."""
    n = min(2, len(x))
    modes = [(m, m.training) for m in view.modules()]
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            view.eval()
            values = loss.per_sample(view(x[:n]), y[:n])
    finally:
        for m, training in modes:
            m.training = training
    if not isinstance(values, torch.Tensor) or tuple(values.shape) != (n,):
        shape = tuple(values.shape) if isinstance(values, torch.Tensor) else type(values).__name__
        raise UserError(
            f"loss_fn returned {shape} for a batch of {n} samples: it must return one loss per "
            "sample, shape [N] (e.g. F.cross_entropy(outputs, targets, reduction='none')); the "
            "training loss is their mean"
        )


def _run_config(
    module: nn.Module,
    optimizer: Any,
    loss: Loss | None,
    data: Dataset | None,
    probes_cfg: ProbesConfig,
    user: dict[str, Any],
) -> Config:
    """The config.toml of an attached run: what is known of the loop (model and optimizer class,
    step size, loss, eval data, device) under the user's own `config` tables."""
    param = next(p for p in module.parameters())
    lr = float(optimizer.param_groups[0].get("lr", 0.0)) if getattr(optimizer, "param_groups", None) else 0.0
    raw: dict[str, Any] = {
        "device": "cuda" if param.device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "dtype": "float64" if param.dtype == torch.float64 else "float32",
        "data": {"name": data.name if data is not None else "own-loop"},
        "model": {"name": type(module).__name__},
        "optim": {"name": type(optimizer).__name__.lower(), **({"lr": lr} if lr > 0 else {})},
        "train": {"loss": loss.name if loss is not None else "none"},
    }
    if data is not None:
        raw["data"]["n_train"] = len(data.train)
    for key, value in user.items():
        if key == "probes":
            continue
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    return dataclasses.replace(load_config(raw=raw), probes=probes_cfg)


def _probes_config(
    probes: Sequence[str | Probe] | None, user: dict[str, Any], has_data: bool
) -> ProbesConfig:
    """The registered probes to build, with the user's options (checked as a config's are)."""
    table = dict(user.get("probes", {}))
    use = table.pop("use", None)
    if probes is not None:
        use = [p for p in probes if isinstance(p, str)]
    elif use is None:
        use = [n for n in DEFAULT_PROBES if has_data or n not in ("eval", "grad_norm")]
    try:
        return resolve_probes(ProbesConfig(use=tuple(use), options=table))
    except ConfigError as exc:
        raise ConfigError(f"config: {exc}") from None


def _build(probes_cfg: ProbesConfig, given: Sequence[str | Probe] | None) -> list[Probe]:
    """The registered probes of the config, then the Probe instances given; `gamma` measures
    ℓ(θ*; B_k) on the step's own batch here (OnlineGamma: a loop has no indexed training set)."""
    built = build_probes(probes_cfg) + [p for p in (given or []) if isinstance(p, Probe)]
    return [
        OnlineGamma(p.name, p.schedule.spec, p.mode, p.gap_tol, p.replay_tol) if isinstance(p, Gamma) else p
        for p in built
    ]


def as_reference(module: nn.Module, reference: Any) -> Reference | None:
    """`reference=` as the engine's Reference: θ* alone (no per-step losses to check)."""
    if reference is None or isinstance(reference, Reference):
        return reference
    return Reference(flat_reference(module, reference), torch.empty(0), "reference")


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
        The Lab: `with lab.step(x, y):` around each step, then `lab.close()`.

    Raises:
        UserError: what cannot work, before anything is written: no trainable parameters; a
            loss_fn that does not return per-sample losses (checked on eval_data, else at the
            first step); per-sample gradients reusing the step of a model with batch norm in
            training mode; probes needing eval_data, θ* or steps_per_epoch without them.
    """
    module = _unwrap(model)
    outputs = outputs or _itself
    if view is None:
        view = module if outputs is _itself else OutputsOf(module, outputs)
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
    probes_cfg = _probes_config(probes, user, data is not None)
    built = _build(probes_cfg, probes)
    lossy = [p.name for p in built if p.needs & LOSS_NEEDS]
    if loss is None and lossy:
        raise UserError(f"probes {lossy} need loss_fn: (outputs, targets) → per-sample losses [N]")
    _check_probes(built, module, data, steps_per_epoch, reference)
    if data is not None and loss is not None:
        _check_per_sample(view, loss, *data.batch(data.train, slice(0, 2)))
    cfg = _run_config(module, optimizer, loss, data, probes_cfg, user)
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
        active=_rank() == 0,
        batch_size_given="batch_size" in user.get("train", {}),
    )
    if lab.active:
        lab._open(out, cfg, resume=resume, step=step, overwrite=overwrite)
    return lab


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
        self.flush_seconds, self.active, self.batch_size_given = flush_seconds, active, batch_size_given
        self.state_probes = [p for p in probes if not p.iteration]
        self.iteration_probes = [p for p in probes if p.iteration]
        self.steps = 0
        self.path: Path | None = None
        self.rt: Runtime | None = None
        self.recorder = Recorder(None, CheckpointConfig())
        self.verify_tol: float | None = None  # set by sgdlab.replay's second pass
        self.closed = False
        self._pending: _Pending | None = None
        self._busy = False
        self._probe_states: dict[str, Any] | None = None
        self._hooks: list[Any] = []
        self._theta0: torch.Tensor | None = None
        self._cfg: Config | None = None
        self._t0 = time.perf_counter()
        self._wall_before = 0.0
        self._last_flush = time.monotonic()
        self._batch_noted = False
        self.diverged_at: int | None = None
        self.batch_losses: dict[int, float] = {}  # recorded when sgdlab.replay asks for them
        self.keep_losses = False
        self.phase: str | None = None  # "train" in sgdlab.replay's first pass: completed only once merged

    # --- opening -----------------------------------------------------------------------------

    def _open(
        self, out: str | Path | None, cfg: Config, *, resume: bool, step: int | None, overwrite: bool
    ) -> None:
        self._cfg = cfg
        theta0 = flat_params(self.model)
        summary = {
            "status": "running",
            "source": "attach",
            "seed": cfg.seed,
            "n_params": theta0.numel(),
            "steps": 0,
            "steps_per_epoch": self.spe,
            "device": cfg.device,
            "threads": cfg.threads,
            "model": type(self.model).__name__,
            "optimizer": type(self.optimizer).__name__,
            "versions": versions(),
            "started_at": now(),
            "resumes": 0,
        }
        if out is not None and resume and RunDir.is_run(out):
            self._resume(RunDir.open(out), step)
        else:
            run_dir = (
                RunDir.create(out, config_to_toml(cfg), overwrite=overwrite) if out is not None else None
            )
            if run_dir is not None:
                run_dir.lock()
            self.recorder = Recorder(run_dir, cfg.checkpoint)
            self.recorder.summary = summary
            self.recorder.save("init.pt", {k: v.detach().clone() for k, v in self.model.state_dict().items()})
            self._theta0 = theta0
            self.recorder.flush()
        self.path = self.recorder.run_dir.path if self.recorder.run_dir is not None else None
        self._hooks.append(self.model.register_forward_hook(self._on_forward))
        pre_hook = getattr(self.optimizer, "register_step_pre_hook", None)
        if pre_hook is not None:
            self._hooks.append(pre_hook(self._on_optimizer_step))
        if self.data is not None:
            self._setup(self.data)
        atexit.register(self._at_exit)

    def _resume(self, run_dir: RunDir, step: int | None) -> None:
        """Continue `run_dir` from `step`: rows from it on are dropped, probe states come from the
        newest saved state at or before it, θ_0 from init.pt."""
        run_dir.lock()
        run_dir.remove_temporaries()
        summary = run_dir.read_summary()
        if summary.get("source") != "attach":
            raise UserError(f"{run_dir.path}: not written by sgdlab.attach; continue it with `sgdlab resume`")
        init = run_dir.load("init.pt")
        names = [n for n, p in self.model.named_parameters() if p.requires_grad]
        param = trainable(self.model)[0]
        self._theta0 = torch.cat([init[n].reshape(-1) for n in names]).to(param.device, param.dtype)
        states = run_dir.states()
        start = step if step is not None else (states[-1][0] if states else 0)
        usable = [(k, p) for k, p in states if k <= start]
        metrics = MetricsLog(run_dir.read_metrics())
        metrics.truncate(start)
        self.recorder = Recorder(run_dir, self._cfg.checkpoint if self._cfg else CheckpointConfig(), metrics)
        self.recorder.summary = dict(
            summary, status="running", steps=start, resumes=summary.get("resumes", 0) + 1
        )
        for key in ("error", "final", "finished_at", "stop_reason"):
            self.recorder.summary.pop(key, None)
        if usable:
            state = run_dir.load(usable[-1][1].name)
            self._probe_states = state["probes"]
            self._wall_before = float(state.get("wall_time", 0.0))
            if usable[-1][0] != start:
                self.recorder.summary["probe_state_from"] = usable[-1][0]
        self.steps = start

    def _setup(self, data: Dataset) -> None:
        """Give the probes their Runtime (once the data is known) and restore resumed states."""
        assert self._theta0 is not None
        loss = self.loss if self.loss is not None else _NO_LOSS
        self.rt = Runtime(self.view, data, loss, self._theta0, self.eval_batch_size, self.reference)
        with self._guarded():
            for p in self.probes:
                p.setup(self.rt)
            for p in self.probes:
                if self._probe_states is not None:
                    p.load_state_dict(self._probe_states.get(p.name, {}))

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
            before = ctx.params if any("update" in p.needs for p in due) else None
            if due:
                stack.enter_context(capturing(due, ctx, (x, y)))
        need_loss = self.keep_losses or any("batch_loss" in p.needs for p in due)
        watch_grad = any(getattr(p, "from_step", False) for p in due)
        self._pending = _Pending(handle, epoch, ctx, (x, y), due, before, row, stack, need_loss, watch_grad)
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
            for h in p.hooks:
                h.remove()
        k = p.handle.index
        loss = self._batch_loss(p)
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
        if self.recorder.run_dir is not None and time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def _epoch(self, k: int) -> float | None:
        return k / self.spe if self.spe else None

    def _first_batch(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Without eval_data the first batch is the probes' fixed data (NTK subset); the loss is
        checked on it, and config.toml learns the batch size."""
        if self.loss is not None:
            _check_per_sample(self.view, self.loss, x, y)
        self._setup(Dataset.from_tensors(x.detach(), y.detach(), name="first-batch"))

    def _note_batch_size(self, size: int) -> None:
        self._batch_noted = True
        run_dir = self.recorder.run_dir
        if run_dir is None or self.batch_size_given or self._cfg is None or self.steps:
            return
        train = dataclasses.replace(self._cfg.train, batch_size=size)
        self._cfg = dataclasses.replace(self._cfg, train=train)
        write_text(run_dir.config_path, config_to_toml(self._cfg))

    def _on_forward(self, module: nn.Module, args: Any, output: Any) -> None:
        """The model's forward inside a step: keep ℓ(θ_k; B_k) (as a tensor, no sync) and, when a
        probe reuses the step's backward, the output's gradient."""
        p = self._pending
        if p is None or self._busy or p.seen:
            return
        out = self.outputs(output)
        if not isinstance(out, torch.Tensor):
            return
        p.seen = True
        if p.need_loss and self.loss is not None:
            with torch.no_grad():
                p.loss = self.loss(out.detach(), p.batch[1])
        if p.watch_grad and out.requires_grad:
            p.output = out.detach()

            def keep(grad: torch.Tensor, p: _Pending = p) -> None:
                p.output_grad = grad.detach()

            p.hooks.append(out.register_hook(keep))

    def _on_optimizer_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        if self._pending is not None:
            self._pending.lr = float(optimizer.param_groups[0]["lr"])

    def _batch_loss(self, p: _Pending) -> float | None:
        if p.handle.loss is not None:
            value = p.handle.loss
            return float(value.detach()) if isinstance(value, torch.Tensor) else float(value)
        if p.loss is not None:
            return float(p.loss)
        wanting = [q.name for q in p.due if "batch_loss" in q.needs]
        if wanting or self.verify_tol is not None:
            raise UserError(
                f"probes {wanting or ['(replay check)']} need the step's minibatch loss, but the lab did "
                "not see the model's forward inside the step: set it with `with lab.step(x, y) as s: "
                "...; s.loss = loss`"
            )
        return None

    def _set_output_scale(self, p: _Pending) -> None:
        """The backpropagated loss as a multiple c of the batch mean of loss_fn, read off the
        output's gradient; the probes reusing the step's backward rescale by 1/c. Anything that
        is not a multiple (another loss, label smoothing, a per-token mean) is an error."""
        if p.output is None or p.output_grad is None or self.loss is None:
            return
        out = p.output.detach().requires_grad_(True)
        with torch.enable_grad():
            (expected,) = torch.autograd.grad(self.loss.per_sample(out, p.batch[1]).mean(), out)
        got, expected = p.output_grad.double().reshape(-1), expected.double().reshape(-1)
        ref = float(expected.dot(expected))
        c = float(got.dot(expected)) / ref if ref > 0 else 1.0
        misfit = float(torch.linalg.vector_norm(got - c * expected))
        relative = misfit / max(abs(c) * math.sqrt(ref), 1e-300)
        if not relative <= SCALE_RTOL or c == 0:
            raise UserError(
                f"step {p.handle.index}: the loss you backpropagated is not the batch mean of loss_fn "
                f"(nor a multiple of it: the output gradients differ by {relative:.2g} relative); "
                "per-sample gradients read off your backward would be wrong. Backpropagate "
                "loss_fn(outputs, y).mean(), or pass the loss you train with as loss_fn"
            )
        c = 1.0 if abs(c - 1.0) <= 1e-5 else c
        for q in p.due:
            if getattr(q, "from_step", False):
                q.loss_scale = c  # type: ignore[attr-defined]

    def _verify(self, k: int, loss: float) -> None:
        ref = self.reference.batch_losses if self.reference is not None else torch.empty(0)
        if k >= len(ref):
            raise ReplayMismatch(
                f"the second pass reached step {k}, past the {len(ref)} steps of the first: "
                "train_fn does not train for a fixed number of steps"
            )
        expected = float(ref[k])
        assert self.verify_tol is not None
        if not math.isnan(expected) and not abs(loss - expected) <= self.verify_tol * max(1.0, abs(expected)):
            raise ReplayMismatch(
                f"the second pass left the first at step {k}: minibatch loss {loss!r} vs {expected!r}. "
                "train_fn is not deterministic: seed the initialization, the data order (a seeded "
                "generator for the loader's shuffling) and dropout inside it; on a GPU use "
                "torch.use_deterministic_algorithms(True) (nondeterministic kernels differ run to run)"
            )

    def abort(self, exc: BaseException) -> None:
        """End the run on an exception from the loop: an open step is dropped, the summary says
        "failed" ("interrupted" for Ctrl-C) with the error, and what was recorded is written."""
        p, self._pending = self._pending, None
        if p is not None:
            for h in p.hooks:
                h.remove()
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
        self.recorder.summary["steps"] = self.steps
        if self.recorder.run_dir is not None:
            self.recorder.save_state(self.steps, self._state())
        else:
            self.recorder.flush()
        self._last_flush = time.monotonic()

    def _state(self) -> dict[str, Any]:
        return {
            "step": self.steps,
            "wall_time": self._wall_before + time.perf_counter() - self._t0,
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
            wall_time_s=round(self._wall_before + time.perf_counter() - self._t0, 3),
            finished_at=now(),
        )
        if self.phase == "train" and not diverged:
            summary.update(status="running", phase="replay")
        if self.diverged_at is not None:
            summary["diverged_at"] = self.diverged_at
        if final:
            summary["final"] = {key: final.get(key) for key in FINAL_KEYS} | final
        self.recorder.save("final.pt", {n: v.detach().clone() for n, v in self.model.state_dict().items()})
        self._finish_writing()

    def _finish_writing(self) -> None:
        self.recorder.flush()
        if self.recorder.run_dir is not None:
            self.recorder.run_dir.unlock()
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


class ReplayMismatch(UserError):
    """The second pass of `sgdlab.replay` left the first: the training function is not deterministic."""


def _no_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    raise UserError("this probe needs loss_fn: pass (outputs, targets) → per-sample losses to sgdlab.attach")


_NO_LOSS = Loss("none", TARGET_KINDS, _no_loss, _no_loss)

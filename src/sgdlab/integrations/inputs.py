"""What a user hands to `sgdlab.attach`, made into what the engine's probes take and checked
before anything runs: the loss (a per-sample callable, a Loss or a name), the eval data, θ*
(a tensor, a state dict, a checkpoint or a run directory), the probes and their options, and
the config.toml an attached run records. Every check fails with one UserError that says what
to pass instead."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from ..build import resolve_probes
from ..config import Config, ProbesConfig, load_config
from ..data import Dataset
from ..data.dataset import TARGET_KINDS
from ..errors import ConfigError, UserError
from ..losses import Loss, losses
from ..params import trainable
from ..probes import Probe, Reference, build_probes
from ..probes.context import BATCH_NORM_TYPES
from ..probes.gamma import Gamma
from ..store import RunDir
from .online_gamma import OnlineGamma

# The engine's default probes; those that need eval data are dropped when there is none.
DEFAULT_PROBES = ProbesConfig().use
DATA_NEEDS = frozenset({"eval", "full_grad"})
LOSS_NEEDS = DATA_NEEDS | {"batch"}


def itself(output: Any) -> Any:
    """The model's output as the probes' output tensor (the default `outputs`)."""
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


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside DistributedDataParallel / DataParallel (probes never call the wrapper,
    so no probe is a collective)."""
    parallel = (nn.parallel.DistributedDataParallel, nn.DataParallel)
    return model.module if isinstance(model, parallel) else model


def rank() -> int:
    """This process's rank under torch.distributed (0 without it)."""
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


def check_probes(
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


def check_per_sample(view: nn.Module, loss: Loss, x: torch.Tensor, y: torch.Tensor) -> None:
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


def run_config(
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


def probes_config(probes: Sequence[str | Probe] | None, user: dict[str, Any], has_data: bool) -> ProbesConfig:
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


def build_attached(probes_cfg: ProbesConfig, given: Sequence[str | Probe] | None) -> list[Probe]:
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


def _no_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    raise UserError("this probe needs loss_fn: pass (outputs, targets) → per-sample losses to sgdlab.attach")


NO_LOSS = Loss("none", TARGET_KINDS, _no_loss, _no_loss)

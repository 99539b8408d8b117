"""config → parts. `resolve` checks a config against the registries and fills every default
(the result is what a run saves); `build_parts` turns a resolved config into data, model,
loss, update rule, sampler and probes. Both fail with a ConfigError before any work: a
number the run's dtype cannot hold, or a model too large for the memory there is, too."""

from __future__ import annotations

import dataclasses
import os
import warnings
from pathlib import Path
from types import GenericAlias
from typing import Any, Iterator

import torch
from torch import nn

from .allocator import keep_freed_memory
from .config import Config, ProbesConfig, check_range, convert, type_hints
from .data import Dataset, build_dataset, datasets
from .engine import Parts, Sampler
from .errors import ConfigError, quote, shorten
from .losses import get_loss, losses
from .models import build_model, models
from .optim import build_rule, optimizers
from .params import trainable
from .probes import build_probes, parse_schedule, probes
from .registry import Entry
from .seeding import derive_seed, generator

DEFAULT_EPOCHS = 10
CUBLAS_WORKSPACE = "CUBLAS_WORKSPACE_CONFIG"
DETERMINISTIC_CUBLAS = (":4096:8", ":16:8")  # the settings torch accepts for deterministic cuBLAS


def fill_options(section: Any, entry: Entry, prefix: str, kind: str) -> Any:
    """Reject entry-specific fields the entry does not read; fill unset ones from its defaults."""
    cls: type = type(section)
    hints = type_hints(cls)
    updates = {}
    for f in dataclasses.fields(section):
        value = getattr(section, f.name)
        if f.metadata.get("specific") and value is not None and f.name not in entry.options:
            reads = ", ".join(f"{prefix}.{k}" for k in entry.options) or "no extra options"
            raise ConfigError(f"{prefix}.{f.name}: not used by {kind} {entry.name!r} (it reads {reads})")
        if value is None and f.name in entry.options:
            key = f"{prefix}.{f.name}"
            default = convert(entry.options[f.name], hints[f.name], key)
            check_range(default, dict(f.metadata), key)
            updates[f.name] = default
    return dataclasses.replace(section, **updates)


def resolve_probes(cfg: ProbesConfig) -> ProbesConfig:
    """`probes` with every probe checked and its options complete: each name in `use` must be
    registered and listed once, options may only be given for listed probes and only the keys
    the probe reads, and each option is converted to the type of its default."""
    for name in cfg.options:
        if name not in probes:
            raise ConfigError(
                f"probes.{shorten(name)}: {quote(name)} is not one of {', '.join(probes.names())}"
            )
        if name not in cfg.use:
            raise ConfigError(f"probes.{name}: options given but {name!r} is not in probes.use")
    if len(set(cfg.use)) != len(cfg.use):
        raise ConfigError(f"probes.use: {list(cfg.use)} lists a probe twice")
    options = {}
    for name in cfg.use:
        entry = probes.get(name, "probes.use")
        given = cfg.options.get(name, {})
        merged = dict(entry.options)
        for key, value in given.items():
            where = f"probes.{name}.{key}"
            if key not in entry.options:
                raise ConfigError(f"{where}: unknown option (known: {', '.join(entry.options)})")
            default = entry.options[key]
            # A tuple default types its option as tuple[item type, ...].
            tp = (
                type(default)
                if not isinstance(default, tuple)
                else GenericAlias(tuple, (type(default[0]), ...))
            )
            merged[key] = convert(value, tp, where)
        parse_schedule(merged["schedule"], f"probes.{name}.schedule")
        options[name] = merged
    return ProbesConfig(use=cfg.use, options=options)


def resolve_device(name: str) -> str:
    """The device a config's `device` names: cpu, cuda, or for "auto" cuda when torch sees one.

    Asking for cuda where torch sees no CUDA device is a ConfigError.
    """
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: 'cuda' requested but torch sees no CUDA device (use cpu or auto)")
    return name


def replays(probes_cfg: ProbesConfig) -> bool:
    """Whether the probes make a run two-phase: one needs θ* (the γ probe in replay mode)."""
    return any("theta_star" in p.needs for p in build_probes(probes_cfg))


def resolve(cfg: Config) -> Config:
    """The fully specified config a run records: every name checked, every default filled.

    Checks the dataset, model, optimizer, loss and probe names against their registries,
    fills each entry's options, picks the sampler (an optimizer may force one, e.g. full-batch
    GD) and the default epoch count, and resolves the device. On CUDA a two-phase run (a probe
    that needs θ*, e.g. γ by replay) resolves to `deterministic = true`: its replay must repeat
    pass 1 bit for bit, which CUDA's default kernels do not promise. Idempotent: resolving a
    resolved config gives it back unchanged.
    """
    data = fill_options(cfg.data, datasets.get(cfg.data.name, "data.name"), "data", "dataset")
    if data.standardize is None:
        data = dataclasses.replace(data, standardize=True)
    model = fill_options(cfg.model, models.get(cfg.model.name, "model.name"), "model", "model")
    optim_entry = optimizers.get(cfg.optim.name, "optim.name")
    optim = fill_options(cfg.optim, optim_entry, "optim", "optimizer")
    if optim.betas is not None and (len(optim.betas) != 2 or not all(0 <= b < 1 for b in optim.betas)):
        raise ConfigError(f"optim.betas: {list(optim.betas)} must be two numbers in [0, 1)")
    losses.get(cfg.train.loss, "train.loss")

    train = cfg.train
    forced = optim_entry.extra.get("sampler")
    if forced and train.sampler not in ("auto", forced):
        raise ConfigError(
            f"train.sampler: {train.sampler!r} conflicts with "
            f"optim.name = {cfg.optim.name!r}, which uses the {forced} sampler"
        )
    if train.sampler == "auto":
        train = dataclasses.replace(train, sampler=forced or "reshuffle")
    if train.epochs is None and train.max_steps is None:
        train = dataclasses.replace(train, epochs=DEFAULT_EPOCHS)
    parse_schedule(cfg.checkpoint.iterates, "checkpoint.iterates")
    device = resolve_device(cfg.device)
    probes_cfg = resolve_probes(cfg.probes)
    deterministic = cfg.deterministic or (device == "cuda" and replays(probes_cfg))
    check_dtype_range(cfg)
    return dataclasses.replace(
        cfg,
        device=device,
        deterministic=deterministic,
        data=data,
        model=model,
        optim=optim,
        train=train,
        probes=probes_cfg,
    )


def _numbers(section: Any, prefix: str) -> Iterator[tuple[str, float]]:
    """(dotted key, value) of every float of a config section, nested sections and lists too."""
    for f in dataclasses.fields(section):
        value, key = getattr(section, f.name), f"{prefix}.{f.name}"
        if dataclasses.is_dataclass(value):
            yield from _numbers(value, key)
        elif isinstance(value, float):
            yield key, value
        elif isinstance(value, tuple):
            yield from ((f"{key}[{i}]", v) for i, v in enumerate(value) if isinstance(v, float))


def check_dtype_range(cfg: Config) -> None:
    """A ConfigError for a number of the data, model, optim or train sections that the run's
    dtype cannot hold (float32 ends at 3.4e38: `optim.lr = 1e308` would be inf in the update)."""
    largest = torch.finfo(getattr(torch, cfg.dtype)).max
    for prefix in ("data", "model", "optim", "train"):
        for key, value in _numbers(getattr(cfg, prefix), prefix):
            if abs(value) > largest:
                raise ConfigError(
                    f"{key}: {value:g} does not fit the run's dtype {cfg.dtype} (largest {largest:.3g}); "
                    'use a smaller value or dtype = "float64"'
                )


COPIES = 4  # of θ a run holds at least: parameters, gradients, θ_0 for the probes, its saved copy


def count_params_unallocated(cfg: Config, input_shape: tuple[int, ...], n_outputs: int) -> int | None:
    """The trainable parameters of the model `cfg` names, counted on torch's meta device (no
    memory allocated); None for a model that cannot be built there."""
    try:
        with torch.random.fork_rng(devices=[]), torch.device("meta"):
            model = build_model(cfg.model, input_shape, n_outputs)
    except ConfigError:
        raise
    except Exception:  # noqa: BLE001 - a model whose constructor computes with its weights
        return None
    return sum(p.numel() for p in trainable(model))


def available_memory(device: str) -> int | None:
    """Bytes a new allocation can take on `device`: free GPU memory for cuda; for the CPU the
    kernel's MemAvailable, within the cgroup's limit when there is one; None when unknown."""
    if device.startswith("cuda"):
        return int(torch.cuda.mem_get_info(torch.device(device))[0])
    try:
        meminfo = Path("/proc/meminfo").read_text()
        free = int(next(line.split()[1] for line in meminfo.splitlines() if line.startswith("MemAvailable:")))
        free *= 1024
    except (OSError, StopIteration, ValueError, IndexError):
        return None
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text())
        if limit != "max":
            free = min(free, int(limit) - used)
    except (OSError, ValueError):
        pass
    return free


def _gb(n: int) -> str:
    return f"{n / 1e9:,.1f} GB"


def check_memory(cfg: Config, input_shape: tuple[int, ...], n_outputs: int) -> None:
    """A ConfigError, before anything is allocated, for a model whose parameters cannot fit:
    COPIES × parameters × bytes per number against the memory available on the device."""
    n = count_params_unallocated(cfg, input_shape, n_outputs)
    free = available_memory(cfg.device)
    if n is None or free is None:
        return
    size = torch.finfo(getattr(torch, cfg.dtype)).bits // 8
    need = COPIES * n * size
    if need > free:
        raise ConfigError(
            f"model: {cfg.model.name} has {n:,} parameters; training it needs at least {_gb(need)} "
            f"({COPIES} copies × {n:,} × {size} bytes of {cfg.dtype}: parameters, gradients, θ_0 "
            f"twice) but {cfg.device} has {_gb(free)} available; choose a smaller model"
        )


def use_deterministic_algorithms(device: torch.device) -> None:
    """`deterministic = true`: torch.use_deterministic_algorithms(True), and on CUDA the cuBLAS
    workspace setting torch then requires, CUBLAS_WORKSPACE_CONFIG=:4096:8 (unless it already
    holds one of the two deterministic settings). cuBLAS reads it when CUDA starts in the
    process: if CUDA is already in use, or the variable held another value, a warning says so
    (export it before starting Python to be sure)."""
    if device.type == "cuda" and os.environ.get(CUBLAS_WORKSPACE) not in DETERMINISTIC_CUBLAS:
        was = os.environ.get(CUBLAS_WORKSPACE)
        if torch.cuda.is_initialized() or was is not None:
            warnings.warn(
                f"deterministic = true on CUDA: setting {CUBLAS_WORKSPACE}={DETERMINISTIC_CUBLAS[0]} "
                f"(it was {'unset' if was is None else repr(was)}"
                f"{' and CUDA had already started' if torch.cuda.is_initialized() else ''}); export it "
                "before starting Python so that cuBLAS uses it from the start",
                stacklevel=3,
            )
        os.environ[CUBLAS_WORKSPACE] = DETERMINISTIC_CUBLAS[0]
    torch.use_deterministic_algorithms(True)


def build_model_seeded(cfg: Config, input_shape: tuple[int, ...], n_outputs: int) -> nn.Module:
    """The model with θ_0 drawn from the run's "init" stream, on the CPU (so θ_0 does not
    depend on the device)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(cfg.seed, "init"))
        return build_model(cfg.model, input_shape, n_outputs)


def build_parts(cfg: Config, *, model: nn.Module | None = None, data: Dataset | None = None) -> Parts:
    """Parts of a resolved config; pass your own `model` or `data` to use them instead. Sets the
    process-wide runtime: the thread count, and the C allocator keeping freed memory
    (sgdlab.allocator)."""
    torch.set_num_threads(cfg.threads)
    keep_freed_memory()
    device = torch.device(cfg.device)
    if cfg.deterministic:
        use_deterministic_algorithms(device)  # before anything touches CUDA
    dataset = data if data is not None else build_dataset(cfg.data, cfg.seed)
    loss = get_loss(cfg.train.loss, dataset.target_kind)
    if model is None:
        check_memory(cfg, dataset.input_shape, dataset.n_outputs)
        model = build_model_seeded(cfg, dataset.input_shape, dataset.n_outputs)
    dtype = getattr(torch, cfg.dtype)
    model = model.to(device=device, dtype=dtype)
    dataset = dataset.to(device, dtype)
    rule = build_rule(cfg.optim, trainable(model), cfg.seed, device)
    sampler = Sampler(
        cfg.train.sampler,
        len(dataset.train),
        cfg.train.batch_size,
        generator(cfg.seed, "sampler"),
        drop_last=cfg.train.drop_last,
    )
    torch.manual_seed(derive_seed(cfg.seed, "torch"))  # dropout and any other global draws
    return Parts(cfg, dataset, model, loss, rule, sampler, build_probes(cfg.probes), device)

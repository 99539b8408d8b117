"""The runs of `which-minimizer` and their step sizes, deterministic functions of the settings
(so `--plan` lists exactly what the experiment trains):

  GD        η = 2N/(λ_min + λ_max) of Θ̂(X, X) at the run's own θ_0 (`ntk.gd_learning_rate`;
            times `Settings.gd_step`, 1 by default)
  SGD       the same step per sample: batch b gets η·b/N (the paper's summed-loss step)
  adaptive  the largest step of a doubling grid with a monotonically decreasing training loss
            on a full-batch probe run (`Search`); mini-batch AdaGrad reuses its full-batch step
  later     GD on the narrow net: the NTK step at θ_0, halved until the loss falls monotonically
            (the kernel moves during training, and the NTK step overshoots)
  example1  one training point: GD at its NTK step 1/Θ̂(x_1, x_1); AdaGrad at
            `Example1.adagrad_step` × |y_1 − f_0(x_1)|/‖φ_1‖₁ (`sign_step`)

  trial     the procedure's trials below the σ grid: GD at its NTK step, capped at the
            procedure's budget (`trial_specs`, trained after the grid)

Every run's data holds n_test test points followed by n_val validation points (`measure`
splits them). Run names: <part>-<dataset>-<arch>-<variant>-i<init>, part one of sigma,
adaptive, batch, example1, later, trial.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from .settings import SCALE_SETTINGS, Arch, Settings
from .steps import gd_lr, searched_lr, sign_step

FULL = "full"


@dataclass(frozen=True)
class Spec:
    """One planned run and what it stands for in the analysis."""

    name: str
    part: str
    dataset: str
    arch: Arch
    sigma: float
    seed: int
    optimizer: str
    batch: int
    sampler: str
    n_train: int
    lr: float
    config: dict[str, Any] = field(compare=False, repr=False)

    @property
    def setting(self) -> tuple:
        """Everything but the init: runs with the same setting are averaged over inits."""
        return (self.part, self.dataset, self.arch.key, self.sigma, self.optimizer, self.batch, self.sampler)


def base_config(
    s: Settings,
    dataset: str,
    arch: Arch,
    sigma: float,
    seed: int,
    n_train: int | None = None,
    *,
    optimizer: str = "gd",
    lr: float = 1.0,
    batch: int | None = None,
    sampler: str = FULL,
    iterates: str = "never",
    dtype: str = "float32",
) -> dict[str, Any]:
    """The run config every `which-minimizer` run shares, for one dataset, architecture, σ
    and seed: classes 0 vs 1 with ±1 targets scaled into the unit ball, a zero-bias ReLU MLP
    in NTK parametrization, squared loss, trained by `optimizer` at step `lr` (full batch,
    or `batch` with `sampler`) until the loss threshold or the step cap."""
    n = n_train or s.n_train
    train: dict[str, Any] = {
        "loss": "squared",
        "stop_loss": s.stop_loss,
        "max_steps": s.max_steps,
        "batch_size": batch or n,
        "sampler": "full" if sampler == FULL else sampler,
    }
    if optimizer == "gd":
        train.pop("sampler")  # gd always takes the full batch
    return {
        "seed": seed,
        "threads": 1,
        "dtype": dtype,
        "data": {
            "name": dataset,
            "classes": list(s.classes),
            "n_train": n,
            "n_test": s.n_test + s.n_val,
            "normalize": "unit-ball",
            "targets": "pm1",
        },
        "model": {
            "name": "mlp",
            "widths": list(arch.widths),
            "activation": "relu",
            "parametrization": "ntk",
            "sigma": sigma,
            "bias": False,
        },
        "optim": {"name": optimizer, "lr": lr},
        "train": train,
        "checkpoint": {"iterates": iterates},
        "probes": {"use": ["batch_loss"]},
    }


def _name(part: str, dataset: str, arch: Arch, variant: str, seed: int) -> str:
    return f"{part}-{dataset}-{arch.key}-{variant}-i{seed}"


def specs(scale: str) -> dict[str, Spec]:
    """Every run of the experiment at `scale` but the procedure's trials below the σ grid
    (`trial_specs`), with its step size, in a fixed order."""
    return dict(_specs(scale))


def start_run(s: Settings, dataset: str, arch: Arch, seed: int) -> str:
    """The σ run the procedure of Sect. 3 starts from, for one architecture and init."""
    return _name("sigma", dataset, arch, f"s{s.mitigation_start[arch.depth]:g}", seed)


def trial_specs(scale: str, start_steps: dict[str, int] | None = None) -> dict[str, Spec]:
    """The procedure's trials below the σ grid (`Settings.mitigation_below`): GD from the same θ_0
    at a σ too small to train practically, capped at the procedure's budget — `max_slowdown` × the
    steps its start run needed (`start_steps`, keyed by `start_run`; without it, or for a start
    run that did not train, at the step cap: what `--plan` lists). A trial that does not reach the
    loss threshold within the budget ends the procedure (step (d)); it is no minimizer to analyze,
    so no premise covers it."""
    s = SCALE_SETTINGS[scale]
    out: dict[str, Spec] = {}
    for dataset in s.datasets:
        for arch in s.sigma_archs:
            for sigma in s.mitigation_below.get(arch.depth, ()):
                for seed in range(s.inits):
                    steps = (start_steps or {}).get(start_run(s, dataset, arch, seed))
                    cap = s.mitigation.budget(steps) if steps else s.max_steps
                    raw = base_config(s, dataset, arch, sigma, seed)
                    raw["optim"]["lr"] = lr = s.gd_step * gd_lr(raw)
                    raw["train"]["max_steps"] = cap
                    name = _name("trial", dataset, arch, f"s{sigma:g}", seed)
                    out[name] = Spec(
                        name, "trial", dataset, arch, sigma, seed, "gd", s.n_train, FULL, s.n_train, lr, raw
                    )
    return out


@functools.lru_cache(maxsize=None)
def _specs(scale: str) -> tuple[tuple[str, Spec], ...]:
    s = SCALE_SETTINGS[scale]
    out: dict[str, Spec] = {}

    def add(
        part: str,
        dataset: str,
        arch: Arch,
        sigma: float,
        seed: int,
        optimizer: str,
        variant: str,
        *,
        batch: int | None = None,
        sampler: str = FULL,
        n_train: int | None = None,
        iterates: str = "never",
    ) -> None:
        n = n_train or s.n_train
        batch = batch or n
        dtype = s.later.dtype if part == "later" else "float32"
        raw = base_config(
            s,
            dataset,
            arch,
            sigma,
            seed,
            n,
            optimizer=optimizer,
            batch=batch,
            sampler=sampler,
            iterates=iterates,
            dtype=dtype,
        )
        full_gd = base_config(s, dataset, arch, sigma, seed, n, iterates=iterates, dtype=dtype)
        probe_cfg = base_config(s, dataset, arch, sigma, 0, n, optimizer=optimizer, dtype=dtype)
        if part == "later" and optimizer == "gd":  # not lazy: the NTK step can overshoot
            lr = searched_lr(probe_cfg, s.search, gd_lr(probe_cfg), up=False).lr
        elif part == "example1" and optimizer == "adagrad":
            lr = s.example1.adagrad_step * sign_step(full_gd)
        elif optimizer in ("gd", "sgd"):
            lr = s.gd_step * gd_lr(full_gd) * batch / n
        else:  # searched on init 0 at the full batch; mini-batches reuse it
            lr = searched_lr(probe_cfg, s.search).lr
        raw["optim"]["lr"] = lr
        name = _name(part, dataset, arch, variant, seed)
        out[name] = Spec(name, part, dataset, arch, sigma, seed, optimizer, batch, sampler, n, lr, raw)

    seeds = range(s.inits)
    for dataset in s.datasets:
        for arch in s.sigma_archs:
            for sigma in s.sigmas[arch.depth]:
                for seed in seeds:
                    add("sigma", dataset, arch, sigma, seed, "gd", f"s{sigma:g}")
        for arch in s.adaptive_archs:
            for opt in ("gd", "adagrad", "adam"):
                for seed in seeds:
                    add("adaptive", dataset, arch, s.sigma_ref, seed, opt, opt)
            b = min(s.batch_sizes)  # the null: a different path to GD's linearized minimizer
            for seed in seeds:
                add(
                    "adaptive",
                    dataset,
                    arch,
                    s.sigma_ref,
                    seed,
                    "sgd",
                    f"sgd-b{b}",
                    batch=b,
                    sampler="reshuffle",
                )
    dataset, arch = s.datasets[0], s.batch_arch
    n = s.n_train
    for opt in ("sgd", "adagrad"):
        full = "gd" if opt == "sgd" else "adagrad"
        for seed in seeds:
            add("batch", dataset, arch, s.sigma_ref, seed, full, f"{opt}-b{n}")
        for b in s.batch_sizes:
            for seed in seeds:
                add(
                    "batch",
                    dataset,
                    arch,
                    s.sigma_ref,
                    seed,
                    opt,
                    f"{opt}-b{b}-reshuffle",
                    batch=b,
                    sampler="reshuffle",
                )
        b = min(s.batch_sizes)
        for seed in seeds:
            add(
                "batch",
                dataset,
                arch,
                s.sigma_ref,
                seed,
                opt,
                f"{opt}-b{b}-cyclic",
                batch=b,
                sampler="cyclic",
            )
    for opt in ("gd", "adagrad"):
        for seed in seeds:
            add("example1", dataset, s.example1.arch, s.sigma_ref, seed, opt, opt, n_train=1)
    later = s.later
    for sigma in later.sigmas:
        for seed in seeds:
            add(
                "later",
                dataset,
                later.arch,
                sigma,
                seed,
                "gd",
                f"gd-s{sigma:g}",
                n_train=later.n_train,
                iterates="log:1.2",
            )
    for seed in seeds:
        add(
            "later",
            dataset,
            later.arch,
            later.sigmas[0],
            seed,
            "adagrad",
            "adagrad",
            n_train=later.n_train,
            iterates="log:1.2",
        )
    return tuple(out.items())


def search_table(scale: str) -> dict[str, list]:
    """Every probe of the step-size searches behind `specs(scale)`, for the record."""
    s = SCALE_SETTINGS[scale]
    rows: dict[str, list] = {
        "dataset": [],
        "arch": [],
        "optimizer": [],
        "sigma": [],
        "n_train": [],
        "lr": [],
        "monotone": [],
        "steps": [],
        "chosen": [],
    }
    seen = set()
    for spec in specs(scale).values():
        searched = (spec.optimizer in ("adagrad", "adam") and spec.part != "example1") or (
            spec.part == "later" and spec.optimizer == "gd"
        )
        key = (spec.dataset, spec.arch, spec.optimizer, spec.n_train, spec.sigma)
        if not searched or key in seen:
            continue
        seen.add(key)
        probe_cfg = base_config(
            s,
            spec.dataset,
            spec.arch,
            spec.sigma,
            0,
            spec.n_train,
            optimizer=spec.optimizer,
            dtype=spec.config["dtype"],
        )
        if spec.optimizer == "gd":
            result = searched_lr(probe_cfg, s.search, gd_lr(probe_cfg), up=False)
        else:
            result = searched_lr(probe_cfg, s.search)
        for lr, ok, steps in result.tried:
            for col, v in zip(
                rows,
                (
                    spec.dataset,
                    spec.arch.key,
                    spec.optimizer,
                    spec.sigma,
                    spec.n_train,
                    lr,
                    ok,
                    steps,
                    lr == result.lr,
                ),
                strict=True,
            ):
                rows[col].append(v)
    return rows

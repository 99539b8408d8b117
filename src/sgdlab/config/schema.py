"""The config schema: one frozen dataclass per section of a run's TOML file.

A run is described by a `Config`: a few top-level scalars (seed, device, threads,
deterministic, dtype) and the sections `[data]`, `[model]`, `[optim]` (with
`[optim.schedule]`), `[train]`, `[checkpoint]` and `[probes]`. Every field is declared with
`opt`, which records its default, its allowed range or choices and a one-line help (the table
`sgdlab list config` prints, see `sgdlab.config.help`).

Everything here is structural: types, ranges and fixed choices, checked by
`sgdlab.config.convert.from_dict`. Checks that need the registries (is `model.name` a model?
which options does it read?) live in `sgdlab.build`. Fields marked `specific` belong to some
models/datasets/optimizers only; they default to None and are filled from the chosen entry's
defaults when the config is resolved (`sgdlab.build.resolve`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ACTIVATIONS = ("relu", "leaky-relu", "tanh", "sigmoid")
BATCH_NORM = ("all", "first-in-block", "none")
SKIPS = ("all", "first-in-block", "first-two-in-block", "none")
INITS = ("default", "he", "ntk-normal", "zeros")
SAMPLERS = ("auto", "reshuffle", "iid", "cyclic", "full")
DEVICES = ("cpu", "cuda", "auto")


def opt(
    default: Any = None,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    choices: tuple[str, ...] | None = None,
    specific: bool = False,
    help: str = "",
) -> Any:
    """A config field: a `dataclasses.field` whose metadata holds the validation rules.

    Args:
        default: the value when the TOML leaves the key out; a list or dict default is copied
            for every instance (a default factory), anything else is shared (so immutable).
        ge: inclusive lower bound, value ≥ ge (numbers; every item of a tuple).
        gt: strict lower bound, value > gt.
        le: inclusive upper bound, value ≤ le.
        choices: the allowed strings.
        specific: only some registry entries (models, datasets, optimizers) read the field;
            `sgdlab.build.resolve` rejects it for the others and fills it from the entry's
            defaults when unset.
        help: the one-line description `sgdlab list config` shows.

    Returns:
        The field, to assign to a dataclass attribute (typed `Any` so that `x: int = opt(1)`
        checks).

    The bounds and choices are checked by `sgdlab.config.convert.check_range`, after the value
    was converted to the field's type.
    """
    meta = {"ge": ge, "gt": gt, "le": le, "choices": choices, "specific": specific, "help": help}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class DataConfig:
    """`[data]`: which dataset, which part of it, and how inputs and targets are prepared.

    `name` picks a registry entry (`sgdlab list datasets`). `n_train`, `n_test` and `classes`
    take a deterministic subset; `label_noise` replaces that fraction of training labels by
    uniformly random ones, drawn from `seed` (default: the run seed). The last block (`dim`,
    `noise`, `n_classes`, `margin`, `teacher_widths`) is read by synthetic datasets only.
    """

    name: str = opt("digits", help="dataset (sgdlab list datasets)")
    n_train: int | None = opt(None, ge=1, help="training points, a deterministic subset (None: all)")
    n_test: int | None = opt(None, ge=0, help="test points (None: all)")
    classes: tuple[int, ...] | None = opt(None, ge=0, help="keep these classes, relabelled 0..k-1")
    label_noise: float = opt(0.0, ge=0, le=1, help="fraction of training labels made uniform random")
    targets: str = opt(
        "index",
        choices=("index", "onehot", "pm1"),
        help="class index, one-hot vectors, or ±1 for two classes",
    )
    standardize: bool | None = opt(
        None,
        help="standardize inputs per channel with training "
        "statistics (default: yes for images, no for synthetic data)",
    )
    normalize: str = opt("none", choices=("none", "unit-ball"), help="scale inputs to ‖x‖ ≤ 1")
    resize: int | None = opt(None, ge=1, help="bilinear resize of images to this side length")
    root: str | None = opt(None, help="where the dataset's files are (or SGDLAB_DATA_ROOT)")
    download: bool = opt(False, help="allow a download when files are missing")
    seed: int | None = opt(None, ge=0, help="seed of subsets and label noise (default: the run seed)")
    # Options of synthetic datasets.
    dim: int | None = opt(None, ge=1, specific=True, help="input dimension")
    noise: float | None = opt(None, ge=0, specific=True, help="noise level")
    n_classes: int | None = opt(None, ge=2, specific=True, help="number of classes")
    margin: float | None = opt(None, gt=0, specific=True, help="margin of separable data")
    teacher_widths: tuple[int, ...] | None = opt(
        None, ge=1, specific=True, help="hidden widths of the teacher"
    )


@dataclass(frozen=True)
class ModelConfig:
    """`[model]`: the network. `name` picks a registry entry (`sgdlab list models`).

    Every other field is architecture-specific: a model reads some of them (its registry
    options) and `sgdlab.build.resolve` fills the unset ones from that model's defaults and
    rejects the ones it does not read. The resolved values are what θ_0 is built from.
    """

    name: str = opt("mlp", help="model (sgdlab list models)")
    widths: tuple[int, ...] | None = opt(
        None, ge=1, specific=True, help="hidden widths of the dense layers, input side first"
    )
    residual_widths: tuple[int, ...] | None = opt(None, ge=1, specific=True, help="widths of residual layers")
    width: int | None = opt(
        None, ge=1, specific=True, help="base channel width of a conv net; every layer scales with it"
    )
    activation: str | None = opt(None, choices=ACTIVATIONS, specific=True, help="hidden activation")
    batch_norm: str | None = opt(None, choices=BATCH_NORM, specific=True, help="where batch norm goes")
    skips: str | None = opt(
        None, choices=SKIPS, specific=True, help="which residual shortcuts a ResNet keeps"
    )
    dropout: float | None = opt(
        None, ge=0, le=1, specific=True, help="dropout probability after hidden dense layers (0: none)"
    )
    init: str | None = opt(
        None, choices=INITS, specific=True, help="weight initialization (default: PyTorch's)"
    )
    parametrization: str | None = opt(
        None, choices=("standard", "ntk"), specific=True, help="dense layer parametrization"
    )
    sigma: float | None = opt(None, gt=0, specific=True, help="init / NTK scale σ")
    bias: bool | None = opt(None, specific=True, help="whether the layers have biases")
    head: str | None = opt(None, specific=True, help="classifier head variant")


@dataclass(frozen=True)
class ScheduleConfig:
    """`[optim.schedule]`: the step-size rule η_k, with γ0 = `optim.lr` (sgdlab.optim.schedules).

    k counts epochs or steps (`unit`) and ⌈k/K⌉ grows by one every K = `period` units:

      constant       η_k = γ0
      inverse        η_k = γ0 / (1 + ⌈k/K⌉)
      inverse-sqrt   η_k = γ0 / (1 + √⌈k/K⌉)
      grad-damped    η_k = γ0 / (α‖g_k‖ + 1)
      combined       η_k = γ0 / ((1 + ψ(⌈k/K⌉)) (α‖g_k‖ + 1)),  ψ(x) = c·x or c·√x

    where g_k is the minibatch gradient (Giselsson's lecture on SGD's qualitative convergence
    behavior). `alpha`, `psi` and `c` are ignored by the rules that do not use them.
    """

    name: str = opt("constant", choices=("constant", "inverse", "inverse-sqrt", "grad-damped", "combined"))
    period: int = opt(1, ge=1, help="K in ⌈k/K⌉")
    unit: str = opt("epoch", choices=("epoch", "step"), help="what k counts")
    alpha: float = opt(1.0, ge=0, help="α of the gradient-norm damping 1/(α‖g‖+1)")
    psi: str = opt("linear", choices=("linear", "sqrt"), help="ψ of the combined rule")
    c: float = opt(1.0, gt=0, help="scale c of ψ(x) = c·x or c·√x")


@dataclass(frozen=True)
class OptimConfig:
    """`[optim]`: the update rule (`sgdlab list optimizers`), its step size and its options.

    `lr` is γ0 of the schedule, `weight_decay` λ adds λθ to the gradient (torch's
    `weight_decay`) and `project_radius` r projects θ back onto the ball ‖θ‖ ≤ r after every
    step. The optimizer-specific fields (momentum, Adam's betas, RMSprop's alpha, SGDL's
    Langevin noise γ', …) are filled from the optimizer's defaults when the config is
    resolved.
    """

    name: str = opt("sgd", help="optimizer (sgdlab list optimizers)")
    lr: float = opt(0.1, gt=0, help="step size η")
    weight_decay: float = opt(0.0, ge=0, help="L2 coefficient λ: the optimizer sees g + λθ")
    project_radius: float | None = opt(None, gt=0, help="project θ onto the ball of this radius")
    momentum: float | None = opt(None, ge=0, specific=True, help="momentum coefficient μ")
    dampening: float | None = opt(
        None, ge=0, le=1, specific=True, help="momentum dampening τ: g enters the buffer as (1 − τ)·g"
    )
    betas: tuple[float, ...] | None = opt(None, specific=True, help="Adam's (β₁, β₂), each in [0, 1)")
    eps: float | None = opt(
        None, gt=0, specific=True, help="ε added to the denominator √v (Adam, RMSprop) or √G (AdaGrad)"
    )
    alpha: float | None = opt(None, ge=0, le=1, specific=True, help="RMSprop smoothing")
    centered: bool | None = opt(
        None, specific=True, help="RMSprop: divide by the estimated variance √(v − m²) instead of √v"
    )
    amsgrad: bool | None = opt(
        None, specific=True, help="Adam: divide by the running maximum of v (AMSGrad, Reddi et al. 2018)"
    )
    lr_decay: float | None = opt(
        None, ge=0, specific=True, help="AdaGrad's step decay d: η_k = η/(1 + (k−1)·d)"
    )
    initial_accumulator_value: float | None = opt(
        None, ge=0, specific=True, help="AdaGrad's starting value of the squared-gradient sum G"
    )
    noise: float | None = opt(None, ge=0, specific=True, help="SGDL noise scale γ'")
    noise_decay: str | None = opt(
        None, choices=("none", "inverse"), specific=True, help="SGDL's noise schedule: γ' or γ'/(1 + k)"
    )
    schedule: ScheduleConfig = opt(ScheduleConfig())


@dataclass(frozen=True)
class TrainConfig:
    """`[train]`: the loop. Batches, loss, and when to stop.

    Training stops at the first of `epochs`, `max_steps` and `stop_loss` that is reached; with
    neither `epochs` nor `max_steps` set, resolving sets `epochs = 10`. `sampler = "auto"`
    resolves to the optimizer's sampler (full batch for gd) or `reshuffle`.
    """

    batch_size: int = opt(32, ge=1)
    epochs: int | None = opt(
        None, ge=0, help="stop after this many epochs (10 when neither epochs nor max_steps is set)"
    )
    max_steps: int | None = opt(None, ge=0, help="stop after this many steps")
    stop_loss: float | None = opt(None, gt=0, help="stop once the full training loss is below this")
    loss: str = opt("cross-entropy", help="loss (sgdlab list losses)")
    sampler: str = opt(
        "auto", choices=SAMPLERS, help="auto: full batch for gd, reshuffled cyclic order otherwise"
    )
    drop_last: bool = opt(False, help="drop the last partial batch of an epoch")
    eval_batch_size: int = opt(1024, ge=1, help="chunk size of full-set evaluations")


@dataclass(frozen=True)
class CheckpointConfig:
    """`[checkpoint]`: how often a resumable training state is saved, and which iterates θ_k.

    A state is saved every `every_steps` steps and at least every `every_seconds` seconds
    (either 0: that trigger is off), keeping the last `keep`. `iterates` is a probe schedule
    (e.g. `"epoch"`, `"every:10"`; `"never"` turns it off) for saving the flat θ_k.
    """

    every_steps: int = opt(0, ge=0, help="save a resumable state every this many steps (0: off)")
    every_seconds: float = opt(300.0, ge=0, help="... and at least this often (0: off)")
    keep: int = opt(2, ge=1, help="periodic states kept")
    iterates: str = opt(
        "never",
        help="save θ_k (flat) on this schedule to checkpoints/iterates/, "
        'e.g. "epoch" for the PCA view of the path',
    )


@dataclass(frozen=True)
class ProbesConfig:
    """`[probes]`: the instruments measured during training (`sgdlab list probes`).

    `use` lists the active probes in order; `options` maps a probe's name to its options,
    written as a `[probes.NAME]` table. The options are checked against the probe's registry
    entry (and its defaults filled in) when the config is resolved, not when it is loaded.
    """

    use: tuple[str, ...] = opt(("eval", "batch_loss", "norms", "update_norm", "grad_norm"))
    options: dict[str, dict[str, Any]] = opt({})


@dataclass(frozen=True)
class Config:
    """A whole run: the top-level scalars and one field per section.

    `seed` drives every random stream of the run (θ_0, subsets, batches, noise). `device`
    "auto" resolves to cuda when torch sees a GPU, else cpu; `threads` is torch's thread
    count, part of the result on CPU since reductions then split differently.
    `deterministic` turns on torch's deterministic algorithms. `dtype` is the floating type
    of parameters and inputs.

    A config as loaded is partial (unset options are None); `sgdlab.build.resolve` returns the
    fully specified config a run records in its `config.toml`.
    """

    seed: int = opt(0, ge=0)
    device: str = opt("auto", choices=DEVICES)
    threads: int = opt(1, ge=1, help="torch threads; part of the result on CPU (bits differ)")
    deterministic: bool = opt(False, help="torch.use_deterministic_algorithms (for GPU replay)")
    dtype: str = opt("float32", choices=("float32", "float64"), help="parameters and inputs")
    data: DataConfig = opt(DataConfig())
    model: ModelConfig = opt(ModelConfig())
    optim: OptimConfig = opt(OptimConfig())
    train: TrainConfig = opt(TrainConfig())
    checkpoint: CheckpointConfig = opt(CheckpointConfig())
    probes: ProbesConfig = opt(ProbesConfig())

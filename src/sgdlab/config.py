"""Typed run configuration: frozen dataclasses ⇄ TOML, with `--set a.b=v` overrides.

Everything here is structural: types, ranges and fixed choices. Checks that need the
registries (is `model.name` a model? which options does it read?) live in `sgdlab.build`.
Fields marked `specific` belong to some models/datasets/optimizers only; they default to
None and are filled from the chosen entry's defaults when the config is resolved.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import tomllib
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from .errors import ConfigError

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
    """A config field with its default, allowed range or choices, and a one-line help."""
    meta = {"ge": ge, "gt": gt, "le": le, "choices": choices, "specific": specific, "help": help}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class DataConfig:
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
    name: str = opt("mlp", help="model (sgdlab list models)")
    widths: tuple[int, ...] | None = opt(None, ge=1, specific=True, help="hidden widths")
    residual_widths: tuple[int, ...] | None = opt(None, ge=1, specific=True, help="widths of residual layers")
    width: int | None = opt(None, ge=1, specific=True, help="base channel width of a conv net")
    activation: str | None = opt(None, choices=ACTIVATIONS, specific=True)
    batch_norm: str | None = opt(None, choices=BATCH_NORM, specific=True)
    skips: str | None = opt(None, choices=SKIPS, specific=True)
    dropout: float | None = opt(None, ge=0, le=1, specific=True)
    init: str | None = opt(None, choices=INITS, specific=True)
    parametrization: str | None = opt(None, choices=("standard", "ntk"), specific=True)
    sigma: float | None = opt(None, gt=0, specific=True, help="init / NTK scale σ")
    bias: bool | None = opt(None, specific=True)
    head: str | None = opt(None, specific=True, help="classifier head variant")


@dataclass(frozen=True)
class ScheduleConfig:
    """Step size η_k = lr · rule(k), see sgdlab.optim.schedules."""

    name: str = opt("constant", choices=("constant", "inverse", "inverse-sqrt", "grad-damped", "combined"))
    period: int = opt(1, ge=1, help="K in ⌈k/K⌉")
    unit: str = opt("epoch", choices=("epoch", "step"), help="what k counts")
    alpha: float = opt(1.0, ge=0, help="α of the gradient-norm damping 1/(α‖g‖+1)")
    psi: str = opt("linear", choices=("linear", "sqrt"), help="ψ of the combined rule")
    c: float = opt(1.0, gt=0, help="scale c of ψ(x) = c·√x")


@dataclass(frozen=True)
class OptimConfig:
    name: str = opt("sgd", help="optimizer (sgdlab list optimizers)")
    lr: float = opt(0.1, gt=0, help="step size η")
    weight_decay: float = opt(0.0, ge=0)
    project_radius: float | None = opt(None, gt=0, help="project θ onto the ball of this radius")
    momentum: float | None = opt(None, ge=0, specific=True)
    dampening: float | None = opt(None, ge=0, le=1, specific=True)
    betas: tuple[float, ...] | None = opt(None, specific=True)
    eps: float | None = opt(None, gt=0, specific=True)
    alpha: float | None = opt(None, ge=0, le=1, specific=True, help="RMSprop smoothing")
    centered: bool | None = opt(None, specific=True)
    amsgrad: bool | None = opt(None, specific=True)
    lr_decay: float | None = opt(None, ge=0, specific=True)
    initial_accumulator_value: float | None = opt(None, ge=0, specific=True)
    noise: float | None = opt(None, ge=0, specific=True, help="SGDL noise scale γ'")
    noise_decay: str | None = opt(None, choices=("none", "inverse"), specific=True)
    schedule: ScheduleConfig = opt(ScheduleConfig())


@dataclass(frozen=True)
class TrainConfig:
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
    """`use` lists the active probes in order; `[probes.NAME]` tables hold their options."""

    use: tuple[str, ...] = opt(("eval", "batch_loss", "norms", "update_norm", "grad_norm"))
    options: dict[str, dict[str, Any]] = opt({})


@dataclass(frozen=True)
class Config:
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


# ---------------------------------------------------------------------------------------
# dict -> dataclass with precise errors

_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def convert(value: Any, tp: Any, key: str) -> Any:
    """Check `value` against the type hint `tp`; return it in canonical form."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return convert(value, args[0], key)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a table, got {_describe(value)}")
        return from_dict(tp, value, f"{key}.")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {_describe(value)}")
        (item,) = [a for a in get_args(tp) if a is not Ellipsis]
        return tuple(convert(v, item, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a table, got {_describe(value)}")
        _, vt = get_args(tp)
        return {k: convert(v, vt, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {_describe(value)}")
        return value
    if tp is int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(f"{key}: expected an integer, got {_describe(value)}")
        return value
    if tp is float:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ConfigError(f"{key}: expected a number, got {_describe(value)}")
        if not math.isfinite(value):
            raise ConfigError(f"{key}: expected a finite number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {_describe(value)}")
        return value
    raise TypeError(f"unsupported config type {tp!r} at {key}")


def check_range(value: Any, meta: dict[str, Any], key: str) -> None:
    if value is None:
        return
    if isinstance(value, tuple):
        for i, item in enumerate(value):
            check_range(item, meta, f"{key}[{i}]")
        return
    if meta.get("choices") and value not in meta["choices"]:
        raise ConfigError(f"{key}: {value!r} is not one of {', '.join(meta['choices'])}")
    for bound, ok, text in (
        ("ge", lambda v, b: v >= b, ">="),
        ("gt", lambda v, b: v > b, ">"),
        ("le", lambda v, b: v <= b, "<="),
    ):
        b = meta.get(bound)
        if b is not None and isinstance(value, (int, float)) and not ok(value, b):
            raise ConfigError(f"{key}: {value!r} is out of range (must be {text} {b})")


@functools.cache
def type_hints(cls: type) -> dict[str, Any]:
    """get_type_hints of a config dataclass, evaluated once (it dominates loading otherwise)."""
    return get_type_hints(cls)


def from_dict(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    """Build dataclass `cls` from a TOML table; unknown keys, wrong types and ranges fail."""
    if cls is ProbesConfig:
        return _probes_from_dict(data, prefix)
    hints = type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in data if k not in fields]
    if unknown:
        key = f"{prefix}{unknown[0]}"
        raise ConfigError(f"{key}: unknown key (known: {', '.join(fields)})")
    values = {}
    for name, value in data.items():
        key = f"{prefix}{name}"
        value = convert(value, hints[name], key)
        check_range(value, dict(fields[name].metadata), key)
        values[name] = value
    return cls(**values)


def _probes_from_dict(data: dict[str, Any], prefix: str) -> ProbesConfig:
    """`[probes]` holds `use` plus one table per probe; probe options are checked on resolve."""
    use = convert(data.get("use", ProbesConfig().use), tuple[str, ...], f"{prefix}use")
    options = {}
    for name, table in data.items():
        if name == "use":
            continue
        if not isinstance(table, dict):
            raise ConfigError(
                f"{prefix}{name}: expected a table of probe options "
                f"(or 'use', the list of probes), got {_describe(table)}"
            )
        options[name] = dict(table)
    return ProbesConfig(use=use, options=options)


def to_dict(obj: Any) -> Any:
    """Dataclass → plain TOML-ready dict (None values dropped, tuples as lists)."""
    if isinstance(obj, ProbesConfig):
        out: dict[str, Any] = {"use": list(obj.use)}
        out.update({k: to_dict(v) for k, v in obj.options.items()})
        return out
    if dataclasses.is_dataclass(obj):
        return {
            f.name: to_dict(getattr(obj, f.name))
            for f in dataclasses.fields(obj)
            if getattr(obj, f.name) is not None
        }
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items() if v is not None}
    return obj


# ---------------------------------------------------------------------------------------
# TOML in and out, overrides


def parse_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML ({exc})") from None


def read_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc})") from None
    return parse_toml(text, str(path))


def apply_override(raw: dict[str, Any], assignment: str) -> None:
    """Apply `a.b.c=value` to a raw config dict; the value is TOML, or a bare string."""
    key, sep, text = assignment.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {assignment!r}: expected KEY=VALUE, e.g. train.epochs=5")
    try:
        value = tomllib.loads(f"v = {text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = text.strip()
    *parents, leaf = key.split(".")
    node = raw
    for i, part in enumerate(parents):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {key}: {'.'.join(parents[: i + 1])} is not a table")
        node = child
    node[leaf] = value


def load_config(
    path: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    raw: dict[str, Any] | None = None,
) -> Config:
    """Read a TOML file (or a raw dict), apply overrides, check structure, types and ranges."""
    data = read_toml(path) if path is not None else dict(raw or {})
    for assignment in overrides:
        apply_override(data, assignment)
    return from_dict(Config, data)


def dump_toml(data: dict[str, Any]) -> str:
    """Write a config dict as TOML: scalars first, then one [table] per nested dict."""
    lines: list[str] = []
    _dump_table(data, [], lines)
    return "\n".join(lines).lstrip("\n") + "\n"


def _dump_table(table: dict[str, Any], path: list[str], lines: list[str]) -> None:
    scalars = {k: v for k, v in table.items() if not isinstance(v, dict) and v is not None}
    tables = {k: v for k, v in table.items() if isinstance(v, dict)}
    if path and (scalars or not tables):
        lines.append("")
        lines.append(f"[{'.'.join(_toml_key(p) for p in path)}]")
    for k, v in scalars.items():
        lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
    for k, v in tables.items():
        _dump_table(v, path + [k], lines)


def _toml_key(key: str) -> str:
    bare = key.replace("-", "").replace("_", "").isalnum() and key.isascii()
    return key if bare else _toml_string(key)


def _toml_string(s: str) -> str:
    out = ['"']
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ("nan" if v != v else ("inf" if v > 0 else "-inf"))
    if isinstance(v, str):
        return _toml_string(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def config_to_toml(cfg: Config) -> str:
    return dump_toml(to_dict(cfg))


def field_help() -> list[tuple[str, str, str]]:
    """(key, default, help) for every field: the reference table of `sgdlab list config`."""
    rows: list[tuple[str, str, str]] = []

    def walk(cls: type, prefix: str) -> None:
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            if dataclasses.is_dataclass(default) and not isinstance(default, ProbesConfig):
                walk(type(default), f"{prefix}{f.name}.")
                continue
            meta = f.metadata
            text = meta.get("help", "")
            if meta.get("choices"):
                text = (text + "; " if text else "") + "one of " + ", ".join(meta["choices"])
            rows.append((f"{prefix}{f.name}", repr(to_dict(default)), text))

    walk(Config, "")
    return rows

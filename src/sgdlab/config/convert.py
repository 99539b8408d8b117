"""Raw TOML tables ⇄ config dataclasses, with one precise error per bad value.

`from_dict` is the only way a config is built from data: it walks the dataclass's type hints,
`convert`s each value to the field's type and `check_range`s it against the field's `opt`
metadata. Every error is a single-line `ConfigError` that names the dotted key, the value
and what was expected, e.g. `optim.lr: -0.1 is out of range (must be > 0)`. `to_dict` goes
the other way, to the plain dict the TOML writer takes.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
from typing import Any, Union, get_args, get_origin, get_type_hints

from ..errors import ConfigError, quote, shorten
from .schema import ProbesConfig

MAX_ITEMS = 10_000  # items of a list in a config (widths, classes, probes, …)
FLOAT_MAX = 1.7976931348623157e308


def _describe(value: Any) -> str:
    return f"{quote(value)} ({type(value).__name__})"


def convert(value: Any, tp: Any, key: str) -> Any:
    """Check `value` against the type hint `tp` and return it in canonical form.

    The rules, by hint: `X | None` accepts None, else converts to X; a config dataclass takes
    an instance or a table (`from_dict`); `tuple[X, ...]` takes a list or tuple and returns a
    tuple; `dict[str, X]` a table; `bool` only true/false; `int` an integer, or a float with
    an integral value (3.0 → 3), never a bool; `float` any finite int or float, returned as a
    float; `str` a string; `Any` anything. Raises ConfigError naming `key` otherwise.

    >>> convert([1, 2.0], tuple[int, ...], "model.widths")
    (1, 2)
    >>> convert("three", int, "train.epochs")
    Traceback (most recent call last):
    ...
    sgdlab.errors.ConfigError: train.epochs: expected an integer, got 'three' (str)
    """
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return convert(value, args[0], key)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a table, got {_describe(value)}")
        return from_dict(tp, value, f"{key}.")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {_describe(value)}")
        if len(value) > MAX_ITEMS:
            raise ConfigError(
                f"{key}: a list of {len(value):,} items; a config list holds at most {MAX_ITEMS:,}"
            )
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
            raise ConfigError(f"{key}: expected a finite number, got {quote(value)}")
        if isinstance(value, int) and abs(value) > FLOAT_MAX:
            raise ConfigError(f"{key}: {quote(value)} is beyond the range of a float")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {_describe(value)}")
        return value
    raise TypeError(f"unsupported config type {tp!r} at {key}")


def check_range(value: Any, meta: dict[str, Any], key: str) -> None:
    """Check a converted value against a field's `opt` metadata; raise ConfigError if it fails.

    None (unset) always passes. A tuple is checked item by item (`model.widths[1]`). A value
    must be one of `meta["choices"]` when that is given, and a number must satisfy
    value ≥ `ge`, value > `gt` and value ≤ `le` for the bounds that are not None.

    >>> check_range(1.5, {"ge": 0, "le": 1}, "data.label_noise")
    Traceback (most recent call last):
    ...
    sgdlab.errors.ConfigError: data.label_noise: 1.5 is out of range (must be <= 1)
    """
    if value is None:
        return
    if isinstance(value, tuple):
        for i, item in enumerate(value):
            check_range(item, meta, f"{key}[{i}]")
        return
    if meta.get("choices") and value not in meta["choices"]:
        raise ConfigError(f"{key}: {quote(value)} is not one of {', '.join(meta['choices'])}")
    for bound, ok, text in (
        ("ge", lambda v, b: v >= b, ">="),
        ("gt", lambda v, b: v > b, ">"),
        ("le", lambda v, b: v <= b, "<="),
    ):
        b = meta.get(bound)
        if b is not None and isinstance(value, (int, float)) and not ok(value, b):
            raise ConfigError(f"{key}: {quote(value)} is out of range (must be {text} {b})")


@functools.cache
def type_hints(cls: type) -> dict[str, Any]:
    """`typing.get_type_hints` of a config dataclass, evaluated once per class.

    The schema uses postponed annotations (strings), and evaluating them dominated loading a
    config before this cache.
    """
    return get_type_hints(cls)


def from_dict(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    """Build the config dataclass `cls` from a TOML table; unknown keys, wrong types and
    out-of-range values fail with a ConfigError naming the key.

    Keys left out keep their defaults. `prefix` is the dotted path of the table (`"optim."`)
    that error messages put before a key. `[probes]` is special: besides `use`, every key is a
    probe's table of options, kept as given (checked when the config is resolved).

    >>> from sgdlab.config import OptimConfig
    >>> from_dict(OptimConfig, {"name": "adam", "lr": 1}).lr
    1.0
    >>> from_dict(OptimConfig, {"rate": 0.1}, "optim.")
    Traceback (most recent call last):
    ...
    sgdlab.errors.ConfigError: optim.rate: unknown key (known: name, lr, weight_decay, ...)
    """
    if cls is ProbesConfig:
        return _probes_from_dict(data, prefix)
    hints = type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in data if k not in fields]
    if unknown:
        key = shorten(f"{prefix}{unknown[0]}")
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
    """A config dataclass (or any value in one) as plain TOML-ready data.

    Dataclasses become dicts in field order, with None-valued (unset) fields left out, since
    TOML has no null; tuples become lists. A `ProbesConfig` becomes `{"use": [...], NAME:
    options, ...}`, the shape of the `[probes]` table. `from_dict(type(c), to_dict(c)) == c`.

    >>> from sgdlab.config import ScheduleConfig
    >>> to_dict(ScheduleConfig(name="inverse", period=5))
    {'name': 'inverse', 'period': 5, 'unit': 'epoch', 'alpha': 1.0, 'psi': 'linear', 'c': 1.0}
    """
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

"""A sweep's runs: the cartesian product of `--grid KEY=V1,V2,...` axes times `--seeds N`.

Values are TOML (`0.1`, `"adam"`, `[64, 64]`, `true`) or bare strings (`adam`), as for `--set`;
commas inside brackets, braces or quotes do not split values. Seed i of a grid point is the
base config's `seed` + i, so `--seeds 1` is the config as written.
"""

from __future__ import annotations

import copy
import itertools
import math
import re
import tomllib
from dataclasses import dataclass
from typing import Any

from ..config import _toml_value, apply_override, load_config
from ..errors import ConfigError, quote

MAX_RUNS = 100_000  # runs in one sweep (each one a run directory)


@dataclass(frozen=True)
class Axis:
    """One `--grid KEY=V1,V2,…`: a dotted config key and the values it takes."""

    key: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class SweepRun:
    """One run of a sweep: a grid point (its values on every axis) with one seed."""

    name: str  # the run directory under DIR/runs/
    point: int  # index of the grid point (the same for every seed of it)
    values: dict[str, Any]  # grid key → value at this point
    seed: int
    raw: dict[str, Any]  # the full raw config of this run


def parse_axis(spec: str) -> Axis:
    """`optim.lr=0.1,0.01` → Axis("optim.lr", (0.1, 0.01))."""
    key, sep, text = spec.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--grid {quote(spec)}: expected KEY=V1,V2,..., e.g. optim.lr=0.1,0.01")
    if key == "seed":
        raise ConfigError("--grid seed=...: seeds are set with --seeds N (seed, seed+1, …)")
    texts = split_values(text)
    if not texts or any(not t for t in texts):
        raise ConfigError(f"--grid {quote(spec)}: empty value in the list")
    values = tuple(_value(t) for t in texts)
    if any(isinstance(v, dict) for v in values):
        raise ConfigError(f"--grid {key}: a value must be a number, string, boolean or list, not a table")
    if len(set(map(repr, values))) != len(values):
        raise ConfigError(f"--grid {key}: a value is listed twice")
    return Axis(key, values)


def split_values(text: str) -> list[str]:
    """Split at commas outside brackets, braces and quotes."""
    parts: list[str] = []
    current: list[str] = []
    depth, quote = 0, ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    parts.append("".join(current).strip())
    return parts


def _value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def value_text(value: Any) -> str:
    """A grid value as TOML text (`0.1`, `"adam"`, `[64, 64]`)."""
    return _toml_value(value)


def run_name(values: dict[str, Any], seed: int) -> str:
    """`optim.lr=0.1,model.widths=[64]` at seed 2 → `lr=0.1_widths=64_seed=2`: readable, and
    unique within a sweep as long as the last key parts differ (else the full keys are used)."""
    leaves = [k.rsplit(".", 1)[-1] for k in values]
    keys = leaves if len(set(leaves)) == len(leaves) else [k.replace(".", "-") for k in values]
    parts = [f"{k}={_slug(value_text(v))}" for k, v in zip(keys, values.values(), strict=True)]
    return "_".join(parts + [f"seed={seed}"])


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.+\-]+", "-", text.strip('"')).strip("-") or "x"


def expand(base: dict[str, Any], axes: list[Axis], seeds: int) -> list[SweepRun]:
    """Every grid point × seed, each checked as a config (errors name the grid point)."""
    if seeds < 1:
        raise ConfigError(f"--seeds: {seeds} is not ≥ 1")
    keys = [a.key for a in axes]
    if len(set(keys)) != len(keys):
        raise ConfigError("--grid: a key is given twice")
    count = seeds * math.prod(len(a.values) for a in axes)
    if count > MAX_RUNS:  # checked before expanding: 10^20 seeds would fill the memory first
        raise ConfigError(f"--grid × --seeds: {count} runs; a sweep has at most {MAX_RUNS:,}")
    first_seed = int(base.get("seed", 0))
    runs, names = [], set()
    for point, combo in enumerate(itertools.product(*(a.values for a in axes))):
        values = dict(zip(keys, combo, strict=True))
        for i in range(seeds):
            raw = copy.deepcopy(base)
            for key, value in values.items():
                apply_override(raw, f"{key}={value_text(value)}")
            raw["seed"] = first_seed + i
            try:
                load_config(raw=raw)
            except ConfigError as exc:
                where = ", ".join(f"{k}={value_text(v)}" for k, v in values.items())
                raise ConfigError(f"grid point {where}: {exc}" if where else str(exc)) from None
            name = run_name(values, first_seed + i)
            if name in names:
                raise ConfigError(f"--grid: two grid points share the run name {name!r}")
            names.add(name)
            runs.append(SweepRun(name, point, values, first_seed + i, raw))
    return runs

"""Config files: reading TOML (`tomllib`), writing it (`tomli_w`), and `--set` overrides.

The format of a config file, and of the `config.toml` every run directory stores (the
resolved config, every default filled in, see `sgdlab.build.resolve`)::

    seed = 0                  # the top-level scalars first
    device = "cpu"
    ...

    [data]                    # then one table per section, in the order of `Config`
    name = "digits"
    n_train = 1024
    ...

    [optim.schedule]          # nested sections are dotted tables
    ...

    [probes]
    use = ["eval", "norms"]   # arrays on one line

    [probes.eval]             # one table of options per probe
    schedule = "epoch"

Unset (None) options are left out, since TOML has no null. The writer's output is canonical:
run directories compare stored config text byte for byte with the text of a config (a sweep
reuses a finished run only when they are equal, see `sgdlab.sweep.executors.existing`), so
`config_to_toml` must give the same bytes for the same config, release after release.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomli_w

from ..errors import ConfigError, quote, shorten
from .convert import from_dict, to_dict
from .schema import Config

MAX_CONFIG_BYTES = 1 << 20  # a config file (or one --set value): a resolved config is ~2 kB


def parse_toml(text: str, source: str) -> dict[str, Any]:
    """Parse TOML text; a syntax error becomes a one-line ConfigError naming `source`."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML ({exc})") from None
    except RecursionError:
        raise ConfigError(f"{source}: not valid TOML (nested too deeply)") from None


def read_toml(path: str | Path) -> dict[str, Any]:
    """The raw table of a UTF-8 TOML file, with ConfigErrors for a missing, unreadable,
    oversized (over 1 MiB) or malformed file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    size = path.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: {size:,} bytes; a config file holds at most {MAX_CONFIG_BYTES:,}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc})") from None
    return parse_toml(text, str(path))


def apply_override(raw: dict[str, Any], assignment: str) -> None:
    """Apply `a.b.c=value` to a raw config dict in place; the value is TOML, or a bare string.

    Missing tables on the way are created; assigning below a key that holds a scalar fails.
    The value is only parsed here: its type and range are checked when the dict is loaded.

    >>> raw = {}
    >>> apply_override(raw, "optim.lr=1e-3")
    >>> apply_override(raw, "optim.name=adam")
    >>> apply_override(raw, "model.widths=[64, 64]")
    >>> raw
    {'optim': {'lr': 0.001, 'name': 'adam'}, 'model': {'widths': [64, 64]}}
    """
    key, sep, text = assignment.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {quote(assignment)}: expected KEY=VALUE, e.g. train.epochs=5")
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"--set {shorten(key)}: a value of {len(text):,} characters; at most {MAX_CONFIG_BYTES:,}"
        )
    try:
        value = tomllib.loads(f"v = {text.strip()}")["v"]
    except (tomllib.TOMLDecodeError, RecursionError):
        value = text.strip()
    *parents, leaf = key.split(".")
    node = raw
    for i, part in enumerate(parents):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {shorten(key)}: {shorten('.'.join(parents[: i + 1]))} is not a table")
        node = child
    node[leaf] = value


def load_config(
    path: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    raw: dict[str, Any] | None = None,
) -> Config:
    """Read a TOML file (or take a raw dict), apply `--set` overrides, check structure, types
    and ranges (`sgdlab.config.convert.from_dict`).

    The result is partial: options the registries fill in stay None until
    `sgdlab.build.resolve`. `raw` is copied at the top level only; overrides create their own
    tables, so a caller's nested dicts are changed only where an override assigns into them.

    >>> cfg = load_config(raw={"optim": {"name": "adam"}}, overrides=["train.epochs=3"])
    >>> cfg.optim.name, cfg.optim.betas, cfg.train.epochs
    ('adam', None, 3)
    """
    data = read_toml(path) if path is not None else dict(raw or {})
    for assignment in overrides:
        apply_override(data, assignment)
    return from_dict(Config, data)


def _without_none(value: Any) -> Any:
    """`value` with the None entries of every table dropped (TOML has no null)."""
    if isinstance(value, Mapping):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_without_none(v) for v in value]
    return value


def _one_line_arrays(text: str) -> str:
    r"""Join the array lines of `tomli_w.dumps(..., indent=0)` output: `[1, 2]`, not one item
    per line.

    tomli-w writes every non-empty array as "[\n" + ",\n".join(items) + ",\n]" (indent 0,
    nested arrays alike) and has no option for one-line arrays. Strings are written without
    raw newlines (`multiline_strings` off), so every newline in its output ends a line, and
    only the lines inside an array end in "[" or ",": a header ends in "]", a key/value line
    in its value's last character (a digit, a letter of true/false/inf/nan, a quote, "]" or
    "}"). Hence the three replacements below undo exactly the array layout.
    """
    return text.replace("[\n", "[").replace(",\n]", "]").replace(",\n", ", ")


def dump_toml(data: Mapping[str, Any]) -> str:
    r"""A config dict as TOML text: scalars first, then one `[table]` per nested dict.

    Written by tomli-w, with arrays on one line and None entries left out, so that the
    result is byte for byte what sgdlab's earlier hand-written writer produced (run
    directories compare config text, see the module docstring), except for three rare
    inputs: control characters in strings (the old writer wrote `\u0009`, `\u000a`; tomli-w
    writes a tab as is and `\n`, `\r`, `\b`, `\f` short), keys made only of `-` and `_` (the
    old writer quoted them, tomli-w writes them bare), and the empty dict (the old writer
    gave one newline, tomli-w the empty string).

    The layout: a table's scalars and arrays in order, then its sub-tables, each after one
    blank line with a `[dotted.header]` (left out for a table holding only sub-tables); keys
    bare when made of ASCII letters, digits, `-` and `_`, quoted otherwise; strings in basic
    (double) quotes with `"` and `\` escaped; floats as Python's repr (`0.1`, `1e-05`,
    `1e+20`).

    >>> print(dump_toml({"seed": 0, "model": {"widths": [64, 64], "sigma": None}}), end="")
    seed = 0
    <BLANKLINE>
    [model]
    widths = [64, 64]
    """
    return _one_line_arrays(tomli_w.dumps(_without_none(data), indent=0))


def toml_value(value: Any) -> str:
    r"""One value as TOML text (`0.1`, `"adam"`, `[64, 64]`), written as `dump_toml` writes it.

    Sweeps name run directories after their grid values in this form, so it is as stable as
    the file format. Tables and None have no one-value form and raise TypeError.

    >>> toml_value([0.9, 0.999]), toml_value('say "hi"'), toml_value(1e-05)
    ('[0.9, 0.999]', '"say \\"hi\\""', '1e-05')
    """
    text = dump_toml({"v": value})
    if not text.startswith("v = ") or text.count("\n") != 1:
        raise TypeError(f"cannot write {type(value).__name__} as one TOML value")
    return text[len("v = ") : -1]


def config_to_toml(cfg: Config) -> str:
    """The TOML text of a config: what a run directory stores as `config.toml`.

    `load_config(raw=parse_toml(config_to_toml(c), ...)) == c` for every config `c`, and
    writing again gives the same text.

    >>> from sgdlab.config import Config
    >>> print(config_to_toml(Config(seed=3)).splitlines()[0])
    seed = 3
    """
    return dump_toml(to_dict(cfg))

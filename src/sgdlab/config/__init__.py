"""Typed run configuration: frozen dataclasses ⇄ TOML, with `--set a.b=v` overrides.

The package has one module per job:

- `schema`: the dataclasses (`Config` and its sections) and `opt`, which declares a field
  with its default, range or choices and help;
- `convert`: raw TOML tables → dataclasses with precise errors (`from_dict`, `convert`,
  `check_range`) and back (`to_dict`);
- `files`: reading TOML with `tomllib`, writing it with `tomli_w` (`dump_toml`,
  `config_to_toml`), `load_config` and `apply_override`;
- `help`: `field_help`, the table of every key `sgdlab list config` prints.

Everything is structural: checks that need the registries (is `model.name` a model? which
options does it read?) live in `sgdlab.build`.

>>> from sgdlab.build import resolve
>>> cfg = resolve(load_config(raw={"device": "cpu", "model": {"widths": [8]}}))
>>> cfg.model.widths, cfg.model.activation, cfg.train.epochs
((8,), 'relu', 10)
>>> load_config(raw=parse_toml(config_to_toml(cfg), "config.toml")) == cfg
True
"""

from __future__ import annotations

from .convert import check_range, convert, from_dict, to_dict, type_hints
from .files import (
    apply_override,
    config_to_toml,
    dump_toml,
    load_config,
    parse_toml,
    read_toml,
    toml_value,
)
from .help import field_help
from .schema import (
    ACTIVATIONS,
    BATCH_NORM,
    DEVICES,
    INITS,
    SAMPLERS,
    SKIPS,
    CheckpointConfig,
    Config,
    DataConfig,
    ModelConfig,
    OptimConfig,
    ProbesConfig,
    ScheduleConfig,
    TrainConfig,
    opt,
)

_toml_value = toml_value  # the name sgdlab.sweep.grid imports

__all__ = [
    "ACTIVATIONS",
    "BATCH_NORM",
    "DEVICES",
    "INITS",
    "SAMPLERS",
    "SKIPS",
    "CheckpointConfig",
    "Config",
    "DataConfig",
    "ModelConfig",
    "OptimConfig",
    "ProbesConfig",
    "ScheduleConfig",
    "TrainConfig",
    "apply_override",
    "check_range",
    "config_to_toml",
    "convert",
    "dump_toml",
    "field_help",
    "from_dict",
    "load_config",
    "opt",
    "parse_toml",
    "read_toml",
    "to_dict",
    "toml_value",
    "type_hints",
]

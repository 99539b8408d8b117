"""Options are declared once, as fields of the config schema; the typed views a registered
entry reads them through (ModelOptions, DataOptions, OptimOptions) restate only each field's
type without None. These tests keep the two in step."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from sgdlab.config import DataConfig, ModelConfig, OptimConfig
from sgdlab.data.registry import DataOptions, datasets
from sgdlab.errors import ConfigError
from sgdlab.models.registry import ModelOptions, models
from sgdlab.optim.registry import OptimOptions, optimizers

VIEWS = [(ModelOptions, models), (DataOptions, datasets), (OptimOptions, optimizers)]


def _without_none(hint: object) -> object:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, type(int | None)) and len(args) == 1:
        return args[0]
    return hint


def _readable(view: type) -> set[str]:
    return {n for n in dir(view) if isinstance(getattr(view, n, None), property)}


@pytest.mark.parametrize("view", [v for v, _ in VIEWS], ids=lambda v: v.__name__)
def test_each_annotated_option_is_the_schema_field_without_none(view):
    fields = typing.get_type_hints(view.schema)
    hints = typing.get_type_hints(view)
    annotated = {n: h for n, h in hints.items() if typing.get_origin(h) is not typing.ClassVar}
    assert annotated, view
    for name, hint in annotated.items():
        assert name in fields, f"{view.__name__}.{name} is not a field of {view.schema.__name__}"
        assert hint == _without_none(fields[name]), (name, hint, fields[name])
        doc = getattr(view, name).__doc__
        help_ = view.schema.__dataclass_fields__[name].metadata.get("help")
        assert doc == (help_ or name), name  # the property's docstring is the schema's help


@pytest.mark.parametrize(("view", "registry"), VIEWS, ids=lambda v: getattr(v, "__name__", ""))
def test_every_option_an_entry_registers_is_in_its_view(view, registry):
    readable = _readable(view)
    schema_fields = {f.name for f in dataclasses.fields(view.schema)}
    for entry in registry:
        registered = set(entry.options) & schema_fields
        if view is DataOptions:  # file-backed sets register sizes the view does not type
            registered -= {"n_train", "n_test", "classes", "standardize", "normalize", "resize", "targets"}
        missing = {o for o in registered if o not in readable}
        specific = {f.name for f in dataclasses.fields(view.schema) if f.metadata.get("specific")}
        assert not (missing & specific), f"{registry.kind} {entry.name!r} registers {missing & specific}"


def test_an_unset_option_is_a_config_error_naming_it():
    with pytest.raises(ConfigError, match=r"model\.width: unset in the config given to model 'mlp'"):
        _ = ModelOptions(ModelConfig(name="mlp")).width
    with pytest.raises(ConfigError, match=r"optim\.momentum"):
        _ = OptimOptions(OptimConfig(name="momentum")).momentum
    options = DataOptions(DataConfig(name="gaussian-mixture", n_train=3, n_test=2, dim=4))
    assert (options.n_total, options.dim) == (5, 4)


def test_betas_are_checked_for_two_numbers():
    assert OptimOptions(OptimConfig(name="adam", betas=(0.9, 0.99))).betas == (0.9, 0.99)
    with pytest.raises(ConfigError, match="two numbers"):
        _ = OptimOptions(OptimConfig(name="adam", betas=(0.9,))).betas

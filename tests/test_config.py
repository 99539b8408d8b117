"""Config: TOML round trip (and compatibility with files the old writer wrote), overrides, and one
precise error per kind of bad value."""

from __future__ import annotations

import dataclasses
import json
import shutil
import types
from pathlib import Path
from typing import Union, get_args, get_origin

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import REPO, tiny, write_toml
from sgdlab.build import resolve
from sgdlab.config import (
    Config,
    ProbesConfig,
    apply_override,
    config_to_toml,
    dump_toml,
    load_config,
    parse_toml,
    toml_value,
    type_hints,
)
from sgdlab.errors import ConfigError

MINIMAL = """
seed = 0
[data]
name = "digits"
n_train = 256
n_test = 128
[model]
name = "mlp"
widths = [64]
[optim]
name = "sgd"
lr = 0.1
[train]
batch_size = 32
epochs = 3
loss = "cross-entropy"
"""


def test_minimal_form_from_the_issue_loads(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(MINIMAL)
    cfg = resolve(load_config(path))
    assert cfg.data.n_train == 256 and cfg.model.widths == (64,) and cfg.train.epochs == 3
    assert cfg.train.sampler == "reshuffle" and cfg.device == "cpu"  # auto resolved, no GPU here


def test_every_field_has_a_default():
    cfg = resolve(Config())
    assert cfg.data.name == "digits" and cfg.model.activation == "relu"


def test_resolved_config_round_trips_through_toml_and_resolve_is_idempotent():
    cfg = resolve(
        load_config(
            raw=tiny(
                optim={"name": "adam"}, probes={"use": ["eval", "norms"], "norms": {"schedule": "log:1.5"}}
            )
        )
    )
    text = config_to_toml(cfg)
    again = resolve(load_config(raw=parse_toml(text, "t")))
    assert again == cfg
    assert config_to_toml(again) == text
    assert cfg.optim.betas == (0.9, 0.999)  # filled from the optimizer's defaults


def test_toml_writer_escapes_strings():
    raw = {"a": 'quote " and \\ and \n newline', "t": {"x": [1.5, 2.0], "flag": True}}
    assert parse_toml(dump_toml(raw), "t") == raw


@pytest.mark.parametrize(
    "assignment, path, value",
    [
        ("train.epochs=5", ("train", "epochs"), 5),
        ("optim.lr=1e-3", ("optim", "lr"), 1e-3),
        ("optim.name=adam", ("optim", "name"), "adam"),  # bare strings need no quotes
        ("model.widths=[8, 8]", ("model", "widths"), [8, 8]),
        ('data.name="digits"', ("data", "name"), "digits"),
    ],
)
def test_overrides(assignment, path, value):
    raw = {}
    apply_override(raw, assignment)
    assert raw[path[0]][path[1]] == value


@pytest.mark.parametrize(
    "raw, message",
    [
        (
            {"optim": {"name": "sgdd"}},
            "optim.name: 'sgdd' is not one of sgd, gd, sgdl, momentum, nesterov, adam, adagrad, rmsprop",
        ),
        ({"optim": {"lr": -0.1}}, "optim.lr: -0.1 is out of range (must be > 0)"),
        ({"train": {"epochs": "three"}}, "train.epochs: expected an integer, got 'three' (str)"),
        ({"train": {"epoch": 3}}, "train.epoch: unknown key"),
        ({"data": {"name": "imagenet"}}, "data.name: 'imagenet' is not one of"),
        ({"model": {"name": "mlp", "skips": "all"}}, "model.skips: not used by model 'mlp'"),
        ({"model": {"activation": "swish"}}, "model.activation: 'swish' is not one of relu"),
        ({"data": {"label_noise": 1.5}}, "data.label_noise: 1.5 is out of range (must be <= 1)"),
        ({"optim": {"name": "sgd", "momentum": 0.9}}, "optim.momentum: not used by optimizer 'sgd'"),
        ({"optim": {"name": "gd"}, "train": {"sampler": "iid"}}, "train.sampler: 'iid' conflicts"),
        ({"train": {"epochs": None, "max_steps": 10}}, None),  # None = unset, allowed in dicts
        ({"probes": {"use": ["eval"], "warp": {"x": 1}}}, "probes.warp: 'warp' is not one of"),
        (
            {"probes": {"use": ["eval"], "norms": {"schedule": "epoch"}}},
            "probes.norms: options given but 'norms' is not in probes.use",
        ),
        (
            {"probes": {"use": ["eval"], "eval": {"schedule": "hourly"}}},
            "probes.eval.schedule: 'hourly' is not a schedule",
        ),
        ({"probes": {"use": ["eval"], "eval": {"every": 3}}}, "probes.eval.every: unknown option"),
        ({"seed": 1.5}, "seed: expected an integer, got 1.5 (float)"),
        ({"model": {"widths": [8, "x"]}}, "model.widths[1]: expected an integer"),
        ({"optim": {"name": "adam", "betas": [0.9]}}, "optim.betas: [0.9] must be two numbers"),
        ({"data": "digits"}, "data: expected a table, got 'digits' (str)"),
    ],
)
def test_bad_values_name_key_value_and_choices(raw, message):
    if message is None:
        resolve(load_config(raw=raw))
        return
    with pytest.raises(ConfigError) as err:
        resolve(load_config(raw=raw))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_malformed_toml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\nepochs = 3")
    with pytest.raises(ConfigError, match="bad.toml: not valid TOML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.toml")


def test_override_into_a_scalar_is_rejected():
    with pytest.raises(ConfigError, match="--set seed.x: seed is not a table"):
        load_config(raw={"seed": 1}, overrides=["seed.x=2"])
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        load_config(raw={}, overrides=["train.epochs"])


def test_max_steps_alone_is_the_only_cap_and_nothing_set_means_ten_epochs(tmp_path):
    path = write_toml(tmp_path / "c.toml", {"train": {"max_steps": 7}})
    cfg = resolve(load_config(path))
    assert cfg.train.epochs is None and cfg.train.max_steps == 7
    assert resolve(load_config(raw={"train": {"stop_loss": 1e-3}})).train.epochs == 10


def test_file_with_overrides(tmp_path):
    path = write_toml(tmp_path / "c.toml", tiny())
    cfg = load_config(path, ["train.epochs=7", "optim.name=momentum"])
    assert cfg.train.epochs == 7 and resolve(cfg).optim.momentum == 0.9


# ---------------------------------------------------------------------------------------
# Compatibility with config files the hand-written writer produced (before tomli-w), and
# the writer's fixed point. The fixtures are described in tests/fixtures/configs/make_fixtures.py.

FIXTURES = Path(__file__).parent / "fixtures" / "configs"
SOURCES = json.loads((FIXTURES / "sources.json").read_text(encoding="utf-8"))
# Inputs on which tomli-w's bytes differ from the old writer's (see dump_toml's docstring).
NOT_BYTE_IDENTICAL = {"control_chars"}


def source_config(name: str) -> Config:
    """The Config a fixture was written from, rebuilt from its source."""
    if name == "run":
        return resolve(load_config(raw=json.loads((FIXTURES / "run" / "source.json").read_text())))
    source = SOURCES[name]
    cfg = load_config(REPO / source["path"]) if "path" in source else load_config(raw=source["raw"])
    return resolve(cfg) if source["resolve"] else cfg


def fixture_text(name: str) -> str:
    path = FIXTURES / "run" / "config.toml" if name == "run" else FIXTURES / f"{name}.toml"
    return path.read_bytes().decode("utf-8")


ALL_FIXTURES = [*SOURCES, "run"]


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_config_files_of_the_old_writer_load_into_the_config_they_were_written_from(name):
    """A resolved config is resolved again after loading, as `resume` and the sweep do: TOML
    has no tuples, and probe options get their types (e.g. tuple quantiles) only then."""
    path = FIXTURES / "run" / "config.toml" if name == "run" else FIXTURES / f"{name}.toml"
    loaded = load_config(path)
    if name == "run" or SOURCES[name]["resolve"]:
        loaded = resolve(loaded)
    assert loaded == source_config(name)


@pytest.mark.parametrize("name", [n for n in ALL_FIXTURES if n not in NOT_BYTE_IDENTICAL])
def test_old_config_files_round_trip_byte_for_byte_through_the_new_writer(name):
    """An old file is written back byte for byte; so is the config it was written from, except
    that resolving a config today also fills the probe options added since the fixture was
    written (e.g. the hessian probe's `accuracy`): for those the source's text is compared with
    the old file's, resolved the same way."""
    text = fixture_text(name)
    loaded = load_config(raw=parse_toml(text, name))
    assert config_to_toml(loaded) == text
    resolved_source = name == "run" or SOURCES[name]["resolve"]
    expected = config_to_toml(resolve(loaded)) if resolved_source else text
    assert config_to_toml(source_config(name)) == expected


def test_where_the_new_writer_differs_from_the_old_one():
    """Control characters in strings and keys made only of - and _: same config, other bytes."""
    old = fixture_text("control_chars")
    cfg = load_config(raw=parse_toml(old, "old"))
    new = config_to_toml(cfg)
    changed = [(a, b) for a, b in zip(old.splitlines(), new.splitlines(), strict=True) if a != b]
    assert changed == [
        (
            'root = "tab\\u0009here\\u000anewline\\u000d\\u0008\\u000c\\u0001\\u007f end"',
            'root = "tab\there\\nnewline\\r\\b\\f\\u0001\\u007f end"',
        ),
        ('[probes."-"]', "[probes.-]"),
        ('"_" = 1', "_ = 1"),
    ]
    assert load_config(raw=parse_toml(new, "new")) == cfg
    assert dump_toml({}) == ""


def test_old_writer_layout_details():
    """None entries are dropped, arrays stay on one line (nested too), a table holding only
    tables gets no header, an empty one does, keys needing quotes get them."""
    raw = {
        "a": 1,
        "none": None,
        "t": {"x": None, "l": [[1, 2], [], ["a,", "[b"]], "e": 1e-05, "big": 1e20},
        "only": {"sub": {"k": True}},
        "empty": {},
        "q": {"a.b": "x", "": 0, "é": 2},
    }
    assert dump_toml(raw) == (
        "a = 1\n"
        "\n[t]\n"
        'l = [[1, 2], [], ["a,", "[b"]]\n'
        "e = 1e-05\n"
        "big = 1e+20\n"
        "\n[only.sub]\n"
        "k = true\n"
        "\n[empty]\n"
        "\n[q]\n"
        '"a.b" = "x"\n'
        '"" = 0\n'
        '"é" = 2\n'
    )


def test_grid_value_texts_are_unchanged():
    """Sweeps name run directories after these texts."""
    from sgdlab.sweep.grid import value_text

    for value, text in json.loads((FIXTURES / "value_texts.json").read_text(encoding="utf-8")):
        assert value_text(value) == text
        assert toml_value(value) == text
    for bad in ({"a": 1}, None, [{"a": [1]}]):
        with pytest.raises(TypeError):
            toml_value(bad)


def test_a_run_directory_written_by_the_old_writer_is_recognized(tmp_path):
    """The sweep reuses it (config text compared byte for byte), and creating a run there (what
    `sgdlab.run` does first) says it already holds this run instead of calling it a different one."""
    from sgdlab.errors import UserError
    from sgdlab.store import RunDir
    from sgdlab.store.metrics import rows_to_table
    from sgdlab.sweep.executors import Job, ensure, existing

    path = tmp_path / "run"
    (path / "checkpoints").mkdir(parents=True)
    for file in ("config.toml", "summary.json"):
        shutil.copyfile(FIXTURES / "run" / file, path / file)
    RunDir(path).write_metrics(rows_to_table([]))  # a finished run is reused when its files are intact
    RunDir(path).save("final.pt", {})
    raw = json.loads((FIXTURES / "run" / "source.json").read_text())
    job = Job("run", path, raw)
    cfg, same, status = existing(job)
    assert same and status == "completed" and cfg == source_config("run")
    assert ensure(job).action == "reused"
    with pytest.raises(UserError, match="already holds this run"):
        RunDir.create(path, config_to_toml(cfg))


# Random configs: every field drawn within its type and range, probe options of any TOML shape.

_INT64 = 2**63 - 1
_text = st.text(max_size=6)
_toml_scalars = st.one_of(
    st.integers(-_INT64, _INT64),
    st.floats(allow_nan=False),
    st.booleans(),
    _text,
)
_toml_values = st.recursive(
    _toml_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)


def _field_strategy(tp, meta):
    if get_origin(tp) in (Union, types.UnionType):
        (inner,) = [a for a in get_args(tp) if a is not type(None)]
        return st.none() | _field_strategy(inner, meta)
    if dataclasses.is_dataclass(tp):
        return _config_strategy(tp)
    if get_origin(tp) is tuple:
        return st.lists(_field_strategy(get_args(tp)[0], meta), max_size=3).map(tuple)
    if meta.get("choices"):
        return st.sampled_from(meta["choices"])
    if tp is bool:
        return st.booleans()
    if tp is str:
        return st.text(max_size=8)
    low = meta.get("ge") if meta.get("ge") is not None else meta.get("gt")
    if tp is int:
        low = -_INT64 if low is None else int(low) + (meta.get("gt") is not None)
        return st.integers(low, int(meta["le"]) if meta.get("le") is not None else _INT64)
    if tp is float:
        return st.floats(
            min_value=low,
            max_value=meta.get("le"),
            exclude_min=meta.get("gt") is not None,
            allow_nan=False,
            allow_infinity=False,
        )
    raise TypeError(tp)


def _config_strategy(cls):
    if cls is ProbesConfig:
        return st.builds(
            ProbesConfig,
            use=st.lists(_text, max_size=4).map(tuple),
            options=st.dictionaries(
                _text.filter(lambda k: k != "use"),
                st.dictionaries(_text, _toml_values, max_size=3),
                max_size=3,
            ),
        )
    hints = type_hints(cls)
    fields = {f.name: _field_strategy(hints[f.name], dict(f.metadata)) for f in dataclasses.fields(cls)}
    return st.builds(cls, **fields)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(_config_strategy(Config))
def test_write_read_write_is_a_fixed_point_for_random_configs(cfg):
    text = config_to_toml(cfg)
    again = load_config(raw=parse_toml(text, "t"))
    assert again == cfg
    assert config_to_toml(again) == text

"""Config: TOML round trip, overrides, and one precise error per kind of bad value."""

from __future__ import annotations

import pytest

from conftest import tiny, write_toml
from sgdlab.build import resolve
from sgdlab.config import Config, apply_override, config_to_toml, dump_toml, load_config, parse_toml
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

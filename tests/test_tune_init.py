"""`sgdlab tune-init` on a digits config: the paper's stopping rule applied to what it measured,
the same θ_0 draws in every trial, the files it writes, and one clear line for configs it
cannot tune."""

from __future__ import annotations

import json
from itertools import pairwise

import pytest
import torch

from conftest import write_toml
from sgdlab.build import build_model_seeded, resolve
from sgdlab.config import load_config, read_toml
from sgdlab.data import build_dataset

DIGITS = {
    "seed": 0,
    "device": "cpu",
    "data": {
        "name": "digits",
        "classes": [0, 1],
        "n_train": 80,
        "n_test": 100,
        "normalize": "unit-ball",
        "targets": "pm1",
    },
    "model": {"name": "mlp", "widths": [64], "parametrization": "ntk", "sigma": 4.0, "bias": False},
    "optim": {"name": "gd", "lr": 2.0},
    "train": {"loss": "squared", "max_steps": 2000, "stop_loss": 1e-3},
    "probes": {"use": []},
}


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    from typer.testing import CliRunner

    from sgdlab.cli import app

    tmp = tmp_path_factory.mktemp("tune")
    cfg = write_toml(tmp / "digits.toml", DIGITS)
    out = tmp / "out"
    result = CliRunner().invoke(
        app, ["tune-init", str(cfg), "--out", str(out), "--max-trials", "4", "--max-slowdown", "3"]
    )
    assert result.exit_code == 0, result.output
    return out, json.loads((out / "tune.json").read_text())


def test_the_sequence_follows_the_papers_rule(tuned):
    _, record = tuned
    trials, margin = record["trials"], 0.05
    assert trials[0]["sigma"] == 4.0 and trials[0]["practical"]
    assert len(trials) >= 2
    for a, b in pairwise(trials):
        assert b["sigma"] == pytest.approx(0.7 * a["sigma"])
    # every step but the last improved the validation loss by the margin, within the budget
    for a, b in zip(trials[:-2], trials[1:-1], strict=True):
        assert b["practical"] and a["val_loss"] - b["val_loss"] >= margin * a["val_loss"]
    last, before = trials[-1], trials[-2]
    stopped = (
        not last["practical"]
        or last["val_loss"] >= before["val_loss"]
        or before["val_loss"] - last["val_loss"] < margin * before["val_loss"]
    )
    assert stopped or len(trials) == 4
    assert all(t["steps"] <= record["step_budget"] for t in trials[1:])
    best = min((t for t in trials if t["practical"]), key=lambda t: t["val_loss"])
    assert record["chosen_sigma"] == best["sigma"] and record["chosen"] == best
    assert "Nonnenmacher" in record["source"] and record["stopped_because"]


def test_outputs_reload_to_the_chosen_net(tuned):
    out, record = tuned
    assert (out / "tune-init.png").stat().st_size > 10_000
    cfg = resolve(load_config(out / "best.toml"))
    assert cfg.model.sigma == record["chosen_sigma"]
    data = build_dataset(cfg.data, cfg.seed)
    model = build_model_seeded(cfg, data.input_shape, data.n_outputs)
    model.load_state_dict(torch.load(out / "best.pt", weights_only=True))
    with torch.no_grad():
        out_test = model(data.test.x).reshape(-1)
    loss = float(0.5 * (out_test.double() - data.test.y.double()).pow(2).mean())
    assert loss == pytest.approx(record["chosen"]["test_loss"], rel=1e-5)
    assert float((out_test * data.test.y <= 0).double().mean()) == pytest.approx(
        record["chosen"]["test_error"]
    )


def test_every_trial_starts_from_the_same_draws():
    """NTK parametrization: θ_0 is the same N(0,1) draws at every σ (σ multiplies them in the
    forward pass); standard parametrization with ntk-normal init: the draws times σ/√fan_in."""

    def theta0(model_cfg, sigma):
        cfg = resolve(load_config(raw={"seed": 3, "model": dict(model_cfg, sigma=sigma)}))
        m = build_model_seeded(cfg, (64,), 1)
        return torch.cat([p.detach().reshape(-1) for p in m.parameters()])

    ntk = {"name": "mlp", "widths": [16], "parametrization": "ntk"}
    assert torch.equal(theta0(ntk, 4.0), theta0(ntk, 2.8))
    std = {"name": "mlp", "widths": [16], "init": "ntk-normal"}
    torch.testing.assert_close(theta0(std, 5.0) / 5.0, theta0(std, 3.5) / 3.5)


@pytest.mark.parametrize(
    "change, message",
    [
        (
            {"model": {"name": "lenet"}, "data": {"name": "digits", "resize": 32}},
            "model.name: 'lenet' has no initialization scale model.sigma; tune-init needs one of",
        ),
        (
            {"model": {"name": "mlp", "widths": [16]}},
            "model.sigma: changing it does not change 'mlp' at initialization",
        ),
        (
            {"train": {"loss": "squared", "max_steps": 10}},
            "train.stop_loss: tune-init needs the loss at which training counts as done",
        ),
    ],
)
def test_configs_it_cannot_tune_fail_with_one_line(cli, tmp_path, change, message):
    raw = dict(DIGITS, **change)
    if change.get("model", {}).get("name") == "lenet":
        raw = {k: v for k, v in raw.items() if k != "data"} | {
            "data": change["data"],
            "train": {"max_steps": 10, "stop_loss": 0.1},
        }
    cfg = write_toml(tmp_path / "c.toml", raw)
    result = cli("tune-init", cfg, "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"error: {result.output.strip()[7:]}"]
    assert message in result.output
    assert not (tmp_path / "out").exists()


def test_bad_options_are_refused(cli, tmp_path):
    cfg = write_toml(tmp_path / "c.toml", DIGITS)
    result = cli("tune-init", cfg, "--factor", "1.5", "--out", tmp_path / "out")
    assert result.exit_code == 2 and "--factor: 1.5 is out of range" in result.output
    assert read_toml(cfg)["model"]["sigma"] == 4.0


def trial(sigma: float, val_loss: float, steps: int = 100, practical: bool = True):
    from sgdlab.tune_init import Trial

    return Trial(sigma, "completed", steps, "stop_loss", 0.0, val_loss, 0.0, val_loss, 0.0, practical)


@pytest.mark.parametrize(
    "vals, steps, reason, seen, chosen",
    [
        ([1.0, 0.5, 0.6, 0.1], [100] * 4, "stopped decreasing at σ = 2", 3, 1),
        ([1.0, 0.5, 0.49, 0.1], [100] * 4, "improved by less than 5% at σ = 2", 3, 2),
        ([1.0, 0.5, 0.1, 0.05], [100, 100, 1001, 100], "impractically slow at σ = 2", 3, 1),
        ([1.0, 0.5, 0.25, 0.1], [100] * 4, "no smaller σ was trained after σ = 1", 4, 3),
    ],
)
def test_the_rule_replayed_on_trials_trained_beforehand(vals, steps, reason, seen, chosen):
    from sgdlab.tune_init import Procedure

    trials = [trial(s, v, n) for s, v, n in zip((8.0, 4.0, 2.0, 1.0), vals, steps, strict=True)]
    result = Procedure(factor=0.5).replay(trials, 1e-5)
    assert reason in result.reason and result.budget == 1000  # 10 × the first trial's steps
    assert len(result.trials) == seen and result.chosen == chosen


def test_the_rule_stops_at_max_trials_and_without_a_trained_start():
    from sgdlab.tune_init import Procedure

    falling = [trial(8.0 / 2**k, 1.0 / 2**k) for k in range(5)]
    result = Procedure(factor=0.5, max_trials=3).replay(falling, 1e-5)
    assert len(result.trials) == 3 and "max-trials 3" in result.reason and result.chosen == 2
    untrained = [trial(8.0, 1.0, practical=False), *falling[1:]]
    result = Procedure(factor=0.5).replay(untrained, 1e-5)
    assert len(result.trials) == 1 and result.chosen == 0 and "does not reach" in result.reason


def test_replaying_the_commands_trials_gives_its_choice(tuned):
    """`tune-init` and the reproduction's replay apply one rule."""
    from sgdlab.tune_init import Procedure, Trial

    _, record = tuned
    trials = [Trial(**t) for t in record["trials"]]
    result = Procedure(factor=0.7, max_slowdown=3, max_trials=4).replay(trials, 1e-3)
    assert result.chosen == [t["sigma"] for t in record["trials"]].index(record["chosen_sigma"])
    assert result.reason == record["stopped_because"] or (
        "max-trials" in record["stopped_because"] and len(trials) == 4
    )

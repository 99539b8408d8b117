"""The `sgdlab` command: what a user types, what they see, and one-line errors with exit 2."""

from __future__ import annotations

import json

import pytest

import sgdlab
from conftest import run_cli_process, tiny, write_toml


def assert_one_line_error(result, fragment: str) -> None:
    assert result.exit_code == 2, (result.stdout, result.stderr, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_run_writes_the_run_directory(tmp_path, cli):
    cfg = write_toml(tmp_path / "c.toml", tiny())
    out = tmp_path / "run"
    result = cli("run", cfg, "--out", out, "--set", "train.epochs=3", "--quiet")
    assert result.exit_code == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == 24
    assert {"train_loss", "train_error", "test_loss", "test_error"} <= summary["final"].keys()
    assert {"python", "torch", "sgdlab"} <= summary["versions"].keys() and summary["seed"] == 0
    assert {p.name for p in (out / "checkpoints").iterdir()} == {
        "init.pt",
        "final.pt",
        "init.pt.sha256",
        "final.pt.sha256",
    }
    run = sgdlab.load_run(out)
    assert run.config.train.epochs == 3 and run.metrics.column_names[:2] == ["step", "epoch"]
    assert run.series("train_loss")[0].tolist() == [0, 8, 16, 24]


def test_dry_run_prints_resolved_config_and_writes_nothing(tmp_path, cli):
    cfg = write_toml(tmp_path / "c.toml", tiny())
    result = cli("run", cfg, "--out", tmp_path / "x", "--dry-run", "--set", "optim.name=adam")
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["n_params"] == 64 * 16 + 16 + 16 * 10 + 10
    assert out["config"]["optim"]["betas"] == [0.9, 0.999]
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    "raw, overrides, fragment",
    [
        (None, [], "no such config file"),
        ("[train\n", [], "not valid TOML"),
        ({"data": {"name": "imagenet"}}, [], "data.name: 'imagenet' is not one of"),
        ({"model": {"name": "mamba"}}, [], "model.name: 'mamba' is not one of"),
        ({}, ["optim.lr=-0.1"], "optim.lr: -0.1 is out of range (must be > 0)"),
        ({}, ["optim.name=sgdd"], "optim.name: 'sgdd' is not one of sgd, gd, sgdl"),
        ({}, ["train.epochs=three"], "train.epochs: expected an integer, got 'three'"),
        ({"data": {"n_train": 5000}}, [], "data.n_train + data.n_test"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(tmp_path, cli, raw, overrides, fragment):
    cfg = tmp_path / "c.toml"
    if isinstance(raw, str):
        cfg.write_text(raw)
    elif raw is not None:
        write_toml(cfg, tiny(**raw))
    out = tmp_path / "run"
    result = cli("run", cfg, "--out", out, *[a for o in overrides for a in ("--set", o)])
    assert_one_line_error(result, fragment)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name != "c.toml"] == []


def test_out_dir_holding_a_run(tmp_path, cli):
    cfg = write_toml(tmp_path / "c.toml", tiny())
    out = tmp_path / "run"
    assert cli("run", cfg, "--out", out, "--quiet").exit_code == 0
    before = (out / "metrics.parquet").read_bytes()
    assert_one_line_error(cli("run", cfg, "--out", out), "already holds this run")
    assert_one_line_error(cli("run", cfg, "--out", out, "--set", "optim.lr=0.05"), "holds a different run")
    assert (out / "metrics.parquet").read_bytes() == before
    replaced = cli("run", cfg, "--out", out, "--set", "optim.lr=0.05", "--overwrite", "--quiet")
    assert replaced.exit_code == 0 and sgdlab.load_run(out).config.optim.lr == 0.05


def test_out_dir_that_is_not_a_run_is_never_touched(tmp_path, cli):
    cfg = write_toml(tmp_path / "c.toml", tiny())
    precious = tmp_path / "data"
    precious.mkdir()
    (precious / "thesis.tex").write_text("x")
    assert_one_line_error(cli("run", cfg, "--out", precious, "--overwrite"), "is not an sgdlab run")
    assert (precious / "thesis.tex").read_text() == "x"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli("run", cfg, "--out", empty, "--quiet").exit_code == 0


def test_resume_and_show_on_something_that_is_not_a_run(tmp_path, cli):
    assert_one_line_error(cli("resume", tmp_path), "not an sgdlab run directory")
    assert_one_line_error(cli("show", tmp_path / "nope"), "not an sgdlab run directory")


def test_list(cli):
    result = cli("list", "models")
    assert result.exit_code == 0 and "mlp" in result.stdout and "linear" in result.stdout
    for kind, name in (
        ("datasets", "digits"),
        ("optimizers", "sgdl"),
        ("probes", "grad_norm"),
        ("losses", "logistic"),
        ("config", "train.batch_size"),
    ):
        result = cli("list", kind)
        assert result.exit_code == 0 and name in result.stdout, (kind, result.stdout)
    assert_one_line_error(cli("list", "widgets"), "'widgets' is not one of")


def test_show_prints_summary_and_writes_png(tmp_path, cli):
    out = tmp_path / "run"
    sgdlab.run(tiny(), out)
    result = cli("show", out)
    assert result.exit_code == 0 and "completed" in result.stdout
    png = out / "figures" / "curves.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plain_progress_lines_when_not_a_terminal(tmp_path):
    cfg = write_toml(tmp_path / "c.toml", tiny())
    loud = run_cli_process("run", cfg, "--out", tmp_path / "a")
    assert loud.returncode == 0
    assert "train: step 16/16 (100%)" in loud.stderr and "\x1b[" not in loud.stderr
    quiet = run_cli_process("run", cfg, "--out", tmp_path / "b", "--quiet")
    assert quiet.returncode == 0 and quiet.stderr == "" and quiet.stdout == ""

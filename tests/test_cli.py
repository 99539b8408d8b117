"""The `sgdlab` command: what a user types, what they see, and one-line errors with exit 2."""

from __future__ import annotations

import json
import tomllib

import pytest

import sgdlab
from conftest import tiny, write_toml


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
    shown = tomllib.loads(result.stdout)  # TOML to read, every default filled in, comments around it
    assert shown["optim"]["betas"] == [0.9, 0.999] and shown["model"]["widths"] == [16]
    assert "# model mlp: 1,210 trainable parameters" in result.stdout
    result = cli("run", cfg, "--dry-run", "--json", "--set", "optim.name=adam")
    out = json.loads(result.stdout)  # the same, for programs
    assert out["n_params"] == 64 * 16 + 16 + 16 * 10 + 10
    assert out["config"]["optim"]["betas"] == [0.9, 0.999]
    assert not (tmp_path / "x").exists()
    assert cli("run", cfg, "--json", "--out", tmp_path / "x").exit_code == 2  # --json is --dry-run's


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


def test_plain_progress_lines_when_not_a_terminal(tmp_path, cli):
    cfg = write_toml(tmp_path / "c.toml", tiny())
    loud = cli("run", cfg, "--out", tmp_path / "a")  # the runner's stderr is not a terminal
    assert loud.exit_code == 0
    assert "train: step 16/16 (100%)" in loud.stderr and "\x1b[" not in loud.stderr
    quiet = cli("run", cfg, "--out", tmp_path / "b", "--quiet")
    assert quiet.exit_code == 0 and quiet.stderr == "" and quiet.stdout == ""


# ---------------------------------------------------------------------------------------
# Damaged files and inputs checked before anything is written (issue 21's table): one line
# and exit code 2, never a traceback, and nothing left behind.


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A completed tiny run, a sweep of two and the fake reproduction, built once."""
    from fake_experiments import registered

    root = tmp_path_factory.mktemp("made")
    cfg = write_toml(root / "c.toml", tiny())
    sgdlab.run(tiny(), root / "run")
    sgdlab.run_sweep(cfg, ["optim.lr=0.1,0.05"], 1, root / "sweep", workers=1)
    with registered("cli-fake"):
        sgdlab.experiments.reproduce("cli-fake", root / "repro", "smoke", "cpu")
    return root


def damaged_copy(made, tmp_path, tree: str, name: str, how: str):
    """A copy of `tree` whose file `name` is truncated to half (`truncate`) or has a byte
    flipped inside its first data page (`corrupt`)."""
    import shutil

    copy = tmp_path / tree
    shutil.copytree(made / tree, copy)
    data = (copy / name).read_bytes()
    if how == "truncate":
        data = data[: len(data) // 2]
    else:
        data = data[:40] + bytes([data[40] ^ 0xFF]) + data[41:]
    (copy / name).write_bytes(data)
    return copy


@pytest.mark.parametrize("name,how", [("metrics.parquet", "corrupt"), ("summary.json", "truncate")])
@pytest.mark.parametrize("command", ["show", "report", "export"])
def test_a_run_with_a_damaged_file_is_one_line_naming_it(made, tmp_path, cli, command, name, how):
    run = damaged_copy(made, tmp_path, "run", name, how)
    extra = ["--tensorboard", tmp_path / "tb"] if command == "export" else []
    result = cli(command, run, *extra)
    assert_one_line_error(result, f"{run / name}: damaged (")
    assert "sgdlab resume" in result.stderr and not (tmp_path / "tb").exists()


@pytest.mark.parametrize("name,how", [("metrics.parquet", "corrupt"), ("summary.json", "truncate")])
def test_resume_of_a_damaged_run_says_so_and_rebuilds_it(made, tmp_path, cli, name, how):
    run = damaged_copy(made, tmp_path, "run", name, how)
    result = cli("resume", run, "--quiet")
    assert result.exit_code == 0, result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"warning: {run / name}: damaged (") and "Traceback" not in result.output
    assert sgdlab.load_run(run).metrics.equals(sgdlab.load_run(made / "run").metrics)
    assert sgdlab.load_run(run).status == "completed"


@pytest.mark.parametrize("tree,name", [("repro", "claims.json"), ("sweep", "sweep.json")])
def test_report_of_a_truncated_claims_or_sweep_file_is_one_line(made, tmp_path, cli, tree, name):
    path = damaged_copy(made, tmp_path, tree, name, "truncate")
    assert_one_line_error(cli("report", path), f"{path / name}: damaged (not valid JSON")


def test_library_readers_raise_damaged_file_naming_it(made, tmp_path):
    from sgdlab.errors import DamagedFile

    run = damaged_copy(made, tmp_path, "run", "metrics.parquet", "corrupt")
    with pytest.raises(DamagedFile, match="not a readable Parquet file") as caught:
        sgdlab.load_run(run)
    assert caught.value.path == run / "metrics.parquet" and isinstance(caught.value, sgdlab.UserError)
    sweep = damaged_copy(made, tmp_path, "sweep", "sweep.json", "truncate")
    with pytest.raises(DamagedFile, match="sweep.json: damaged") as caught:
        sgdlab.load_sweep(sweep)
    assert caught.value.path == sweep / "sweep.json"
    (tmp_path / "sweep2").mkdir()
    index = damaged_copy(made, tmp_path / "sweep2", "sweep", "index.parquet", "corrupt")
    with pytest.raises(DamagedFile, match="index.parquet: damaged"):
        sgdlab.load_sweep(index)


def test_a_sweep_whose_sweep_json_is_truncated_writes_it_again(made, tmp_path, cli):
    sweep = damaged_copy(made, tmp_path, "sweep", "sweep.json", "truncate")
    result = cli("sweep", made / "c.toml", "--grid", "optim.lr=0.1,0.05", "--out", sweep, "--workers", "1")
    assert result.exit_code == 0, result.output
    assert f"{sweep / 'sweep.json'}: damaged (not valid JSON" in result.stderr
    assert "reusing the completed run" in result.stderr and "Traceback" not in result.output
    assert sgdlab.load_sweep(sweep).spec["seeds"] == 1


def test_export_to_a_file_or_an_unwritable_place_is_one_line_and_leaves_nothing(made, tmp_path, cli):
    pytest.importorskip("torch.utils.tensorboard")
    taken = tmp_path / "taken"
    taken.write_text("mine")
    assert_one_line_error(cli("export", made / "run", "--tensorboard", taken), "is not a directory")
    assert_one_line_error(cli("export", made / "run", "--tensorboard", taken / "tb"), "is not a directory")
    assert taken.read_text() == "mine"
    result = cli("export", made / "run", "--tensorboard", "/proc/sgdlab-tb/x")
    assert_one_line_error(result, "/proc/sgdlab-tb")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_an_export_that_fails_half_way_removes_what_it_made(made, tmp_path, monkeypatch):
    pytest.importorskip("torch.utils.tensorboard")
    import sgdlab.export as export

    def broken(logdir, run):
        raise OSError(28, "No space left on device", str(logdir))

    monkeypatch.setattr(export, "_write_events", lambda writer_cls, logdir, run: broken(logdir, run))
    with pytest.raises(OSError):
        export.export_tensorboard(made / "repro", tmp_path / "tb" / "deep")
    assert list(tmp_path.iterdir()) == []


def test_reproduce_on_cuda_without_a_gpu_is_one_line_and_writes_nothing(tmp_path, cli):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    result = cli(
        "reproduce", "qualitative-sgd", "--scale", "smoke", "--device", "cuda", "--out", tmp_path / "x"
    )
    assert_one_line_error(result, "device: 'cuda' requested but torch sees no CUDA device")
    assert list(tmp_path.iterdir()) == []


def test_reproduce_only_matching_nothing_is_an_error_and_writes_nothing(tmp_path, cli):
    from fake_experiments import registered

    planned = cli(
        "reproduce", "qualitative-sgd", "--scale", "smoke", "--only", "zzz*", "--out", tmp_path / "x"
    )
    assert_one_line_error(planned, "--only: 'zzz*' selects none of the runs and parts of qualitative-sgd")
    with registered("only-fake"):  # no plan: checked once the experiment has asked
        unplanned = cli(
            "reproduce", "only-fake", "--scale", "smoke", "--only", "zzz", "--out", tmp_path / "y"
        )
    assert_one_line_error(unplanned, "--only: 'zzz' selects none of the runs and parts of only-fake")
    assert list(tmp_path.iterdir()) == []


def test_demo_only_matching_nothing_leaves_no_directory(tmp_path, cli):
    assert_one_line_error(cli("demo", "--only", "nothing-*", "--out", tmp_path / "d"), "selects none")
    assert list(tmp_path.iterdir()) == []

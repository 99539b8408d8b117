"""Bad input, property-based: random and mutated configs, TOML text, `--set` overrides, dataset
options and CLI arguments. Whatever comes in, the outcome is success or one clear error — a
ConfigError/UserError in the library, one line on stderr with exit code 2 from the CLI — never
another exception, and never a half-written run directory."""

from __future__ import annotations

import copy
import math
import os
import string

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from conftest import tiny
from sgdlab.build import resolve
from sgdlab.config import Config, apply_override, dump_toml, load_config, parse_toml, to_dict
from sgdlab.errors import UserError

FUZZ = settings(
    max_examples=10_000,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
SOME = settings(
    max_examples=300, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)

BASES = [
    tiny(),
    to_dict(resolve(load_config(raw=tiny()))),
    tiny(model={"name": "resnet18", "width": 2}, data={"name": "cifar10", "n_train": 8}),
    tiny(optim={"name": "adam", "betas": [0.9, 0.99]}, probes={"use": ["eval", "gamma"]}),
    tiny(optim={"name": "sgdl", "noise": 0.01, "schedule": {"name": "combined", "psi": "sqrt"}}),
]


def keys_of(node: dict, prefix: tuple = ()) -> list[tuple]:
    out = []
    for k, v in node.items():
        out.append(prefix + (k,))
        if isinstance(v, dict):
            out += keys_of(v, prefix + (k,))
    return out


scalars = st.one_of(
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(string.printable, max_size=8),
    st.sampled_from(
        [
            "",
            "sgd",
            "relu",
            "all",
            "none",
            "cifar10",
            "step",
            "every:0",
            "log:1",
            "epoch:-1",
            "auto",
            "cuda",
            "float16",
            "index",
            "pm1",
            "squared",
            "gamma",
        ]
    ),
)
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=3),
    st.dictionaries(st.text(string.ascii_lowercase, max_size=5), scalars, max_size=2),
)


@st.composite
def mutated_configs(draw) -> dict:
    raw = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(1, 3))):
        paths = keys_of(raw)
        action = draw(st.sampled_from(["set", "delete", "add"]))
        if action == "delete" and paths:
            *parents, leaf = draw(st.sampled_from(paths))
            node = raw
            for p in parents:
                node = node[p]
            node.pop(leaf, None)
        elif action == "set" and paths:
            *parents, leaf = draw(st.sampled_from(paths))
            node = raw
            for p in parents:
                node = node[p]
            node[leaf] = draw(values)
        else:
            tables = [()] + [p for p in paths if isinstance(_get(raw, p), dict)]
            where = _get(raw, draw(st.sampled_from(tables)))
            where[draw(st.text(string.ascii_lowercase + "_.", min_size=1, max_size=10))] = draw(values)
    return raw


def _get(raw: dict, path: tuple):
    node = raw
    for p in path:
        node = node[p]
    return node


def resolves_or_config_error(raw: dict) -> None:
    try:
        cfg = resolve(load_config(raw=raw))
    except UserError as exc:
        assert str(exc) and "\n" not in str(exc), repr(exc)
        event(f"error at {str(exc).split(':')[0].split('[')[0]}")
        return
    event("resolved")
    assert isinstance(cfg, Config)
    assert resolve(cfg) == cfg


@FUZZ
@given(mutated_configs())
def test_config_loader_fuzz(raw):
    """≥ 10,000 random mutations of valid configs: resolve or one ConfigError line."""
    resolves_or_config_error(raw)


@SOME
@given(st.sampled_from(BASES), st.integers(0, 400), st.text(max_size=4))
def test_mutated_toml_text_parses_or_errors(base, cut, insert):
    text = dump_toml(base)
    cut = min(cut, len(text))
    broken = text[:cut] + insert + text[cut + len(insert) // 2 :]
    try:
        raw = parse_toml(broken, "c.toml")
    except UserError as exc:
        assert "c.toml: not valid TOML" in str(exc)
        return
    resolves_or_config_error(raw)


@SOME
@given(st.lists(st.text(string.printable, max_size=30), max_size=3))
def test_random_overrides(assignments):
    raw = tiny()
    try:
        for a in assignments:
            apply_override(raw, a)
    except UserError as exc:
        assert str(exc).startswith("--set")
        return
    resolves_or_config_error(raw)


@SOME
@given(
    st.sampled_from(
        [
            "train.epochs",
            "train.batch_size",
            "optim.lr",
            "model.widths",
            "data.n_train",
            "probes.use",
            "probes.gamma.mode",
            "data.classes",
            "seed",
            "threads",
            "optim.schedule.name",
            "model.activation",
            "checkpoint.iterates",
        ]
    ),
    st.sampled_from(
        [
            "-1",
            "0",
            "1e999",
            "nan",
            "'x'",
            "[1, -2]",
            "[]",
            "true",
            "{a = 1}",
            '""',
            "3.5",
            '["eval", "eval"]',
            '"every:0"',
        ]
    ),
)
def test_key_value_overrides(key, value):
    raw = tiny()
    apply_override(raw, f"{key}={value}")
    resolves_or_config_error(raw)


# ---------------------------------------------------------------------------------------
# Dataset options: the data is built (digits is embedded and fast)


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(
    n_train=st.one_of(st.none(), st.integers(0, 3000)),
    n_test=st.one_of(st.none(), st.integers(0, 3000)),
    classes=st.one_of(st.none(), st.lists(st.integers(-1, 12), max_size=4)),
    noise=st.floats(-0.5, 1.5),
)
def test_dataset_options_build_or_error(n_train, n_test, classes, noise):
    from sgdlab.data import build_dataset

    raw = {
        "data": {
            "name": "digits",
            "n_train": n_train,
            "n_test": n_test,
            "classes": classes,
            "label_noise": noise,
        }
    }
    raw["data"] = {k: v for k, v in raw["data"].items() if v is not None}
    try:
        cfg = resolve(load_config(raw=raw))
        data = build_dataset(cfg.data, 0)
    except UserError as exc:
        assert "\n" not in str(exc)
        return
    assert len(data.train) == (n_train if n_train is not None else len(data.train))
    assert len(data.train) >= 1


def test_dataset_errors_name_the_problem():
    from sgdlab.data import build_dataset

    for data, fragment in (
        ({"n_train": 5000}, "n_train"),
        ({"classes": []}, "classes"),
        ({"classes": [3, 3]}, "classes"),
        ({"classes": [11]}, "classes"),
    ):
        with pytest.raises(UserError, match=fragment):
            build_dataset(resolve(load_config(raw={"data": {"name": "digits", **data}})).data, 0)


# ---------------------------------------------------------------------------------------
# The CLI: every command, random arguments

TOKENS = [
    "--out",
    "--set",
    "--scale",
    "--device",
    "--only",
    "--plan",
    "--quiet",
    "--dry-run",
    "--overwrite",
    "smoke",
    "cpu",
    "huge",
    "cuda",
    "gpu",
    "gamma-principle",
    "nope",
    "train.epochs=x",
    "optim.lr=-1",
    "model.name=?",
    "=",
    "",
    "-x",
    "--help-me",
    "models",
    "configs",
    "all",
]


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory):
    from sgdlab.config import dump_toml as dump

    root = tmp_path_factory.mktemp("cli")
    good = root / "good.toml"
    good.write_text(dump(tiny()))
    bad = root / "bad.toml"
    bad.write_text("seed = [\n")
    not_a_run = root / "plain"
    not_a_run.mkdir()
    (not_a_run / "file.txt").write_text("mine")
    return root, [str(good), str(bad), str(not_a_run), str(root / "missing.toml"), str(root / "new")]


@settings(
    max_examples=250, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)
@given(data=st.data())
def test_cli_arguments_fuzz(cli_env, data):
    """Random argument lists for run (always --dry-run: nothing trains), resume, reproduce
    (with --plan at a bad scale or a bad name: nothing trains), show and list."""
    from typer.testing import CliRunner

    from sgdlab.cli import app

    root, paths = cli_env
    command = data.draw(st.sampled_from(["run", "resume", "reproduce", "show", "list"]))
    args = data.draw(st.lists(st.sampled_from(TOKENS + paths), max_size=5))
    if command == "run":
        args = args + ["--dry-run"]
    if command == "reproduce":
        args = (
            [
                data.draw(st.sampled_from(["nope", "gamma-principle"])),
                "--scale",
                data.draw(st.sampled_from(["huge", "", "gpu"])),
            ]
            + args
            + ["--plan"]
        )
    result = CliRunner().invoke(app, [command, *args])
    assert result.exit_code in (0, 2), (command, args, result.output, result.exception)
    if result.exit_code == 2:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert lines and "Traceback" not in result.stderr
        if lines[0].startswith("error:"):
            assert len(lines) == 1, result.stderr
    before = sorted(p.name for p in root.iterdir())
    assert "new" not in before  # run --dry-run and failed commands never create an output


# sweep, report, tune-init and export: random flags and values around inputs that can never
# start training (each sweep ends with a piece that is always refused; the tune-init config has
# no train.stop_loss and --stop-loss is never drawn; report and export get no run).
NUMBERS = ["0", "-1", "2", "0.5", "nan", "inf", "-inf", "1e400", "99999999999999999999", "x"]
OTHER_TOKENS = [
    "--out",
    "-o",
    "--set",
    "--grid",
    "--seeds",
    "--workers",
    "--report",
    "--no-report",
    "--quiet",
    "--tensorboard",
    "--factor",
    "--margin",
    "--max-slowdown",
    "--max-trials",
    "--validation",
    "--help-me",
    "optim.lr=0.1,0.01",
    "optim.lr=",
    "optim.lr=a,b",
    "model.widths=[8],[",
    "nope.key=1",
    "seed=1,2",
    "train.epochs=x",
    "optim.lr=-1",
    "optim.name=sgd,sgd",
    "=",
    "",
    "new",
    "tb",
] + NUMBERS
REFUSED = [
    ["--seeds", "0"],
    ["--seeds", "99999999999999999999"],
    ["--workers", "0"],
    ["--grid", "optim.lr="],
    ["--grid", "seed=1"],
    ["--grid", "nope.key=1,2"],
    ["--grid", "optim.lr=nan"],
    ["--set", "train.epochs=x"],
    ["--ray", ""],
    ["--ray", "local", "--workers", "2"],
]


@settings(
    max_examples=300, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)
@given(data=st.data())
def test_cli_arguments_fuzz_sweep_report_tune_init_export(cli_env, data):
    """Random argument lists for sweep, report, tune-init and export: exit code 0 or 2, one
    `error:` line or click's usage message, never a traceback, and nothing new on disk (the
    commands run in the fixture's directory, so a default output would show up there too)."""
    from typer.testing import CliRunner

    from sgdlab.cli import app

    root, paths = cli_env
    command = data.draw(st.sampled_from(["sweep", "report", "tune-init", "export"]))
    args = data.draw(st.lists(st.sampled_from(OTHER_TOKENS + paths), max_size=6))
    if command in ("sweep", "tune-init"):
        args = [data.draw(st.sampled_from(paths))] + args
    if command == "sweep":
        args = args + data.draw(st.sampled_from(REFUSED))
    before = sorted(p.name for p in root.iterdir())
    cwd = os.getcwd()
    os.chdir(root)
    try:
        result = CliRunner().invoke(app, [command, *args])
    finally:
        os.chdir(cwd)
    assert result.exit_code in (0, 2), (command, args, result.output, result.exception)
    assert "Traceback" not in result.output, (command, args, result.output)
    if result.exit_code == 2:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert lines, (command, args)
        if lines[0].startswith("error:"):
            assert len(lines) == 1, result.stderr
        else:  # click's own message for a malformed command line
            assert "Usage:" in result.stderr or "Error" in lines[0], result.stderr
    assert sorted(p.name for p in root.iterdir()) == before, (command, args)


@pytest.mark.parametrize("piece", REFUSED, ids=" ".join)
def test_each_refused_sweep_argument_on_a_valid_sweep_writes_nothing(cli_env, cli, piece):
    root, (good, *_) = cli_env
    result = cli("sweep", good, "--out", root / "fresh", *piece)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert not (root / "fresh").exists()


@pytest.mark.parametrize(
    "flag,value",
    [
        ("--factor", "nan"),
        ("--factor", "1"),
        ("--margin", "nan"),
        ("--margin", "inf"),
        ("--max-slowdown", "inf"),
        ("--max-trials", "1"),
        ("--validation", "1"),
        ("--stop-loss", "nan"),
        ("--stop-loss", "-1"),
        ("--stop-loss", "inf"),
    ],
)
def test_tune_init_refuses_out_of_range_options_before_training(cli_env, cli, flag, value):
    root, (good, *_) = cli_env
    result = cli("tune-init", good, "--out", root / "fresh", flag, value)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {flag}: ") and "out of range (must be" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (root / "fresh").exists()


def test_nothing_is_half_written_when_a_run_is_refused(tmp_path, cli):
    from sgdlab.config import dump_toml as dump

    cfg = tmp_path / "c.toml"
    cfg.write_text(dump(tiny(data={"n_train": 99999})))
    result = cli("run", cfg, "--out", tmp_path / "r")
    assert result.exit_code == 2 and "n_train" in result.stderr
    assert not (tmp_path / "r").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["c.toml"]


def test_nan_config_values_are_refused():
    with pytest.raises(UserError, match="finite"):
        load_config(raw={"optim": {"lr": math.nan}})


# ---------------------------------------------------------------------------------------
# Extreme values: refused before anything is written or allocated, with a short line


def test_a_step_size_beyond_the_dtype_is_refused_before_the_run_exists(tmp_path, cli):
    from sgdlab.config import dump_toml as dump

    cfg = tmp_path / "c.toml"
    cfg.write_text(dump(tiny()))
    result = cli("run", cfg, "--out", tmp_path / "r", "--set", "optim.lr=1e308")
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert lines[0].startswith("error: optim.lr: 1e+308 does not fit the run's dtype float32")
    assert not (tmp_path / "r").exists()
    resolve(load_config(raw=tiny(dtype="float64", optim={"lr": 1e308})))  # float64 holds it


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_model_too_large_for_the_memory_is_refused_with_the_numbers(tmp_path, cli, dry_run):
    from sgdlab.config import dump_toml as dump

    cfg = tmp_path / "c.toml"
    cfg.write_text(dump(tiny()))
    args = ["--dry-run"] if dry_run else ["--out", tmp_path / "r"]
    result = cli("run", cfg, "--set", "model.widths=[100000000000]", *args)  # 7.5e12 parameters
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert "model: mlp has 7,500,000,000,010 parameters; training it needs at least 120,000.0 GB" in lines[0]
    assert "GB available" in lines[0] and not (tmp_path / "r").exists()


def test_the_memory_estimate_counts_without_allocating():
    from sgdlab.build import count_params_unallocated

    cfg = resolve(load_config(raw=tiny(model={"widths": [10**12]})))
    assert count_params_unallocated(cfg, (64,), 10) == 64 * 10**12 + 10**12 + 10**13 + 10


def test_a_list_of_millions_in_a_config_is_refused_at_once(tmp_path, cli):
    import time

    t0 = time.perf_counter()
    with pytest.raises(UserError, match=r"model.widths: a list of 13,000,000 items; a config list holds"):
        load_config(raw={"model": {"widths": [1] * 13_000_000}})
    big = tmp_path / "big.toml"
    big.write_text("[model]\nwidths = [" + "1, " * 13_000_000 + "]\n")
    result = cli("run", big, "--dry-run")
    assert result.exit_code == 2 and "bytes; a config file holds at most 1,048,576" in result.stderr
    assert time.perf_counter() - t0 < 30  # before: minutes


def test_a_huge_value_is_quoted_in_at_most_about_200_characters(tmp_path, cli):
    with pytest.raises(UserError) as caught:
        resolve(load_config(raw={"model": {"name": "x" * 50_000_000}}))
    message = str(caught.value)
    assert len(message) < 400 and "(50,000,002 characters)" in message
    cfg = tmp_path / "c.toml"
    cfg.write_text('[model]\nname = "' + "x" * 50_000_000 + '"\n')
    result = cli("run", cfg, "--dry-run")
    assert result.exit_code == 2 and len(result.stderr) < 400, result.stderr[:500]
    raw: dict = {}
    apply_override(raw, "model.name=" + "y" * 100_000)  # a command-line argument can be 128 kB
    with pytest.raises(UserError) as caught:
        resolve(load_config(raw=raw))
    assert len(str(caught.value)) < 400

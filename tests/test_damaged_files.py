"""Damaged files, property-based: a completed run, a run stopped half-way, a sweep and a
reproduction are built once; then each file they hold is truncated, deleted or has a byte
flipped, and every command that reads them ends with exit code 0 or 2 (one `error:` line) and
the library with success or a UserError — never a traceback, never another exception. Running
the producing command again (`resume` for a run) repairs what can be repaired: afterwards
everything reads back, and the runs hold the very numbers of the undamaged ones.

The budget is about a minute on 2 quiet cores, split by what a case costs:

- `test_every_file_damaged_in_turn` (deterministic, ~400 cases): every file of every tree
  truncated to half, emptied, deleted and with its middle byte flipped, through the cheap
  readers.
- `test_random_damage_cheap_readers` (hypothesis, 1,800 cases): a random file cut or flipped
  at a random place with a random mask, through the readers that cost milliseconds:
  `load_run`, `show --no-plot`, `load_sweep` with every run of it, the reproduction's claims
  and record, and `report` of a reproduction (which draws no figure). These damage a working
  copy in place and put the file back after each case, since they write nothing.
- `test_random_damage_expensive_commands` (hypothesis, a sample of 16): the commands that
  draw figures or train — `report` of a run and a sweep, `show`, `export`, `resume`, the
  sweep re-run and the reproduce re-run — on a fresh copy, each followed by the repair check.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from tests.conftest import tiny, write_toml
from tests.fake_experiments import registered
from typer.testing import CliRunner

import sgdlab
from sgdlab.cli import app
from sgdlab.errors import UserError
from sgdlab.experiments.base import load_claims, load_record
from sgdlab.report.html import write_report
from sgdlab.store import RunDir

RUN = tiny(checkpoint={"every_steps": 4, "keep": 2}, probes={"use": ["eval", "batch_loss"]})
GRID = ["optim.lr=0.1,0.05"]
TREES = ("run", "stopped", "sweep", "repro")
EXPERIMENT = "damage-fake"
CASES = int(os.environ.get("SGDLAB_FUZZ_CASES", 1800))


def stop_at(step_limit: int):
    def progress(step, loss):
        if step >= step_limit:
            raise KeyboardInterrupt

    return progress


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """The four trees, built once: root/run (completed, with states), root/stopped
    (interrupted at step 10 of 16), root/sweep (two tiny runs and a report) and root/repro
    (the fake reproduction of tests/fake_experiments.py at smoke scale)."""
    root = tmp_path_factory.mktemp("pristine")
    write_toml(root / "run.toml", RUN)
    sgdlab.run(RUN, root / "run")
    with pytest.raises(KeyboardInterrupt):
        sgdlab.run(RUN, root / "stopped", progress=stop_at(10))
    sgdlab.run_sweep(root / "run.toml", GRID, 1, root / "sweep", workers=1)
    write_report(root / "sweep")  # as `sgdlab sweep` does
    with registered(EXPERIMENT):
        sgdlab.experiments.reproduce(EXPERIMENT, root / "repro", "smoke", "cpu")
    return root


def files_of(tree: Path) -> list[str]:
    return sorted(p.relative_to(tree).as_posix() for p in tree.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def catalogue(pristine):
    return {tree: files_of(pristine / tree) for tree in TREES}


@pytest.fixture(scope="module")
def working(pristine, tmp_path_factory):
    """A copy of the trees that the cheap cases damage in place and put back."""
    work = tmp_path_factory.mktemp("working")
    for tree in TREES:
        shutil.copytree(pristine / tree, work / tree)
    return work


def fresh(pristine: Path, tree: str, where: Path) -> Path:
    target = where / tree
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(pristine / tree, target)
    return target


def damage(path: Path, kind: str, at: float, mask: int) -> None:
    """Damage one file: `delete` it, `truncate` it to the fraction `at` of its length, or
    `flip` the byte at fraction `at` with `mask` (never 0)."""
    if kind == "delete":
        path.unlink()
        return
    data = path.read_bytes()
    cut = min(int(at * len(data)), max(len(data) - 1, 0))
    if kind == "truncate":
        path.write_bytes(data[:cut])
    elif data:
        path.write_bytes(data[:cut] + bytes([data[cut] ^ mask]) + data[cut + 1 :])


@contextlib.contextmanager
def damaged_in_place(tree: Path, name: str, kind: str, at: float, mask: int):
    """`damage` a file of `tree` for the length of the block, then put it back (with the
    report, which `report` rewrites); the readers in the block may write nothing else."""
    keep = {n: (tree / n).read_bytes() for n in (name, "report.html") if (tree / n).is_file()}
    before = {n: (tree / n).stat().st_size for n in files_of(tree)}
    damage(tree / name, kind, at, mask)
    try:
        yield
    finally:
        for n, data in keep.items():
            (tree / n).write_bytes(data)
    assert {n: (tree / n).stat().st_size for n in files_of(tree)} == before, "a reader wrote"


def cli(*args) -> object:
    return CliRunner().invoke(app, [str(a) for a in args])


def outcome(result, what) -> str:
    """Exit code 0, or 2 with one `error:` line last; never a traceback or another exception."""
    assert result.exit_code in (0, 2), (what, result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output, (what, result.output)
    if result.exit_code == 2:
        lines = result.stderr.strip().splitlines()
        errors = [line for line in lines if line.startswith("error:")]
        assert len(errors) == 1 and lines[-1] == errors[0], (what, result.stderr)
        return "error"
    return "ok"


def library(call, what) -> str:
    """The library's outcome: success, or a UserError with a one-line message."""
    try:
        call()
    except UserError as exc:
        assert str(exc) and "\n" not in str(exc), (what, str(exc))
        return "error"
    return "ok"


def read_run(path: Path) -> None:
    run = sgdlab.load_run(path)
    for name in run.metrics.column_names[2:]:
        run.series(name)


def read_sweep(path: Path) -> None:
    for run in sgdlab.load_sweep(path).runs(status=None).values():
        read_run(run.path)


def read_repro(path: Path) -> None:
    load_record(path)
    load_claims(path)
    for run_dir in sorted((path / "runs").iterdir()) if (path / "runs").is_dir() else []:
        if RunDir.is_run(run_dir):
            read_run(run_dir)


def cheap_readers(tree: str, path: Path) -> str:
    """Every cheap reader of a damaged tree, each ending cleanly; what they said."""
    if tree in ("run", "stopped"):
        shown = outcome(cli("show", path, "--no-plot"), "show")
        return f"{tree}: load_run {library(lambda: read_run(path), path)}, show {shown}"
    if tree == "sweep":
        return f"sweep: load_sweep {library(lambda: read_sweep(path), path)}"
    reported = outcome(cli("report", path), "report")
    return f"repro: readers {library(lambda: read_repro(path), path)}, report {reported}"


MUTATIONS = [("truncate", 0.5, 1), ("truncate", 0.0, 1), ("delete", 0.0, 1), ("flip", 0.5, 0x20)]


def test_every_file_damaged_in_turn(working, catalogue):
    """Every file of every tree, with each of four damages, through the cheap readers."""
    cases = 0
    for tree in TREES:
        for name in catalogue[tree]:
            for kind, at, mask in MUTATIONS:
                with damaged_in_place(working / tree, name, kind, at, mask):
                    cheap_readers(tree, working / tree)
                cases += 1
    assert cases >= 4 * 80


def fuzz(examples: int):
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


damages = st.tuples(
    st.sampled_from(["truncate", "flip", "flip", "delete"]),
    st.floats(0.0, 1.0, exclude_max=True),
    st.integers(1, 255),
)


@fuzz(CASES)
@given(data=st.data())
def test_random_damage_cheap_readers(working, catalogue, data):
    tree = data.draw(st.sampled_from(TREES))
    name = data.draw(st.sampled_from(catalogue[tree]))
    kind, at, mask = data.draw(damages)
    with damaged_in_place(working / tree, name, kind, at, mask):
        event(cheap_readers(tree, working / tree))


# --- the expensive commands, and the repair ------------------------------------------------


def metrics_of(path: Path):
    return sgdlab.load_run(path).metrics


def run_commands(tree: str, path: Path, pristine: Path, scratch: Path) -> str:
    """report, show, export, then resume; after a resume that succeeds, the run is complete
    and holds exactly the numbers of the undamaged run. A resume may refuse only a run whose
    config.toml was damaged (nothing can rebuild it without its config)."""
    said = [outcome(cli("report", path), "report"), outcome(cli("show", path), "show")]
    tensorboard = scratch / "tb"
    said.append(outcome(cli("export", path, "--tensorboard", tensorboard), "export"))
    resumed = outcome(cli("resume", path, "--quiet"), "resume")
    if resumed == "ok":
        assert sgdlab.load_run(path).status == "completed"
        assert metrics_of(path).equals(metrics_of(pristine / "run"))
        assert not RunDir(path).damage()
    else:
        assert not RunDir.is_run(path) or "config.toml" in cli("resume", path).stderr
    return f"{tree}: " + ", ".join(said) + f", resume {resumed}"


def sweep_commands(path: Path, pristine: Path) -> str:
    """report, then the sweep command again: it rebuilds everything, the runs' numbers are
    those of the undamaged sweep's."""
    reported = outcome(cli("report", path), "report")
    again = cli(
        "sweep",
        pristine / "run.toml",
        *[a for g in GRID for a in ("--grid", g)],
        "--out",
        path,
        "--workers",
        "1",
        "--quiet",
    )
    assert outcome(again, "sweep re-run") == "ok", again.output
    sweep = sgdlab.load_sweep(path)
    assert sweep.index["status"].to_pylist() == ["completed", "completed"]
    for name in sweep.names:
        assert sweep.run(name).metrics.equals(metrics_of(pristine / "sweep" / "runs" / name))
        assert not RunDir(path / "runs" / name).damage()
    return f"sweep: report {reported}, re-run ok"


def repro_commands(path: Path, pristine: Path) -> str:
    """report, then reproduce again: the claims and runs are those of the undamaged one."""
    reported = outcome(cli("report", path), "report")
    with registered(EXPERIMENT):
        again = cli("reproduce", EXPERIMENT, "--scale", "smoke", "--device", "cpu", "--out", path, "--quiet")
    assert outcome(again, "reproduce re-run") == "ok", again.output
    assert load_claims(path) == load_claims(pristine / "repro")
    for name in ("a", "b"):
        assert metrics_of(path / "runs" / name).equals(metrics_of(pristine / "repro" / "runs" / name))
    read_repro(path)
    return f"repro: report {reported}, re-run ok"


@fuzz(16)
@given(data=st.data())
def test_random_damage_expensive_commands(pristine, catalogue, tmp_path_factory, data):
    tree = data.draw(st.sampled_from(TREES))
    name = data.draw(st.sampled_from(catalogue[tree]))
    kind, at, mask = data.draw(damages)
    scratch = tmp_path_factory.getbasetemp() / "expensive"
    shutil.rmtree(scratch, ignore_errors=True)
    path = fresh(pristine, tree, scratch)
    damage(path / name, kind, at, mask)
    if tree in ("run", "stopped"):
        event(run_commands(tree, path, pristine, scratch))
    elif tree == "sweep":
        event(sweep_commands(path, pristine))
    else:
        event(repro_commands(path, pristine))

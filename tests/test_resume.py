"""A killed or interrupted run resumes and ends bit-identical to an uninterrupted one; metrics
are never duplicated or lost."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

import sgdlab
from conftest import start_and_stop, tiny, write_toml
from sgdlab.errors import UserError
from sgdlab.store import RunDir

LONG = tiny(
    model={"widths": [8], "dropout": 0.1},
    train={"epochs": None, "max_steps": 6000},
    checkpoint={"every_steps": 250, "keep": 2},
    probes={"use": ["eval", "batch_loss", "norms", "update_norm"], "eval": {"schedule": "every:500"}},
)


def assert_same_run(a: Path, b: Path) -> None:
    ta, tb = pq.read_table(a / "metrics.parquet"), pq.read_table(b / "metrics.parquet")
    steps = ta["step"].to_numpy()
    assert np.all(np.diff(steps) > 0), "metrics rows duplicated or out of order"
    assert ta.equals(tb)
    fa = torch.load(a / "checkpoints/final.pt", weights_only=True)
    fb = torch.load(b / "checkpoints/final.pt", weights_only=True)
    assert fa.keys() == fb.keys() and all(torch.equal(fa[k], fb[k]) for k in fa)
    sa, sb = (json.loads((p / "summary.json").read_text()) for p in (a, b))
    assert sa["final"] == sb["final"] and sa["steps"] == sb["steps"] and sa["status"] == "completed"


def test_sigkill_then_resume_is_bit_identical(tmp_path):
    cfg = write_toml(tmp_path / "c.toml", LONG)
    ref = tmp_path / "ref"
    sgdlab.run(cfg, ref)  # in this process: only the killed run needs its own

    killed = tmp_path / "killed"
    proc = start_and_stop(cfg, killed, signal.SIGKILL, 1000)
    assert proc.exitcode == -signal.SIGKILL
    summary = json.loads((killed / "summary.json").read_text())
    assert summary["status"] == "running" and summary["steps"] < 6000

    sgdlab.resume(killed)
    assert json.loads((killed / "summary.json").read_text())["resumes"] == 1
    assert_same_run(ref, killed)


def test_ctrl_c_stops_at_a_boundary_and_resume_finishes(tmp_path):
    cfg = write_toml(tmp_path / "c.toml", LONG)
    ref = sgdlab.run(cfg, tmp_path / "ref")
    out = tmp_path / "int"
    proc = start_and_stop(cfg, out, signal.SIGINT, 500)
    assert proc.exitcode == 130
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    assert RunDir(out).states()[-1][0] == summary["steps"]  # a state exactly where it stopped
    sgdlab.resume(out)
    assert_same_run(ref.path, out)


def test_rows_written_after_the_last_state_are_replaced_not_duplicated(tmp_path):
    """A kill after a metrics flush but before the next state: metrics.parquet holds rows past
    the latest state. Resume must drop them and recompute them identically."""
    cfg = dict(LONG, train={"epochs": None, "max_steps": 1200, "batch_size": 16})
    ref = sgdlab.run(cfg, tmp_path / "ref")
    crashed = tmp_path / "crashed"
    sgdlab.run(cfg, crashed)
    run_dir = RunDir(crashed)
    (crashed / "checkpoints/final.pt").unlink()
    latest = run_dir.states()[-1]
    latest[1].unlink()  # as if killed before the last state was written
    summary = run_dir.read_summary() | {"status": "running"}
    run_dir.write_summary(summary)
    assert pq.read_table(run_dir.metrics_path)["step"].to_numpy().max() > run_dir.states()[-1][0]
    sgdlab.resume(crashed)
    assert_same_run(ref.path, crashed)


def test_resume_from_before_the_first_state_restarts_from_theta0(tmp_path):
    cfg = tiny(train={"epochs": 3})
    ref = sgdlab.run(cfg, tmp_path / "ref")
    out = tmp_path / "early"
    sgdlab.run(cfg, out)
    (out / "checkpoints/final.pt").unlink()
    RunDir(out).write_summary(RunDir(out).read_summary() | {"status": "running"})
    assert RunDir(out).states() == []
    sgdlab.resume(out)
    assert_same_run(ref.path, out)


def test_resume_refuses_a_run_that_another_process_holds(tmp_path):
    out = tmp_path / "r"
    sgdlab.run(tiny(), out)
    RunDir(out).write_summary(RunDir(out).read_summary() | {"status": "running"})
    holder = RunDir(out)
    holder.lock()
    try:
        with pytest.raises(UserError, match="another process is running this run"):
            sgdlab.resume(out)
    finally:
        holder.unlock()


def test_resume_of_a_finished_run_does_nothing(tmp_path, cli):
    out = tmp_path / "r"
    sgdlab.run(tiny(), out)
    before = (out / "metrics.parquet").read_bytes()
    result = cli("resume", out)
    assert result.exit_code == 0 and "already completed" in result.stderr
    assert (out / "metrics.parquet").read_bytes() == before


def test_resume_refuses_when_the_code_builds_a_different_theta0(tmp_path):
    out = tmp_path / "r"
    sgdlab.run(tiny(), out)
    run_dir = RunDir(out)
    init = run_dir.load("init.pt")
    init = {k: v + 1 for k, v in init.items()}
    run_dir.save("init.pt", init)
    run_dir.write_summary(run_dir.read_summary() | {"status": "running"})
    with pytest.raises(UserError, match="different θ_0"):
        sgdlab.resume(out)


def test_states_load_without_pickle(tmp_path):
    out = tmp_path / "r"
    sgdlab.run(
        tiny(
            checkpoint={"every_steps": 4},
            model={"widths": [8], "dropout": 0.2},
            optim={"name": "adam", "lr": 0.01},
        ),
        out,
    )
    for _, path in RunDir(out).states():
        state = torch.load(path, weights_only=True)
        assert {"model", "rule", "sampler", "torch_rng", "step"} <= state.keys()
    assert len(RunDir(out).states()) == 2  # keep = 2 (default)

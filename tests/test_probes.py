"""Schedules, and the conformance suite every registered probe passes: it measures exactly on
its schedule, returns finite floats, and continues identically across a resume."""

from __future__ import annotations

import math
from itertools import pairwise

import pyarrow.compute as pc
import pytest

import sgdlab
from conftest import tiny
from sgdlab.errors import ConfigError
from sgdlab.probes import parse_schedule, probes
from sgdlab.store import RunDir

# Options a probe needs to run on the tiny config, by name (empty for most).
CONFORMANCE_OPTIONS: dict[str, dict] = {}


def due_steps(spec: str, n: int, spe: int) -> list[int]:
    sched = parse_schedule(spec)
    return [k for k in range(n) if sched.due(k, spe)]


def test_schedules():
    assert due_steps("step", 4, 2) == [0, 1, 2, 3]
    assert due_steps("every:3", 10, 4) == [0, 3, 6, 9]
    assert due_steps("epoch", 10, 4) == [0, 4, 8]
    assert due_steps("epoch:2", 20, 4) == [0, 8, 16]
    assert due_steps("final", 10, 4) == [] and parse_schedule("final").at_end
    assert due_steps("never", 10, 4) == [] and not parse_schedule("never").at_end
    log = due_steps("log:1.5", 1000, 1)
    assert log[:4] == [0, 1, 2, 3] and len(log) < 25
    gaps = [b - a for a, b in pairwise(log)]
    assert gaps == sorted(gaps) and log[-1] > 500
    assert due_steps("log", 100, 1) == due_steps("log:1.1", 100, 1)


def test_log_schedule_queried_out_of_order_agrees():
    sched = parse_schedule("log:2")
    assert [k for k in (64, 3, 128, 5) if sched.due(k, 1)] == [64, 128]


@pytest.mark.parametrize("spec", ["hourly", "every:0", "every:x", "log:1", "epoch:0", "step:3"])
def test_bad_schedules(spec):
    with pytest.raises(ConfigError, match="is not a schedule"):
        parse_schedule(spec)


def probe_run(name: str, spec: str, out=None, **train):
    options = dict(CONFORMANCE_OPTIONS.get(name, {}), schedule=spec)
    cfg = tiny(
        probes={"use": [name], name: options},
        train={"epochs": None, "max_steps": 10, "batch_size": 16, **train},
        model={"widths": [8], "dropout": 0.1},
    )
    return sgdlab.run(cfg, out)


@pytest.mark.parametrize("name", probes.names())
def test_probe_measures_on_schedule_with_finite_floats(name):
    result = probe_run(name, "every:3")
    probe = result.parts.probes[0]
    table = result.metrics
    # A θ*-probe's first pass always records the minibatch loss of every step (for the replay check).
    forced = {"batch_loss", "lr"} if "theta_star" in probe.needs else set()
    columns = [c for c in table.column_names[2:] if c not in forced]
    assert columns, f"{name} recorded nothing"
    for column in columns:
        rows = table.filter(pc.is_valid(table[column]))
        expected = [0, 3, 6, 9] + ([] if probe.iteration else [10])
        assert rows["step"].to_pylist() == expected, column
        assert all(math.isfinite(v) for v in rows[column].to_pylist()), column


@pytest.mark.parametrize("name", probes.names())
def test_probe_continues_identically_after_resume(name, tmp_path):
    ref = probe_run(name, "step", tmp_path / "ref")
    out = tmp_path / "cut"
    cfg_state = tiny(
        probes={"use": [name], name: dict(CONFORMANCE_OPTIONS.get(name, {}), schedule="step")},
        train={"epochs": None, "max_steps": 10, "batch_size": 16},
        model={"widths": [8], "dropout": 0.1},
        checkpoint={"every_steps": 4},
    )
    sgdlab.run(cfg_state, out)
    run_dir = RunDir(out)
    (out / "checkpoints/final.pt").unlink()
    run_dir.write_summary(run_dir.read_summary() | {"status": "running"})
    resumed = sgdlab.resume(out)
    assert resumed.metrics.equals(ref.metrics)

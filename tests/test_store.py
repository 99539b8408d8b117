"""The run store: metrics table semantics, atomic writes, loading runs back."""

from __future__ import annotations

import pytest
import torch

import sgdlab
from conftest import tiny
from sgdlab.store import MetricsLog, RunDir
from sgdlab.store.files import atomic_write


def test_metrics_log_unions_columns_and_truncates():
    log = MetricsLog()
    log.append(0, 0.0, {"a": 1.0})
    log.append(1, 0.5, {"b": 2})
    log.commit()
    log.append(2, 1.0, {"a": 3.0, "c": float("nan")})
    table = log.table()
    assert table.column_names == ["step", "epoch", "a", "b", "c"]
    assert table["a"].to_pylist() == [1.0, None, 3.0] and table["b"].to_pylist() == [None, 2.0, None]
    assert log.last_values()["a"] == 3.0 and log.last_values()["b"] == 2.0
    log.truncate(2)
    assert log.table()["step"].to_pylist() == [0, 1] and log.pending == 0


def test_atomic_write_never_leaves_a_partial_file(tmp_path):
    target = tmp_path / "f.txt"
    target.write_text("old")

    def broken(path):
        path.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(target, broken)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_load_run_gives_config_summary_metrics_and_checkpoints(tmp_path):
    result = sgdlab.run(tiny(), tmp_path / "r")
    run = sgdlab.load_run(tmp_path / "r")
    assert run.config == result.parts.config and run.status == "completed"
    assert run.metrics.equals(result.metrics)
    steps, losses = run.series("batch_loss")
    assert len(steps) == 16 and run.final == result.summary["final"]
    final = run.checkpoint("final.pt")
    model = result.parts.model
    assert all(torch.equal(final[k], v) for k, v in model.state_dict().items())
    with pytest.raises(KeyError, match="no metric 'warp'"):
        run.series("warp")


def test_run_dir_creation_is_all_or_nothing(tmp_path, monkeypatch):
    import sgdlab.store.run_dir as rd

    def fail(*a, **k):
        raise OSError("no space")

    monkeypatch.setattr(rd, "write_text", fail)
    with pytest.raises(OSError):
        RunDir.create(tmp_path / "r", "seed = 0\n")
    assert list(tmp_path.iterdir()) == []

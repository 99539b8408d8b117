"""`sgdlab export RUN --tensorboard DIR`: the event files read back with TensorBoard's own reader
hold every metric at every step it was measured."""

from __future__ import annotations

import sys
from itertools import pairwise

import numpy as np
import pytest
from tests.conftest import tiny

import sgdlab

event_accumulator = pytest.importorskip(
    "tensorboard.backend.event_processing.event_accumulator",
    reason="TensorBoard is not installed (pip install 'sgdlab[tensorboard]'; `make test` installs it)",
)


def read_back(logdir):
    acc = event_accumulator.EventAccumulator(str(logdir), size_guidance={event_accumulator.SCALARS: 0})
    acc.Reload()
    return acc


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "r"
    sgdlab.run(tiny(), path)
    return sgdlab.load_run(path)


def test_scalars_read_back_with_tensorboards_reader(run, cli, tmp_path):
    result = cli("export", run.path, "--tensorboard", tmp_path / "tb")
    assert result.exit_code == 0, result.output
    acc = read_back(tmp_path / "tb" / "r")
    metrics = run.metrics.column_names[2:]
    assert sorted(acc.Tags()["scalars"]) == sorted(metrics)
    for metric in metrics:
        steps, values = run.series(metric)
        events = acc.Scalars(metric)
        assert [e.step for e in events] == steps.tolist()
        np.testing.assert_allclose([e.value for e in events], values, rtol=1e-6)  # stored as float32
        assert all(a.wall_time <= b.wall_time for a, b in pairwise(events))
    assert "config/text_summary" in acc.Tags()["tensors"]


def test_exporting_again_replaces_the_events(run, tmp_path):
    from sgdlab.export import export_tensorboard

    export_tensorboard(run.path, tmp_path)
    export_tensorboard(run.path, tmp_path)
    assert len(list((tmp_path / "r").glob("events.out.tfevents.*"))) == 1
    assert len(read_back(tmp_path / "r").Scalars("train_loss")) == len(run.series("train_loss")[0])


def test_a_directory_of_runs_exports_each_run(tmp_path):
    from sgdlab.export import export_tensorboard

    sweep = sgdlab.run_sweep(tiny(train={"epochs": 1}), ["optim.lr=0.1,0.2"], 1, tmp_path / "s", workers=1)
    logdirs = export_tensorboard(sweep.path, tmp_path / "tb")
    assert sorted(d.name for d in logdirs) == sorted(sweep.names)
    assert all(d.parent.name == "runs" for d in logdirs)


def test_without_tensorboard_the_error_is_one_line(run, cli, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    result = cli("export", run.path, "--tensorboard", tmp_path / "tb")
    assert result.exit_code == 2 and "pip install 'sgdlab[tensorboard]'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert cli("export", tmp_path / "nothing", "--tensorboard", tmp_path / "tb").exit_code == 2

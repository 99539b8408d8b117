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


def killed_holder(path) -> None:
    """A process that takes the run's lock, records `running` and dies by SIGKILL (as a
    killed sweep or reproduction would), in plain Python so that it starts in milliseconds."""
    import signal
    import subprocess
    import sys

    script = (
        "import fcntl, json, os, signal, sys\n"
        "fh = open(sys.argv[1] + '/.lock', 'a+')\n"
        "fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
        "s = json.load(open(sys.argv[1] + '/summary.json'))\n"
        "s['status'] = 'running'\n"
        "json.dump(s, open(sys.argv[1] + '/summary.json', 'w'))\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True)
    assert done.returncode == -signal.SIGKILL, done.stderr


def test_running_left_by_a_process_that_is_gone_reads_interrupted_and_is_fixed(tmp_path, cli):
    import json

    sgdlab.run(tiny(), tmp_path / "r")
    killed_holder(tmp_path / "r")
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["status"] == "running"
    result = cli("show", tmp_path / "r", "--no-plot")
    status = next(line for line in result.stdout.splitlines() if " status " in line)
    assert result.exit_code == 0 and "interrupted" in status, result.stdout
    on_disk = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert on_disk["status"] == "interrupted" and "sgdlab resume" in on_disk["error"]
    assert sgdlab.load_run(tmp_path / "r").status == "interrupted"


def test_a_run_whose_process_holds_the_lock_stays_running(tmp_path):
    import json

    sgdlab.run(tiny(), tmp_path / "r")
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    (tmp_path / "r" / "summary.json").write_text(json.dumps(dict(summary, status="running")))
    holder = RunDir(tmp_path / "r")
    holder.lock()  # another object, as another process would: flock locks per open file
    try:
        assert RunDir(tmp_path / "r").read_summary()["status"] == "running"
        assert sgdlab.load_run(tmp_path / "r").status == "running"
    finally:
        holder.unlock()
    assert sgdlab.load_run(tmp_path / "r").status == "interrupted"


def test_metrics_pages_carry_checksums_so_a_flipped_number_is_caught(tmp_path):
    """A byte flipped where Parquet alone would read back other numbers without a word."""
    import io

    import pyarrow.parquet as pq

    from sgdlab.errors import DamagedFile

    sgdlab.run(tiny(), tmp_path / "r")
    path = tmp_path / "r" / "metrics.parquet"
    data, original = path.read_bytes(), pq.read_table(path)

    def silently_other(i: int) -> bool:
        flipped = data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :]
        try:
            return not pq.read_table(io.BytesIO(flipped)).equals(original)
        except Exception:  # noqa: BLE001 - a flip the format itself notices
            return False

    i = next(i for i in range(4, len(data)) if silently_other(i))
    path.write_bytes(data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :])
    with pytest.raises(DamagedFile, match=r"metrics.parquet: damaged \(not a readable Parquet file"):
        sgdlab.load_run(tmp_path / "r")

"""`sgdlab sweep`: grid × seeds, one run each, an index, resume after a kill, failed and diverged
runs recorded without stopping the others, the same results on the local pool and on Ray, and
the aggregated report."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from tests.conftest import tiny, write_toml

import sgdlab
from sgdlab.errors import ConfigError, UserError
from sgdlab.store import RunDir
from sgdlab.sweep import load_sweep, run_sweep
from sgdlab.sweep.executors import Job
from sgdlab.sweep.grid import expand, parse_axis, split_values

# Least squares with a linear model: lr 0.05 converges, lr 50 diverges (loss → inf).
LSQ = {
    "seed": 0,
    "device": "cpu",
    "data": {"name": "least-squares", "n_train": 32, "n_test": 16},
    "model": {"name": "linear"},
    "optim": {"name": "sgd", "lr": 0.05},
    "train": {"batch_size": 8, "epochs": 6, "loss": "squared"},
}


def final_rows(sweep) -> dict[str, dict]:
    return {r["run"]: r for r in sweep.index.to_pylist()}


# --- the grid ----------------------------------------------------------------------------


def test_values_split_at_top_level_commas_only():
    assert split_values('0.1, 1e-3,[64, 64],"a,b",{x = 1}') == ["0.1", "1e-3", "[64, 64]", '"a,b"', "{x = 1}"]
    axis = parse_axis("model.widths=[64],[32, 32]")
    assert axis.key == "model.widths" and axis.values == ([64], [32, 32])
    assert parse_axis("optim.name=sgd,adam").values == ("sgd", "adam")
    assert parse_axis("optim.lr=0.1,1e-2").values == (0.1, 0.01)


@pytest.mark.parametrize(
    "spec,message",
    [
        ("optim.lr", "expected KEY=V1,V2"),
        ("seed=1,2", "--seeds"),
        ("optim.lr=0.1,0.1", "twice"),
        ("optim.lr=0.1,,0.2", "empty value"),
        ("model={a = 1}", "not a table"),
    ],
)
def test_bad_axes_say_what_is_wrong(spec, message):
    with pytest.raises(ConfigError, match=message):
        parse_axis(spec)


def test_too_many_runs_are_refused_before_any_is_expanded():
    with pytest.raises(ConfigError, match="at most 100,000"):  # 10^20 configs would fill the memory
        expand(tiny(), [parse_axis("optim.lr=0.1,0.2")], 10**20)


def test_a_bad_override_without_a_grid_names_the_key():
    from sgdlab.sweep.run import plan_sweep

    with pytest.raises(ConfigError, match=r"^train\.epochs: expected an integer"):
        plan_sweep(tiny(), [], 1, ["train.epochs=x"])


def test_expand_is_the_product_times_seeds_with_readable_unique_names():
    runs = expand(LSQ, [parse_axis("optim.lr=0.1,0.01"), parse_axis("train.batch_size=4,8,16")], 2)
    assert len(runs) == 2 * 3 * 2 and len({r.name for r in runs}) == 12
    assert [r.seed for r in runs[:2]] == [0, 1] and runs[0].name == "lr=0.1_batch_size=4_seed=0"
    assert {r.point for r in runs} == set(range(6))
    r = runs[-1]
    assert r.raw["optim"]["lr"] == 0.01 and r.raw["train"]["batch_size"] == 16 and r.raw["seed"] == 1
    assert LSQ["optim"]["lr"] == 0.05  # the base config is not modified
    with pytest.raises(ConfigError, match="grid point optim.lr=-1.0: optim.lr"):
        expand(LSQ, [parse_axis("optim.lr=0.1,-1.0")], 1)
    with pytest.raises(ConfigError, match="optim.nope"):
        expand(LSQ, [parse_axis("optim.nope=1,2")], 1)


# --- the local pool ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """2 lr values × 2 seeds, one of them diverging, with 2 workers (this process and one more)."""
    root = tmp_path_factory.mktemp("sweep")
    cfg = write_toml(root / "lsq.toml", LSQ)
    messages: list[str] = []
    sweep = run_sweep(cfg, ["optim.lr=0.05,50.0"], 2, root / "local", workers=2, log=messages.append)
    return root, cfg, sweep, messages


def test_every_point_and_seed_is_one_run_in_the_index(local):
    _, _, sweep, messages = local
    index = sweep.index
    assert isinstance(index, pa.Table) and index.num_rows == 4
    assert index.schema.field("optim.lr").type == pa.float64()
    rows = final_rows(sweep)
    assert {(r["optim.lr"], r["seed"]) for r in rows.values()} == {(0.05, 0), (0.05, 1), (50.0, 0), (50.0, 1)}
    for name, row in rows.items():
        run = sweep.run(name)
        assert run.config.optim.lr == row["optim.lr"] and run.config.seed == row["seed"]
        assert row["status"] == run.status and row["steps"] == run.summary["steps"]
    converged = [r for r in rows.values() if r["optim.lr"] == 0.05]
    assert all(r["status"] == "completed" and r["train_loss"] < 10 for r in converged)
    assert json.loads((sweep.path / "index.json").read_text())[0].keys() >= {"run", "point", "seed", "status"}
    assert any("this process and 1 worker process" in m for m in messages)
    assert any(m.startswith("[4/4]") for m in messages)


def test_a_diverged_run_is_recorded_and_the_others_finish(local):
    rows = final_rows(local[2])
    diverged = [r for r in rows.values() if r["optim.lr"] == 50.0]
    assert all(r["status"] == "diverged" for r in diverged)
    assert sum(r["status"] == "completed" for r in rows.values()) == 2


def test_pool_results_do_not_depend_on_how_many_ran_side_by_side(local, tmp_path):
    root, cfg, sweep, _ = local
    serial = run_sweep(cfg, ["optim.lr=0.05"], 2, tmp_path / "serial", workers=1)
    pool = final_rows(sweep)
    for name, row in final_rows(serial).items():
        assert row["train_loss"] == pool[name]["train_loss"] and row["test_loss"] == pool[name]["test_loss"]


def test_rerunning_reuses_every_finished_run(local):
    root, cfg, sweep, _ = local
    before = {p.name: (p / "metrics.parquet").stat().st_mtime_ns for p in (sweep.path / "runs").iterdir()}
    messages: list[str] = []
    again = run_sweep(cfg, ["optim.lr=0.05,50.0"], 2, sweep.path, workers=2, log=messages.append)
    assert sum("reusing the" in m for m in messages) == 4 and not any("worker process" in m for m in messages)
    assert {
        p.name: (p / "metrics.parquet").stat().st_mtime_ns for p in (sweep.path / "runs").iterdir()
    } == before
    assert again.index.equals(sweep.index)


def test_the_same_directory_refuses_another_sweep(local, cli):
    root, cfg, sweep, _ = local
    with pytest.raises(UserError, match="holds a different sweep"):
        run_sweep(cfg, ["optim.lr=0.05"], 2, sweep.path)
    result = cli("sweep", cfg, "--grid", "optim.lr=0.1", "--out", root / "lsq.toml")
    assert result.exit_code == 2 and "not an sgdlab sweep" in result.stderr
    result = cli("sweep", cfg, "--grid", "optim.lr=0.1,-2", "--out", root / "new")
    assert result.exit_code == 2 and "grid point optim.lr=-2" in result.stderr
    assert not (root / "new").exists()  # nothing written for a bad grid


def test_the_report_aggregates_seeds_per_grid_point(local):
    from sgdlab.report.html import write_report

    sweep = local[2]
    assert not (sweep.path / "report.html").exists()  # run_sweep writes no report; who wants one asks
    html = write_report(sweep.path).read_text(encoding="utf-8")
    losses = [r["train_loss"] for r in sweep.index.to_pylist() if r["optim.lr"] == 0.05]
    mean, std = float(np.mean(losses)), float(np.std(losses, ddof=1))
    assert f"{mean:.4g} ± {std:.2g}" in html
    assert ">2/2<" in html and ">0/2<" in html  # completed runs per point (the diverged point: none)
    for metric in ("train_loss", "test_loss", "batch_loss"):
        assert (sweep.path / "figures" / f"sweep-{metric}.png").stat().st_size > 0
        assert (sweep.path / "figures" / f"sweep-{metric}.svg").is_file()
    assert (
        html.index("Mean ± std across seeds") < html.index("<h2>Figures</h2>") < html.index("<h2>Runs</h2>")
    )


def test_load_sweep_errors(tmp_path):
    with pytest.raises(UserError, match="not a sweep directory"):
        load_sweep(tmp_path)
    assert sgdlab.load_sweep is load_sweep


def test_a_failed_run_is_recorded_and_the_others_finish(tmp_path, monkeypatch):
    monkeypatch.setenv("SGDLAB_DATA_ROOT", str(tmp_path / "no-data"))  # no CIFAR-100 here
    monkeypatch.setenv("SGDLAB_DATA", str(tmp_path / "cache"))
    sweep = run_sweep(tiny(), ["data.name=cifar100,digits"], 1, tmp_path / "s", workers=1)
    rows = {r["data.name"]: r for r in sweep.index.to_pylist()}
    assert rows["digits"]["status"] == "completed"
    assert rows["cifar100"]["status"] == "failed" and "cifar-100" in rows["cifar100"]["error"].lower()


SLOW = tiny(
    model={"widths": [8]},
    train={"epochs": None, "max_steps": 1500},
    checkpoint={"every_steps": 200, "keep": 2},
    probes={"use": ["eval", "batch_loss"], "eval": {"schedule": "every:500"}},
)


def test_an_interrupted_run_is_resumed_bit_identically(tmp_path):
    from sgdlab import runner
    from sgdlab.sweep.run import plan_sweep, sweep_jobs

    out = tmp_path / "s"
    grid = ["optim.lr=0.1,0.05"]
    sweep = run_sweep(SLOW, grid, 1, out, workers=1)
    reference = sweep.run("lr=0.1_seed=0").metrics

    def stop_at_700(step, loss):
        if step >= 700:
            raise KeyboardInterrupt

    job = sweep_jobs(out.resolve(), plan_sweep(SLOW, grid, 1)[2])[0]
    with pytest.raises(KeyboardInterrupt):  # as a Ctrl-C in the middle of the run
        runner.run(job.config(), job.path, overwrite=True, progress=stop_at_700)
    assert RunDir(job.path).read_summary()["status"] == "interrupted"
    messages: list[str] = []
    again = run_sweep(SLOW, grid, 1, out, workers=1, log=messages.append)
    assert "lr=0.1_seed=0: resuming" in messages and "lr=0.05_seed=0: reusing the completed run" in messages
    assert [r["status"] for r in again.index.to_pylist()] == ["completed", "completed"]
    assert again.run("lr=0.1_seed=0").metrics.equals(reference)


class Progress:
    """The shape of `run_local`'s progress_factory: called with a run's label, entered around
    the run, then called with (step, loss) as it trains."""

    def __init__(self, label):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


def test_ctrl_c_stops_the_run_at_a_boundary_and_starts_no_other(tmp_path):
    from sgdlab.sweep.executors import run_local

    class CtrlC(Progress):  # a progress callback (called every 0.2 s) that presses Ctrl-C once past step 300
        pressed = False

        def __call__(self, step, loss):
            if step >= 300 and not CtrlC.pressed:
                CtrlC.pressed = True
                os.kill(os.getpid(), signal.SIGINT)

    long = dict(SLOW, train={"epochs": None, "max_steps": 50_000})  # stopped long before its end
    jobs = [Job(f"r{i}", tmp_path / f"r{i}", dict(long, seed=i)) for i in range(3)]
    with pytest.raises(KeyboardInterrupt):
        run_local(jobs, workers=1, progress_factory=CtrlC)
    summary = RunDir(tmp_path / "r0").read_summary()
    assert summary["status"] == "interrupted" and RunDir(tmp_path / "r0").states()[-1][0] == summary["steps"]
    assert not (tmp_path / "r1").exists() and not (tmp_path / "r2").exists()


@pytest.mark.slow
def test_a_killed_sweep_resumes_its_interrupted_run_bit_identically(tmp_path):
    cfg = write_toml(tmp_path / "slow.toml", SLOW)
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sgdlab",
            "sweep",
            str(cfg),
            "--grid",
            "optim.lr=0.1,0.05",
            "--out",
            str(out),
            "--workers",
            "1",
            "--quiet",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    first = out / "runs" / "lr=0.1_seed=0"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (
        first.exists() and RunDir(first).states() and RunDir(first).states()[-1][0] >= 400
    ):
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert json.loads((first / "summary.json").read_text())["status"] == "running"

    messages: list[str] = []
    sweep = run_sweep(cfg, ["optim.lr=0.1,0.05"], 1, out, workers=1, log=messages.append)
    assert any(m.startswith("lr=0.1_seed=0: resuming") for m in messages), messages
    assert [r["status"] for r in sweep.index.to_pylist()] == ["completed", "completed"]
    ref = sgdlab.run(dict(SLOW, optim={"name": "sgd", "lr": 0.1}), tmp_path / "ref")
    assert sweep.run("lr=0.1_seed=0").metrics.equals(ref.metrics)


# --- a worker process killed ----------------------------------------------------------


def test_a_killed_worker_fails_its_run_and_the_others_finish(tmp_path, monkeypatch):
    """SGDLAB_FAULT_WORKER kills only the spawned worker, in the first run it takes (the last
    job). This process holds its own first run back until the dead pool has handed the job it
    would have fed the worker next back to this process, which then trains it."""
    from sgdlab.sweep.executors import run_local

    monkeypatch.setenv("SGDLAB_FAULT_WORKER", "step@20")
    messages: list[str] = []

    class UntilHandedBack(Progress):  # progress of this process's first run: waits for the hand-back
        def __call__(self, step, loss):
            deadline = time.monotonic() + 60
            while not any("worker process died" in m for m in messages) and time.monotonic() < deadline:
                time.sleep(0.05)

    raw = tiny(train={"epochs": 4})  # 32 steps
    jobs = [Job(f"r{i}", tmp_path / f"r{i}", dict(raw, seed=i)) for i in range(3)]
    outcomes = run_local(jobs, workers=2, log=messages.append, progress_factory=UntilHandedBack)
    assert "a worker process died; r1 is trained in this process" in messages
    assert outcomes["r2"].status == "failed" and outcomes["r2"].error.startswith("worker died")
    assert [outcomes[n].status for n in ("r0", "r1")] == ["completed", "completed"]
    dead = RunDir(tmp_path / "r2").read_summary()  # left `running` by the worker; marked here
    assert dead["status"] == "failed" and dead["error"].startswith("worker died")
    ref = sgdlab.run(dict(raw, seed=1))
    assert sgdlab.load_run(tmp_path / "r1").metrics.equals(ref.metrics)


def test_a_sweep_whose_worker_died_finishes_only_that_run_when_run_again(tmp_path, monkeypatch):
    raw = tiny(train={"epochs": 4})
    monkeypatch.setenv("SGDLAB_FAULT_WORKER", "step@20")
    sweep = run_sweep(raw, [], 3, tmp_path / "s", workers=2)
    rows = final_rows(sweep)
    assert rows["seed=2"]["status"] == "failed" and rows["seed=2"]["error"].startswith("worker died")
    assert rows["seed=0"]["status"] == rows["seed=1"]["status"] == "completed"

    monkeypatch.delenv("SGDLAB_FAULT_WORKER")
    messages: list[str] = []
    again = run_sweep(raw, [], 3, tmp_path / "s", workers=2, log=messages.append)
    assert {m for m in messages if "reusing" in m} == {
        "seed=0: reusing the completed run",
        "seed=1: reusing the completed run",
    }
    assert "seed=2: resuming" in messages
    assert [r["status"] for r in again.index.to_pylist()] == ["completed"] * 3
    assert again.run("seed=2").metrics.equals(sgdlab.run(dict(raw, seed=2)).metrics)


def _children(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of the processes whose parent is `pid`."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                kids.append(
                    (int(stat.parent.name), (stat.parent / "cmdline").read_bytes().decode(errors="replace"))
                )
        except (OSError, IndexError, ValueError):
            continue  # the process ended while we looked
    return kids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_workers_do_not_outlive_a_sigkilled_sweep(tmp_path):
    """The sweep process is killed while its worker trains a run of minutes: the worker stops
    that run at a step boundary (resumable, `interrupted`) and exits within seconds."""
    long = tiny(model={"widths": [8]}, train={"epochs": None, "max_steps": 1_000_000})
    cfg = write_toml(tmp_path / "long.toml", long)
    out = tmp_path / "s"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sgdlab",
            "sweep",
            str(cfg),
            "--seeds",
            "2",
            "--out",
            str(out),
            "--workers",
            "2",
            "--no-report",
            "--quiet",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    held = out / "runs" / "seed=1"  # the worker's run (helpers take jobs from the back)
    own = out / "runs" / "seed=0"  # the run the sweep process trains itself
    kids: list[tuple[int, str]] = []
    everyone: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read()
            kids = kids or _children(proc.pid)  # a forked worker (and, spawned, the resource tracker)
            started = all(RunDir.is_run(p) and RunDir(p).is_locked() for p in (held, own))
            if kids and started and (own / "summary.json").is_file():
                break
            time.sleep(0.05)
        assert kids, "no worker process started"
        everyone = [pid for pid, _ in _children(proc.pid)]
        proc.kill()
        proc.wait(timeout=30)
        deadline = time.monotonic() + 20
        while any(_alive(pid) for pid in everyone) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in everyone if _alive(pid)], "processes outlived the killed sweep"
        summary = RunDir(held).read_summary()
        assert summary["status"] == "interrupted" and RunDir(held).states()[-1][0] == summary["steps"] > 0
        # The run the killed sweep trained itself was left `running`: it reads `interrupted`.
        assert json.loads((own / "summary.json").read_text())["status"] == "running"
        assert sgdlab.load_run(own).status == "interrupted"
        assert json.loads((own / "summary.json").read_text())["status"] == "interrupted"
    finally:
        for pid in everyone + [pid for pid, _ in kids]:  # only what this test started, if still there
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()


def test_sweep_cli_end_to_end(cli, tmp_path):
    cfg = write_toml(tmp_path / "c.toml", tiny())
    result = cli(
        "sweep",
        cfg,
        "--grid",
        "optim.lr=0.1",
        "--seeds",
        "2",
        "--out",
        tmp_path / "s",
        "--workers",
        "1",
        "--set",
        "train.epochs=1",
    )
    assert result.exit_code == 0, result.output
    assert "2 runs: 2 completed" in result.stdout and (tmp_path / "s" / "report.html").is_file()
    assert all(r.config.train.epochs == 1 for r in load_sweep(tmp_path / "s").runs().values())
    assert cli("sweep", cfg, "--out", tmp_path / "t", "--workers", "0").exit_code == 2


# --- Ray ---------------------------------------------------------------------------------


def test_without_ray_installed_the_error_is_one_line(cli, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray → ImportError
    cfg = write_toml(tmp_path / "c.toml", tiny())
    result = cli("sweep", cfg, "--grid", "optim.lr=0.1", "--out", tmp_path / "s", "--ray", "local")
    assert result.exit_code == 2 and "pip install 'sgdlab[ray]'" in result.stderr
    assert not (tmp_path / "s").exists()  # checked before anything is written


def test_ray_tasks_ask_for_the_runs_cpus_and_a_gpu_for_cuda(tmp_path):
    from sgdlab.sweep.ray_executor import resources

    cpu = Job("a", tmp_path / "a", tiny(threads=2))
    cuda = Job("b", tmp_path / "b", tiny(device="cuda"))  # a GPU node may be elsewhere
    assert resources(cpu) == {"num_cpus": 2, "num_gpus": 0}
    assert resources(cuda) == {"num_cpus": 1, "num_gpus": 1}


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip(
        "ray", reason="Ray is not installed (pip install 'sgdlab[ray]'; `make test` installs it)"
    )
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(
        address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False
    )
    yield ray
    ray.shutdown()


def test_ray_sweep_matches_the_local_pool(ray_cluster, local, tmp_path):
    root, cfg, pool_sweep, _ = local
    messages: list[str] = []
    sweep = run_sweep(cfg, ["optim.lr=0.05,50.0"], 2, tmp_path / "ray", ray="local", log=messages.append)
    assert any("Ray tasks on a cluster with 2 CPUs" in m for m in messages), messages
    pool = final_rows(pool_sweep)
    for name, row in final_rows(sweep).items():
        assert row["status"] == pool[name]["status"]
        for key in ("train_loss", "test_loss"):
            a, b = row[key], pool[name][key]
            assert a == b or (math.isnan(a) and math.isnan(b)) if a is not None else b is None
    assert ray_cluster.is_initialized()  # a connection the sweep did not open stays open
    invocation = json.loads((sweep.path / "sweep.json").read_text())["invocations"][-1]
    assert invocation["executor"] == "ray" and invocation["address"] == "local"


def test_seed_bands_stay_on_their_axis():
    """A log axis gets a geometric band (never ≤ 0); a linear band of a non-negative metric
    (an error rate) stops at 0 instead of crossing it; a signed metric keeps mean ± std."""
    from sgdlab.report.sweep import _band

    e = np.arange(3.0)
    losses = [(e, np.array([1.0, 1e-2, 1e-4])), (e, np.array([3.0, 1e-1, 1e-5]))]
    _, line, low, high = _band(losses, log=True)
    assert (low > 0).all() and (low <= line).all() and (line <= high).all()
    assert line == pytest.approx(np.sqrt([3.0, 1e-3, 1e-9]))  # the geometric mean
    errors = [(e, np.array([0.0, 0.0, 0.5])), (e, np.array([0.0, 0.2, 0.5]))]
    _, line, low, _ = _band(errors, log=False)
    assert low[1] == 0.0 and line[1] - np.std([0.0, 0.2], ddof=1) < 0  # clipped where it would cross
    signed = [(e, np.array([-1.0, 0.0, 1.0])), (e, np.array([1.0, 0.0, -1.0]))]
    _, line, low, _ = _band(signed, log=False)
    assert low[0] == pytest.approx(-np.std([-1.0, 1.0], ddof=1))

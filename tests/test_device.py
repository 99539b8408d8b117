"""What the GPU path rests on, checked on the CPU: the torch requirement admits other releases,
the training loop reads device numbers on the host only when something is recorded, mixed
precision is refused, `deterministic = true` sets up cuBLAS, and probe states come back on the
run's device. The tests that need a GPU are in test_cuda.py."""

from __future__ import annotations

import math
import re
import tomllib
import warnings
from collections import Counter

import pytest
import torch
from packaging.requirements import Requirement

import sgdlab
from conftest import REPO, Flaky, tiny
from sgdlab.build import CUBLAS_WORKSPACE, resolve, use_deterministic_algorithms
from sgdlab.config import load_config
from sgdlab.engine import loop
from sgdlab.engine.state import on_device
from sgdlab.errors import ConfigError, UserError
from sgdlab.gradients import gram_stats

# ---------------------------------------------------------------------------------------
# installable next to another torch


def torch_requirement() -> Requirement:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    (spec,) = [r for r in map(Requirement, project["dependencies"]) if r.name == "torch"]
    return spec


def test_the_package_admits_other_torch_releases_and_the_makefile_keeps_its_pin():
    spec = torch_requirement().specifier
    pinned = re.search(r"torch==([0-9.]+)", (REPO / "Makefile").read_text(encoding="utf-8"))
    assert pinned is not None, "the Makefile no longer pins the CPU wheel"
    assert spec.contains(pinned.group(1))  # the two-command setup still installs
    for other in ("2.3.0", "2.4.1", "2.6.0+cu124", "2.9.1"):  # e.g. a GPU machine's own CUDA build
        assert spec.contains(other), other
    assert not spec.contains("2.2.2")  # the oldest release the code needs is declared
    assert spec.contains(torch.__version__)


# ---------------------------------------------------------------------------------------
# host syncs per step

SYNCS = ("item", "tolist", "cpu", "numpy", "__float__", "__int__", "__bool__")


@pytest.fixture
def syncs(monkeypatch):
    """Counts of the Tensor methods that make the host wait for the device, by name."""
    counts: Counter[str] = Counter()
    for name in SYNCS:
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _name=name, _original=original, **kwargs):
            counts[_name] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    monkeypatch.setattr(loop, "REPORT_SECONDS", math.inf)  # no time-based reads in a slow CI
    return counts


def count_syncs(counts: Counter[str], cfg: dict) -> tuple[int, int]:
    """(host reads during training, recorded metric values) of one in-memory run of `cfg`."""
    parts = sgdlab.prepare(cfg)
    counts.clear()
    result = sgdlab.runner.start(parts)
    values = sum(
        result.metrics[c].null_count.__rsub__(result.metrics.num_rows)
        for c in result.metrics.column_names
        if c not in ("step", "epoch", "lr")  # lr is η_k, a Python number
    )
    return sum(counts.values()), values


def test_without_probes_no_step_makes_the_host_wait(syncs):
    """Probes off: the losses of quiet steps are read in one go at the end."""
    short = count_syncs(syncs, tiny(probes={"use": []}, train={"epochs": 1}))
    long = count_syncs(syncs, tiny(probes={"use": []}, train={"epochs": 6}))
    assert long[0] == short[0], f"{long[0] - short[0]} more host reads for 40 more steps"


def test_with_the_basic_probes_host_reads_grow_only_with_what_is_recorded(syncs):
    basic = {"use": ["eval", "batch_loss", "norms", "update_norm", "grad_norm"]}
    short = count_syncs(syncs, tiny(probes=basic, train={"epochs": 1}))
    long = count_syncs(syncs, tiny(probes=basic, train={"epochs": 6}))
    assert long[1] > short[1]
    assert long[0] - short[0] <= long[1] - short[1]


def test_gram_statistics_are_read_back_at_once(syncs):
    g = torch.randn(6, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    syncs.clear()
    stats = gram_stats(g @ g.T)
    assert len(stats) > 15 and sum(syncs.values()) == 1


def test_a_divergence_between_reads_is_dated_as_a_per_step_check_dates_it():
    diverging = {
        "data": {"targets": "onehot"},
        "train": {"loss": "squared", "epochs": 50},
        "optim": {"lr": 50.0},
    }
    every_step = sgdlab.run(tiny(**diverging, probes={"use": ["batch_loss"]}))
    quiet = sgdlab.run(tiny(**diverging, probes={"use": ["eval"]}))
    assert every_step.status == quiet.status == "diverged"
    k = every_step.summary["diverged_at"]
    assert quiet.summary["diverged_at"] == k and quiet.summary["steps"] == k + 1
    assert quiet.metrics["step"].to_pylist()[-1] <= k  # nothing recorded past the divergence


def test_pending_losses_report_the_first_non_finite_step():
    pending = loop.PendingLosses()
    for step, value in [(3, 1.0), (4, math.inf), (5, math.nan)]:
        pending.add(step, torch.tensor(value))
    assert pending.read() == (4, pytest.approx(math.nan, nan_ok=True)) and len(pending) == 0


# ---------------------------------------------------------------------------------------
# mixed precision, determinism, devices


def test_mixed_precision_is_refused_with_the_reason():
    with torch.autocast("cpu", dtype=torch.bfloat16), pytest.raises(UserError, match="mixed precision"):
        sgdlab.run(tiny())
    with pytest.raises(ConfigError, match="dtype"):
        sgdlab.prepare(tiny(dtype="bfloat16"))


@pytest.fixture
def deterministic_off():
    before = torch.are_deterministic_algorithms_enabled()
    yield
    torch.use_deterministic_algorithms(before)


def test_deterministic_on_cuda_sets_the_cublas_workspace_first(monkeypatch, deterministic_off):
    monkeypatch.delenv(CUBLAS_WORKSPACE, raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # unset and CUDA not started: set quietly
        use_deterministic_algorithms(torch.device("cuda"))
    assert torch.are_deterministic_algorithms_enabled()
    import os

    assert os.environ[CUBLAS_WORKSPACE] == ":4096:8"
    monkeypatch.setenv(CUBLAS_WORKSPACE, ":16:8")  # a deterministic setting of the user's: kept
    use_deterministic_algorithms(torch.device("cuda"))
    assert os.environ[CUBLAS_WORKSPACE] == ":16:8"
    monkeypatch.setenv(CUBLAS_WORKSPACE, ":4096:2:16:8")
    with pytest.warns(UserWarning, match="export it before starting Python"):
        use_deterministic_algorithms(torch.device("cuda"))
    assert os.environ[CUBLAS_WORKSPACE] == ":4096:8"


def test_a_replay_on_cuda_resolves_to_deterministic(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # resolving touches no GPU
    gamma = {"use": ["batch_loss", "gamma"]}
    assert resolve(load_config(raw=tiny(device="cuda", probes=gamma))).deterministic
    assert not resolve(load_config(raw=tiny(device="cuda"))).deterministic
    assert not resolve(load_config(raw=tiny(device="cpu", probes=gamma))).deterministic
    stored = {"use": ["gamma"], "gamma": {"mode": "store"}}  # no replay, nothing to repeat
    assert not resolve(load_config(raw=tiny(device="cuda", probes=stored))).deterministic


def test_probe_states_come_back_with_floats_on_the_run_device():
    gen = torch.Generator().manual_seed(0)
    state = {"gen": gen.get_state(), "refs": [torch.ones(2, dtype=torch.float64)], "idx": torch.arange(3)}
    moved = on_device(state, torch.device("meta"))
    assert moved["refs"][0].device.type == "meta" and moved["refs"][0].dtype == torch.float64
    assert moved["gen"].device.type == "cpu" and moved["idx"].device.type == "cpu"
    gen.set_state(moved["gen"])  # still a state torch accepts


def test_a_replay_records_its_verdict(tmp_path):
    from sgdlab.probes.gamma import ReplayError
    from sgdlab.store import RunDir

    agreed = sgdlab.run(tiny(probes={"use": ["gamma"]}))
    assert agreed.summary["replay"] == {
        "verified": True,
        "checked_steps": agreed.summary["steps"],
        "max_loss_diff": 0.0,
    }
    with pytest.raises(ReplayError):
        sgdlab.run(tiny(probes={"use": ["gamma"]}), tmp_path / "r", model=Flaky())
    verdict = RunDir(tmp_path / "r").read_summary()["replay"]
    assert verdict["verified"] is False and "at step 0" in verdict["reason"]

"""Shared helpers: tiny configs that train in well under a second, and a CLI runner."""

from __future__ import annotations

import copy
import functools
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
import typer.testing
from typer.testing import CliRunner

# typer builds the click command from the app's functions on every `CliRunner.invoke` (tens of
# milliseconds of introspection); the app does not change while the tests run, so build it once.
typer.testing._get_command = functools.cache(typer.testing._get_command)

REPO = Path(__file__).resolve().parents[1]

TINY = {
    "seed": 0,
    "device": "cpu",
    "data": {"name": "digits", "n_train": 128, "n_test": 64},
    "model": {"name": "mlp", "widths": [16]},
    "optim": {"name": "sgd", "lr": 0.1},
    "train": {"batch_size": 16, "epochs": 2},
}


def tiny(**sections) -> dict:
    """TINY with sections merged in: tiny(optim={"name": "adam"}, seed=3)."""
    cfg = copy.deepcopy(TINY)
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key].update(value)
        else:
            cfg[key] = value
    return cfg


def write_toml(path: Path, raw: dict) -> Path:
    from sgdlab.config import dump_toml

    path.write_text(dump_toml(raw))
    return path


def pytest_xdist_make_scheduler(config, log):
    """Under pytest-xdist (`make test` runs two workers): a test file goes to one worker as a
    whole, so its module fixtures are built once; and the pinned-claims test of a reproduction
    goes with that reproduction's own file (tests/test_<name>.py), so the session's
    `smoke_reproduction` of that name runs on one worker only."""
    from xdist.scheduler import LoadScopeScheduling

    class ByFile(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path, _, rest = nodeid.partition("::")
            if path.endswith("test_pinned_claims.py") and rest.endswith("]"):
                own = f"tests/test_{rest[rest.index('[') + 1 : -1].replace('-', '_')}.py"
                return own if (REPO / own).is_file() else path
            return path

    return ByFile(config, log)


@pytest.fixture(scope="session")
def smoke_reproduction(tmp_path_factory):
    """`smoke_reproduction(name)` → (directory, claims) of `sgdlab reproduce NAME --scale smoke`,
    run once per test session (per worker under pytest-xdist, where
    `pytest_xdist_make_scheduler` sends a reproduction's tests to one worker): each
    reproduction's own tests and the pinned-claims test (tests/test_pinned_claims.py) share
    it, so no smoke scale runs twice."""
    from sgdlab.experiments import reproduce

    done: dict[str, tuple[Path, list]] = {}

    def get(name: str) -> tuple[Path, list]:
        if name not in done:
            out = tmp_path_factory.mktemp(f"{name}-smoke")
            done[name] = (out, reproduce(name, out, "smoke", "cpu"))
        return done[name]

    return get


@pytest.fixture
def cli():
    """Invoke the sgdlab CLI in-process; returns the click Result (exit_code, stdout, stderr)."""
    from sgdlab.cli import app

    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, [str(a) for a in args])

    return invoke


def run_cli_process(*args: str, **kwargs) -> subprocess.CompletedProcess:
    """The real `sgdlab` command in a fresh process."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run(
        [sys.executable, "-m", "sgdlab", *map(str, args)], capture_output=True, text=True, env=env, **kwargs
    )


def _cli_in_child(*args: str) -> None:
    from sgdlab.cli import app

    app([*args], prog_name="sgdlab")


def start_and_stop(cfg_path: Path, out: Path, sig: int, min_state_step: int, watch: str = "") -> Any:
    """Start `sgdlab run` and send `sig` once a state at ≥ min_state_step is on disk in
    `out / watch` (e.g. watch="replay" for the second pass of a γ run); returns the stopped
    process (`exitcode`: 130 after Ctrl-C, -9 after SIGKILL).

    The command runs in a child forked from this process, which starts in milliseconds with
    torch loaded (a fresh interpreter takes seconds); its run uses one thread, as a sweep's
    forked workers do (sweep.executors.start_method)."""
    import multiprocessing

    from sgdlab.store import RunDir

    proc = multiprocessing.get_context("fork").Process(
        target=_cli_in_child, args=("run", str(cfg_path), "--out", str(out), "--quiet")
    )
    proc.start()
    watched = out / watch
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        states = RunDir(watched).states() if watched.exists() else []
        if states and states[-1][0] >= min_state_step:
            break
        if not proc.is_alive():
            pytest.fail(f"run ended (exit code {proc.exitcode}) before it could be stopped")
        time.sleep(0.02)
    assert proc.pid is not None
    os.kill(proc.pid, sig)
    proc.join(timeout=60)
    return proc


class Flaky(torch.nn.Module):
    """Not deterministic: unseeded noise on the output of a digits classifier, so a γ replay
    cannot repeat pass 1."""

    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
        self.gen = torch.Generator()

    def forward(self, x):
        self.gen.seed()
        return self.net(x) + 1e-3 * torch.randn(x.shape[0], 10, generator=self.gen)

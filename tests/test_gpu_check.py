"""benchmarks/gpu_check.sh, the one prepared GPU check, in its CPU dry mode (`--device cpu
--quick`): every step of the real check, shortened, on this machine's torch. Slow (minutes)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import REPO

CHECKS = [
    "environment",
    "install",
    "cuda-tests",
    "overhead",
    "gamma-replay",
    "per-sample",
    "curvature",
    "plans",
    "full-slice",
]


def cifar10_source():
    from sgdlab.config import DataConfig
    from sgdlab.data.cifar10 import locate_cifar10
    from sgdlab.errors import UserError

    try:
        return locate_cifar10(DataConfig(name="cifar10")).path
    except UserError:
        return None


@pytest.mark.slow
def test_the_gpu_check_dry_run_passes_on_the_cpu(tmp_path):
    cifar = cifar10_source()
    if cifar is None:
        pytest.skip("no CIFAR-10 here (SGDLAB_DATA_ROOT)")
    out = tmp_path / "check"
    done = subprocess.run(
        [str(REPO / "benchmarks/gpu_check.sh"), "--device", "cpu", "--quick", "--cifar", str(cifar)]
        + ["--out", str(out), "--python", sys.executable],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    summary = json.loads((out / "summary.json").read_text())
    assert done.returncode == 0, (out / "summary.md").read_text() + done.stdout[-3000:]
    assert [c["check"] for c in summary["checks"]] == CHECKS and summary["passed"]
    assert summary["environment"]["device"] == "cpu" and summary["cuda_tests"]["failures"] == 0
    assert {"overhead", "gamma_replay", "per_sample_gradients", "curvature"} <= set(summary["benchmarks"])
    measured = summary["slice"]
    assert measured["status"] == "completed" and measured["epoch_seconds_best"] > 0
    assert measured["plan_epoch_seconds"] > 0 and measured["full_run_epochs"] > measured["epochs"]
    assert (out / "summary.md").read_text().startswith("# sgdlab GPU check: passed")
    assert not (REPO / "build").exists()  # the install left nothing in the checkout


def test_the_summary_fails_a_gpu_check_where_cuda_tests_skipped(tmp_path):
    """On a GPU a skipped cuda test means the GPU was not used: the check fails."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import gpu_check

    (tmp_path / "checks.tsv").write_text("environment\t0\t1.0\t\ncuda-tests\t0\t9.0\t\n")
    (tmp_path / "environment.json").write_text(json.dumps({"device": "cuda", "gpus": ["H100"]}))
    (tmp_path / "cuda-tests.xml").write_text(
        '<testsuites><testsuite tests="14" failures="0" errors="0" skipped="14"/></testsuites>'
    )
    (tmp_path / "benchmarks").mkdir()
    assert gpu_check.summary(tmp_path) == 1
    assert "FAILED" in (tmp_path / "summary.md").read_text()
    (tmp_path / "cuda-tests.xml").write_text(
        '<testsuites><testsuite tests="14" failures="0" errors="0" skipped="0"/></testsuites>'
    )
    assert gpu_check.summary(tmp_path) == 0

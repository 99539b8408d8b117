"""Faults a long run must survive: SIGKILL at chosen points (a step, a checkpoint write, a
metrics write, the γ replay pass), damaged checkpoints, a full disk, NaN/inf anywhere. After
each, `sgdlab resume` ends bit-identical to an uninterrupted run, with no duplicated or missing
metric rows, and no damaged checkpoint is ever loaded.

Only the run that is killed needs a process of its own, forked from this one; the references
and the resumes run in this one (a fresh process with torch costs seconds)."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
import torch

import sgdlab
from conftest import run_cli_process, tiny, write_toml
from sgdlab.errors import UserError
from sgdlab.optim import optimizers
from sgdlab.store import RunDir
from sgdlab.store.files import CorruptCheckpoint, DiskFull, checksum_path
from test_resume import assert_same_run

RUN = tiny(
    train={"epochs": None, "max_steps": 600},
    checkpoint={"every_steps": 50, "keep": 3},
    probes={"use": ["eval", "batch_loss", "norms"], "eval": {"schedule": "every:100"}},
)
GAMMA = tiny(
    train={"epochs": None, "max_steps": 300},
    checkpoint={"every_steps": 50, "keep": 2},
    probes={"use": ["eval", "batch_loss", "gamma"]},
)


SHORT = tiny(train={"epochs": None, "max_steps": 60}, checkpoint={"every_steps": 20, "keep": 3})


def stopped_at(step_limit, out, monkeypatch, raw=SHORT):
    """`raw` trained into `out` and stopped (as by Ctrl-C) after step `step_limit`."""
    from sgdlab import faults

    steps = []

    def point(name):
        steps.append(name == "step")
        if sum(steps) >= step_limit:
            raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(faults, "point", point)
        with pytest.raises(KeyboardInterrupt):
            sgdlab.run(raw, out)


def run_with_fault(cfg: Path, out: Path, fault: str, monkeypatch) -> int:
    """Train `cfg` into `out` in a forked child with SGDLAB_FAULT=`fault` (read afresh at the
    fork, see sgdlab.faults); the child's exit code, -SIGKILL when the fault fired. A fork
    starts in milliseconds with torch loaded, and its runs use one thread, as a sweep's
    forked workers do (sweep.executors.start_method)."""
    import multiprocessing

    monkeypatch.setenv("SGDLAB_FAULT", fault)
    child = multiprocessing.get_context("fork").Process(target=sgdlab.run, args=(cfg, out))
    child.start()
    monkeypatch.delenv("SGDLAB_FAULT")
    child.join(timeout=300)
    return child.exitcode


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    refs = {}
    for name, raw in (("run", RUN), ("gamma", GAMMA)):
        cfg = write_toml(root / f"{name}.toml", raw)
        sgdlab.run(cfg, root / f"ref-{name}")
        refs[name] = (cfg, root / f"ref-{name}")
    return refs


@pytest.mark.parametrize(
    "kind,fault",
    [
        ("run", "step@350"),  # between two checkpoints
        ("run", "write:state-@4"),  # a resumable state half-written
        ("run", "write:metrics.parquet@3"),  # a metrics flush half-written
        ("run", "write:summary.json@5"),
        ("gamma", "step@420"),  # in the replay pass (300 first-pass steps)
        ("gamma", "write:final.pt@1"),  # between the two passes
    ],
)
def test_sigkill_at_a_point_then_resume_is_bit_identical(reference, tmp_path, kind, fault, monkeypatch):
    cfg, ref = reference[kind]
    out = tmp_path / "killed"
    assert run_with_fault(cfg, out, fault, monkeypatch) == -signal.SIGKILL
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "running"
    sgdlab.resume(out)
    assert_same_run(ref, out)
    leftovers = [p for p in out.rglob(".*.tmp-*")]
    assert not leftovers, leftovers


def test_a_damaged_latest_state_is_skipped_not_loaded(reference, tmp_path, monkeypatch):
    cfg, ref = reference["run"]
    out = tmp_path / "killed"
    stopped_at(420, out, monkeypatch, RUN)
    states = RunDir(out).states()
    assert len(states) >= 2
    newest = states[-1][1]
    data = bytearray(newest.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte: the checksum catches it
    newest.write_bytes(bytes(data))
    with pytest.raises(CorruptCheckpoint, match="does not match its checksum"):
        RunDir(out).load(newest.name)
    with pytest.warns(UserWarning, match=f"{newest.name}: damaged"):
        sgdlab.resume(out)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["skipped_states"] == [newest.name]
    assert_same_run(ref, out)


def test_a_truncated_checkpoint_without_checksum_is_refused(tmp_path):
    sgdlab.run(tiny(), tmp_path / "r")
    final = tmp_path / "r" / "checkpoints" / "final.pt"
    checksum_path(final).unlink()
    final.write_bytes(final.read_bytes()[:100])
    with pytest.raises(CorruptCheckpoint, match="cannot be read"):
        sgdlab.load_run(tmp_path / "r").checkpoint("final.pt")


def test_disk_full_is_a_clear_error_and_earlier_checkpoints_survive(tmp_path, monkeypatch):
    import sgdlab.store.files as files

    real_save, calls = torch.save, []

    def filling_disk(obj, path, *a, **k):
        calls.append(Path(path).name)
        if len(calls) >= 5:  # init.pt and the first states fit; then the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(obj, path, *a, **k)

    monkeypatch.setattr(files.torch, "save", filling_disk)
    out = tmp_path / "r"
    with pytest.raises(DiskFull, match="no space left"):
        sgdlab.run(RUN, out)
    states = RunDir(out).states()
    assert states and all(RunDir(out).load(p.name)["step"] == s for s, p in states)
    assert not list(out.rglob(".*.tmp-*"))
    monkeypatch.setattr(files.torch, "save", real_save)  # space freed
    sgdlab.resume(out)
    ref = sgdlab.run(RUN, tmp_path / "ref")
    assert sgdlab.load_run(out).metrics.equals(ref.metrics)


@pytest.fixture
def tiny_disk(tmp_path):
    """A 600 kB tmpfs (needs root, as CI has); skipped where mounting is not allowed."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({made.stderr.strip() or 'not root'})")
    yield mount
    subprocess.run(["umount", str(mount)], capture_output=True)


def test_a_really_full_disk_from_the_cli(tiny_disk, tmp_path):
    raw = tiny(
        model={"widths": [256]},
        train={"epochs": None, "max_steps": 400},
        checkpoint={"every_steps": 20, "keep": 50},
    )
    cfg = write_toml(tmp_path / "c.toml", raw)
    out = tiny_disk / "r"
    done = run_cli_process("run", cfg, "--out", out, "--quiet")
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "no space left" in lines[0] and "Traceback" not in done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted" and "no space left" in summary["error"]
    for step, path in RunDir(out).states():
        assert RunDir(out).load(path.name)["step"] == step  # every state on disk is whole


# ---------------------------------------------------------------------------------------
# Numerical faults


@pytest.mark.parametrize("optimizer", optimizers.names())
def test_every_optimizer_diverges_cleanly(optimizer):
    result = sgdlab.run(tiny(optim={"name": optimizer, "lr": 1e30}, probes={"use": ["eval", "batch_loss"]}))
    s = result.summary
    assert s["status"] == "diverged" and s["stop_reason"] == "diverged"
    assert s["diverged_at"] <= 3
    assert s["last_finite"]["train_loss"] == result.metrics["train_loss"][0].as_py()


@pytest.mark.parametrize("rule", ["constant", "inverse", "inverse-sqrt", "grad-damped", "combined"])
def test_every_step_size_rule_diverges_cleanly(rule):
    result = sgdlab.run(tiny(optim={"name": "sgd", "lr": 1e30, "schedule": {"name": rule, "alpha": 0.0}}))
    assert result.summary["status"] == "diverged" and result.summary["diverged_at"] <= 3


def test_nan_in_the_data_stops_at_the_step_that_meets_it():
    from sgdlab.build import resolve
    from sgdlab.config import load_config
    from sgdlab.data import build_dataset

    raw = tiny(train={"sampler": "cyclic"})
    data = build_dataset(resolve(load_config(raw=raw)).data, 0)
    data.train.x[40].view(-1)[3] = float("nan")  # in batch 2 of the cyclic order (batch size 16)
    result = sgdlab.run(raw, data=data)
    assert result.summary["status"] == "diverged" and result.summary["diverged_at"] == 2
    steps = result.metrics["step"].to_pylist()
    assert steps == sorted(set(steps)) and max(steps) == 2


def test_inf_parameters_at_the_end_are_divergence_not_completion():
    class Blows(torch.nn.Module):
        """Finite losses, but the last update sends a weight to inf."""

        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(64, 10)
            self.calls = 0

        def forward(self, x):
            self.calls += 1
            if self.calls == 16:  # the forward of the last step
                self.lin.weight.register_hook(lambda g: g * float("inf"))
            return self.lin(x.flatten(1))

    result = sgdlab.run(tiny(probes={"use": ["batch_loss"]}), model=Blows())
    assert result.summary["status"] == "diverged" and result.summary["diverged_at"] == 16


def test_a_diverged_run_resumes_as_nothing_to_do(tmp_path, cli):
    out = tmp_path / "r"
    sgdlab.run(tiny(optim={"lr": 1e30}), out)
    result = cli("resume", out)
    assert result.exit_code == 0 and "already diverged" in result.stderr


def test_user_errors_are_errors_users_can_act_on():
    assert issubclass(DiskFull, UserError) and issubclass(CorruptCheckpoint, UserError)


# ---------------------------------------------------------------------------------------
# A reproduction whose worker process dies


def three_runs(lab):
    """An experiment of three tiny runs on a pool of 2 (this process and one worker)."""
    from sgdlab.experiments.base import decide

    runs = lab.run_many({f"r{i}": tiny(seed=i, train={"epochs": 4}) for i in range(3)}, workers=2)
    return [
        decide(
            "trained",
            "every run completes",
            all(r.status == "completed" for r in runs.values()),
            statuses={n: r.status for n, r in runs.items()},
        )
    ]


def test_a_reproduction_whose_worker_died_is_one_error_line_and_finishes_when_run_again(
    tmp_path, cli, monkeypatch
):
    from fake_experiments import registered

    monkeypatch.setenv("SGDLAB_FAULT_WORKER", "step@20")  # the worker dies in r2, its first run
    with registered("three-runs", three_runs):
        result = cli("reproduce", "three-runs", "--scale", "smoke", "--out", tmp_path / "x", "--quiet")
        assert result.exit_code == 2, result.output
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: r2: worker died"), result.stderr
        assert "run the same command again" in lines[0] and "Traceback" not in result.output
        assert [RunDir(tmp_path / "x" / "runs" / n).read_summary()["status"] for n in ("r0", "r1", "r2")] == [
            "completed",
            "completed",
            "failed",
        ]

        monkeypatch.delenv("SGDLAB_FAULT_WORKER")
        again = cli("reproduce", "three-runs", "--scale", "smoke", "--out", tmp_path / "x")
    assert again.exit_code == 0, again.output
    assert "r0: reusing" in again.stderr and "r1: reusing" in again.stderr and "r2: resuming" in again.stderr
    claims = json.loads((tmp_path / "x" / "claims.json").read_text())
    assert claims[0]["verdict"] == "holds"


# ---------------------------------------------------------------------------------------
# Reproductions whose runs diverge: claims say "run X diverged at step k", never crash


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    """A completed and a diverged (lr 10^30) tiny run with the probes the parts read."""
    root = tmp_path_factory.mktemp("diverging")
    probes = {"use": ["eval", "update_norm", "grad_norm"], "eval": {"schedule": "epoch"}}
    sgdlab.run(tiny(probes=probes), root / "ok")
    sgdlab.run(tiny(optim={"lr": 1e30}, probes=probes), root / "bad")
    ok, bad = sgdlab.load_run(root / "ok"), sgdlab.load_run(root / "bad")
    assert ok.status == "completed" and bad.status == "diverged"
    return root, ok, bad


def _why(name, bad):
    return f"run {name} diverged at step {bad.summary['diverged_at']}"


def test_a_diverged_run_misses_a_premise_because_it_diverged(tiny_runs):
    from sgdlab.experiments.premise import Premise, premise_claim

    _, ok, bad = tiny_runs
    check = Premise(max_loss=10.0, max_error=1.0).check(bad)
    assert not check["meets"] and check["why_not"] == f"diverged at step {bad.summary['diverged_at']}"
    claim, meets = premise_claim("x/premise", "x", Premise(max_loss=10.0, max_error=1.0), {"a": ok, "b": bad})
    assert claim.verdict == "fails" and meets == ["a"] and claim.evidence["missed"] == ["b"]


def test_qualitative_sgd_parts_with_a_diverged_run(tiny_runs, tmp_path):
    from sgdlab.experiments.base import Lab
    from sgdlab.experiments.qualitative_sgd import agreement, least_squares, nets
    from sgdlab.experiments.qualitative_sgd.settings import SCALE_SETTINGS

    _, ok, bad = tiny_runs
    s, lab = SCALE_SETTINGS["smoke"], Lab(tmp_path, "smoke")
    ls = dict.fromkeys(least_squares.configs(s.least_squares), ok) | {"ls-over": bad}
    [claim] = least_squares.least_squares_part(lab, s.least_squares, ls)
    assert claim.verdict == "not-applicable" and claim.evidence["reason"] == _why("ls-over", bad)
    [claim] = nets.nets_part(lab, s.nets, {"net-3x5": ok, "net-15x25": bad})
    assert claim.verdict == "not-applicable" and claim.evidence["reason"] == _why("net-15x25", bad)
    [claim] = agreement.agreement_part(lab, s.agreement, {"mu-mlp": bad})
    assert claim.verdict == "not-applicable" and claim.evidence["reason"] == _why("mu-mlp", bad)
    claims, _ = nets.rules_part(lab, s.nets, {"rule-combined": ok, "rule-undamped": bad, "rule-damped": bad})
    by_id = {c.id: c for c in claims}
    assert by_id["rules/undamped-diverges"].verdict == "holds"
    assert by_id["rules/damping-survives"].verdict == "fails"
    assert by_id["rules/damping-survives"].headline == _why("rule-damped", bad)
    assert by_id["rules/diminishing-smaller-final-gradient"].verdict == "not-applicable"


def test_gamma_principle_pca_with_a_diverged_run(tiny_runs, tmp_path):
    from sgdlab.experiments.base import Lab
    from sgdlab.experiments.gamma_principle import pca_claim

    _, ok, bad = tiny_runs
    claim = pca_claim(Lab(tmp_path, "smoke"), {"optimizer-momentum": ok, "optimizer-adam": bad})
    assert claim.verdict == "not-applicable" and claim.evidence["reason"] == _why("optimizer-adam", bad)


def test_sgdl_flatness_noise_sweep_with_a_diverged_run(tiny_runs):
    from sgdlab.experiments.sgdl_flatness.claims import Baseline, sweep_claims
    from sgdlab.experiments.sgdl_flatness.measure import split_sizes, sweep_run
    from sgdlab.experiments.sgdl_flatness.settings import SCALE_SETTINGS

    _, ok, bad = tiny_runs
    seeds = (sweep_run(ok, 0.0, "constant", 0), sweep_run(ok, 0.0, "constant", 1))
    measured = {
        "sgdl-digits-0-seed0": seeds[0],
        "sgdl-digits-0-seed1": seeds[1],
        "sgdl-digits-constant-0.1": sweep_run(bad, 0.1, "constant", 0),
        "sgdl-digits-decaying-0.1": sweep_run(bad, 0.1, "decaying", 0),
    }
    claims = sweep_claims(
        "digits", measured, Baseline(seeds, *split_sizes(ok)), SCALE_SETTINGS["smoke"].sweep
    )
    step = bad.summary["diverged_at"]
    threshold = claims[0]
    assert (
        threshold.id == "mlp/digits-noise-threshold"
        and f"γ' = 0.1 diverged at step {step}" in threshold.headline
    )
    for claim in claims:  # a diverged noise level is never "similar", and says why
        assert claim.verdict != "holds"
        if claim.verdict != "not-applicable":
            assert claim.evidence["runs"]["0.1"]["status"] == "diverged"
            assert claim.evidence["runs"]["0.1"]["diverged_at"] == step


def test_a_reproduction_with_a_forced_divergence_ends_with_claims_that_say_so(tmp_path, monkeypatch):
    """qualitative-sgd at smoke scale, its μ run (--only mu-mlp) at lr 10^30: the command
    ends, and the claim names the run and the step."""
    from sgdlab.experiments import base, reproduce

    real_job = base.Lab.job

    def diverging(self, name, raw):
        return real_job(self, name, dict(raw, optim=dict(raw.get("optim", {}), lr=1e30)))

    monkeypatch.setattr(base.Lab, "job", diverging)
    claims = reproduce("qualitative-sgd", tmp_path, "smoke", "cpu", only="mu-mlp")
    summary = json.loads((tmp_path / "runs" / "mu-mlp" / "summary.json").read_text())
    assert summary["status"] == "diverged"
    assert [(c.id, c.verdict, c.evidence["reason"]) for c in claims] == [
        ("mu/batch-size", "not-applicable", f"run mu-mlp diverged at step {summary['diverged_at']}")
    ]
    assert json.loads((tmp_path / "claims.json").read_text())[0]["verdict"] == "not-applicable"


# ---------------------------------------------------------------------------------------
# Damaged newest state, a process gone while `running`, a full disk (issue 21's table)


def test_resume_past_a_truncated_newest_state_says_which_it_used(tmp_path, cli, monkeypatch):
    out = tmp_path / "r"
    stopped_at(50, out, monkeypatch)
    assert [s for s, _ in RunDir(out).states()] == [20, 40]
    newest = out / "checkpoints" / "state-000000040.pt"
    newest.write_bytes(newest.read_bytes()[:300])
    result = cli("resume", out, "--quiet")
    assert result.exit_code == 0, result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"warning: {newest}: damaged (does not match its checksum")
    assert line.endswith("; resuming from state-000000020.pt instead")
    assert sgdlab.load_run(out).metrics.equals(sgdlab.run(SHORT).metrics)


def test_a_full_disk_ends_the_run_interrupted_with_the_reason(tmp_path, monkeypatch):
    """Every write fails once the disk fills at the third state, the final flush of metrics
    and summary too: the summary is rewritten in place (its old blocks fit), `interrupted`."""
    import sgdlab.store.files as files

    real_replace, full = os.replace, []

    def filling(src, dst, *a, **k):
        if "state-000000060" in str(dst) or full:
            full.append(dst)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_replace(src, dst, *a, **k)

    monkeypatch.setattr(files.os, "replace", filling)
    out = tmp_path / "r"
    with pytest.raises(DiskFull, match="no space left"):
        sgdlab.run(dict(SHORT, train={"epochs": None, "max_steps": 100}), out)
    assert any(Path(p).name == "metrics.parquet" for p in full)  # the last flush failed too
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted" and "no space left" in summary["error"]
    monkeypatch.setattr(files.os, "replace", real_replace)
    sgdlab.resume(out)
    ref = sgdlab.run(dict(SHORT, train={"epochs": None, "max_steps": 100}))
    assert sgdlab.load_run(out).metrics.equals(ref.metrics)

"""On a GPU: the engine, resume bit-identity, every probe against its CPU result, the γ replay's
self-check, mixed precision and host syncs. Marked `cuda` and skipped where torch sees no CUDA
device; `benchmarks/gpu_check.sh` runs them on a GPU machine (`pytest -m cuda`)."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

import sgdlab
from conftest import tiny
from sgdlab.engine import loop
from sgdlab.errors import UserError
from sgdlab.params import flat_params

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(
        not torch.cuda.is_available(),
        reason="needs a CUDA GPU, and torch sees none here (torch.cuda.is_available() is False); "
        "benchmarks/gpu_check.sh runs these on a GPU machine",
    ),
]

BASIC = {"use": ["eval", "batch_loss", "norms", "update_norm", "grad_norm"]}


@pytest.fixture(autouse=True)
def deterministic_mode_restored():
    """`deterministic = true` switches torch's global mode on; each test starts as it found it."""
    before = torch.are_deterministic_algorithms_enabled()
    yield
    torch.use_deterministic_algorithms(before)


def on(device: str, **sections) -> dict:
    """The tiny config on `device` in float64 (CPU and GPU then agree far below any tolerance)."""
    return tiny(device=device, dtype="float64", **sections)


def assert_metrics_close(cpu, gpu, rtol: float = 1e-6, atol: float = 1e-9, skip: tuple[str, ...] = ()):
    assert cpu.metrics.column_names == gpu.metrics.column_names
    assert cpu.metrics["step"].to_pylist() == gpu.metrics["step"].to_pylist()
    for name in cpu.metrics.column_names:
        if name in skip:
            continue
        a = cpu.metrics[name].to_numpy(zero_copy_only=False).astype(float)
        b = gpu.metrics[name].to_numpy(zero_copy_only=False).astype(float)
        assert np.array_equal(np.isnan(a), np.isnan(b)), name  # measured at the same steps
        np.testing.assert_allclose(b, a, rtol=rtol, atol=atol, equal_nan=True, err_msg=name)


def test_the_engine_trains_on_the_gpu_and_repeats_itself_bit_for_bit():
    cfg = tiny(device="cuda", deterministic=True, model={"widths": [32], "dropout": 0.2}, train={"epochs": 3})
    a, b = sgdlab.run(cfg), sgdlab.run(cfg)
    assert a.parts.data.train.x.is_cuda and all(p.is_cuda for p in a.parts.model.parameters())
    assert a.metrics.equals(b.metrics)
    assert torch.equal(flat_params(a.parts.model), flat_params(b.parts.model))
    losses = a.metrics["train_loss"].drop_null().to_pylist()
    assert losses[-1] < losses[0]


def test_the_gpu_trajectory_matches_the_cpu_one():
    cpu, gpu = sgdlab.run(on("cpu", probes=BASIC)), sgdlab.run(on("cuda", probes=BASIC))
    assert_metrics_close(cpu, gpu, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(flat_params(gpu.parts.model).cpu(), flat_params(cpu.parts.model))


PROBE_CASES = {
    "basic": {
        "use": ["eval", "batch_loss", "norms", "update_norm", "grad_norm"],
        "update_norm": {"schedule": "step"},
    },
    "gradients-train": {"use": ["batch_loss", "gradients"], "gradients": {"schedule": "every:3"}},
    "gradients-eval": {"use": ["gradients"], "gradients": {"batch": "eval", "n_eval": 48}},
    "hessian": {"use": ["hessian"], "hessian": {"subset": 96, "k": 2, "trace_probes": 4}},
    "ntk": {"use": ["ntk"], "ntk": {"points": 8, "test_points": 16, "schedule": "every:4"}},
    "gamma-replay": {"use": ["batch_loss", "gamma"]},
    "gamma-store": {"use": ["batch_loss", "gamma"], "gamma": {"mode": "store"}},
}
# Lanczos stops on a residual test: its step count may differ by one between devices.
COUNTS = ("hessian_lanczos_steps", "hessian_lanczos_converged")


@pytest.mark.parametrize("case", PROBE_CASES)
def test_each_probe_measures_on_the_gpu_what_it_measures_on_the_cpu(case):
    probes = PROBE_CASES[case]
    cpu, gpu = sgdlab.run(on("cpu", probes=probes)), sgdlab.run(on("cuda", probes=probes))
    assert gpu.status == "completed"
    assert_metrics_close(cpu, gpu, skip=COUNTS)
    for name, summary in cpu.summary.get("probes", {}).items():
        for key, value in summary.items():
            other = gpu.summary["probes"][name][key]
            if isinstance(value, float) and key != "replay_max_loss_diff":
                assert other == pytest.approx(value, rel=1e-6, abs=1e-9, nan_ok=True), (name, key)


def test_probe_buffers_live_on_the_run_device():
    probes = {
        "use": ["batch_loss", "gradients", "hessian", "ntk", "gamma"],
        "gradients": {"batch": "eval", "n_eval": 32},
        "hessian": {"subset": 64, "trace_probes": 2},
        "ntk": {"points": 8, "test_points": 8},
        "gamma": {"mode": "store"},
    }
    result = sgdlab.run(tiny(device="cuda", probes=probes))
    by_name = {p.name: p for p in result.parts.probes}
    assert by_name["gradients"].subset.is_cuda and by_name["hessian"].indices.is_cuda
    assert by_name["hessian"].vectors.is_cuda
    assert all(v.is_cuda for v in by_name["ntk"].reference.values())
    _, theta_k, theta_next, _, _, _ = by_name["gamma"].stored[0]
    assert theta_k.is_cuda and theta_next.is_cuda


def test_a_resumed_gpu_run_is_bit_identical_to_an_uninterrupted_one(tmp_path, monkeypatch):
    """Interrupted between two saved states, with probe states that hold device tensors (NTK
    references, Hessian eigenvectors, stored γ iterates) and dropout drawing from the CUDA RNG."""
    cfg = tiny(
        device="cuda",
        deterministic=True,
        model={"widths": [16], "dropout": 0.1},
        train={"epochs": None, "max_steps": 60},
        checkpoint={"every_steps": 10, "every_seconds": 0},
        probes={
            "use": ["eval", "batch_loss", "ntk", "hessian", "gamma"],
            "eval": {"schedule": "every:7"},
            "ntk": {"points": 8, "test_points": 8, "schedule": "every:5"},
            "hessian": {"subset": 32, "trace_probes": 2, "schedule": "every:9"},
            "gamma": {"mode": "store", "schedule": "every:3"},
        },
    )
    sgdlab.run(cfg, tmp_path / "ref")
    monkeypatch.setattr(loop, "REPORT_SECONDS", 0.0)  # progress after every step

    def interrupt(step: int, loss: float) -> None:
        if step >= 35:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sgdlab.run(cfg, tmp_path / "cut", progress=interrupt)
    assert json.loads((tmp_path / "cut/summary.json").read_text())["status"] == "interrupted"
    monkeypatch.setattr(loop, "REPORT_SECONDS", math.inf)
    resumed = sgdlab.resume(tmp_path / "cut")
    assert resumed.status == "completed" and resumed.summary["resumes"] == 1
    a, b = (pq.read_table(tmp_path / d / "metrics.parquet") for d in ("ref", "cut"))
    assert a.equals(b)
    fa, fb = (torch.load(tmp_path / d / "checkpoints/final.pt", weights_only=True) for d in ("ref", "cut"))
    assert all(torch.equal(fa[k], fb[k]) for k in fa)


def test_the_gamma_replay_checks_itself_on_the_gpu():
    """A ResNet with batch norm (its global pooling has no deterministic CUDA backward in torch:
    sgdlab's GlobalAvgPool stands in) replays pass 1 exactly; the stored path agrees with it."""
    base = {
        "data": {"name": "digits", "n_train": 64, "n_test": 32},
        "model": {"name": "resnet18", "width": 4},
        "train": {"batch_size": 16, "epochs": 2},
    }
    replay = sgdlab.run(dict(base, device="cuda", probes={"use": ["batch_loss", "gamma"]}))
    assert replay.parts.config.deterministic  # resolved so: the replay must repeat pass 1
    summary = replay.summary["probes"]["gamma"]
    assert summary["replay_checked_steps"] == replay.summary["steps"] == 8
    assert summary["replay_max_loss_diff"] == 0.0
    store = sgdlab.run(
        dict(
            base,
            device="cuda",
            deterministic=True,
            probes={"use": ["batch_loss", "gamma"], "gamma": {"mode": "store"}},
        )
    )
    for name in ("gamma_dist", "gamma_coherence", "gamma_loss_gap"):
        np.testing.assert_allclose(
            store.metrics[name].to_numpy(zero_copy_only=False),
            replay.metrics[name].to_numpy(zero_copy_only=False),
            rtol=1e-5,
            atol=1e-7,
            err_msg=name,
        )


def test_mixed_precision_is_refused_on_the_gpu():
    with torch.autocast("cuda", dtype=torch.bfloat16), pytest.raises(UserError, match="mixed precision"):
        sgdlab.run(tiny(device="cuda"))


def test_quiet_steps_never_make_the_host_wait_for_the_gpu(monkeypatch):
    """torch's own sync detector, counted over a short and a long run without probes."""
    monkeypatch.setattr(loop, "REPORT_SECONDS", math.inf)

    def syncs(epochs: int) -> list[str]:
        parts = sgdlab.prepare(tiny(device="cuda", probes={"use": []}, train={"epochs": epochs}))
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("warn")
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                sgdlab.runner.start(parts)
        finally:
            torch.cuda.set_sync_debug_mode("default")
        return [f"{w.filename}:{w.lineno}" for w in caught if "synchroniz" in str(w.message)]

    short, long = syncs(1), syncs(6)
    assert len(long) == len(short), sorted(set(long) - set(short)) or long


def test_the_fused_convolution_step_on_the_gpu():
    """The `fused` option's backward on CUDA: autograd's gradients to rounding, the per-sample
    loop's moments, as on the CPU (tests/test_fused_step.py)."""
    from test_fused_step import Convs, autograd_grads, fused_step, loop_moments

    torch.manual_seed(0)
    model = Convs().double().cuda()
    x = torch.randn(7, 3, 12, 12, dtype=torch.float64, device="cuda")
    y = torch.randint(0, 3, (7,), device="cuda")
    expected = autograd_grads(model, x, y)
    sinks = fused_step(model, x, y)
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.grad, expected[name], rtol=1e-10, atol=1e-13, msg=name)
    for name, sink in sinks.items():
        sq, rows = loop_moments(model, x, y, name)
        assert sink.sq is not None and sink.rows is not None and sink.sq.is_cuda
        torch.testing.assert_close(sink.sq * 49, sq, rtol=1e-9, atol=1e-13, msg=name)
        torch.testing.assert_close(sink.rows * 49, rows, rtol=1e-9, atol=1e-13, msg=name)

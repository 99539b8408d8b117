"""The γ-principle instrument: the analytic least-squares answer, replay against store mode,
self-verifying replay, undefined steps, Theorem 1 checks, resume inside the replay pass."""

from __future__ import annotations

import json
import signal

import numpy as np
import pyarrow as pa
import pytest
import torch

import sgdlab
from conftest import Flaky, start_and_stop, tiny, write_toml
from sgdlab.engine import train
from sgdlab.params import flat_params
from sgdlab.probes import Reference, Runtime, batch_loss_at
from sgdlab.probes.context import sample_losses_at
from sgdlab.probes.gamma import ReplayError, loss_on_batch, star_losses
from sgdlab.probes.gamma_theorem import maximal_stretches, premise_steps, rate_check_of, theorem_checks
from sgdlab.store import Recorder, RunDir

ETA = 0.02


def least_squares(n_points=10, dim=40, seed=0):
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(n_points, dim, generator=gen, dtype=torch.float64)
    b = a @ torch.randn(dim, generator=gen, dtype=torch.float64)  # consistent system
    return a, b


def ls_config(epochs: int, probes: dict) -> dict:
    return {
        "seed": 0,
        "device": "cpu",
        "dtype": "float64",
        "model": {"name": "linear", "bias": False},
        "optim": {"name": "sgd", "lr": ETA},
        "train": {"batch_size": 1, "epochs": epochs, "loss": "squared", "sampler": "cyclic"},
        "probes": probes,
    }


def test_least_squares_gamma_is_two_minus_eta_norm_a_squared_over_distance():
    """ℓ_i = ½(a_iᵀθ − b_i)², batch 1, θ* = projection of θ_0 onto {Aθ = b}:
    γ_k = (2 − η‖a_ξk‖²)/‖θ_0 − θ*‖² exactly (REPRODUCTION.md)."""
    a, b = least_squares()
    data = sgdlab.Dataset.from_tensors(a, b)
    parts = sgdlab.prepare(ls_config(30, {"use": ["gamma"]}), data=data)
    theta0 = flat_params(parts.model).double()
    theta_star = theta0 - torch.linalg.pinv(a) @ (a @ theta0 - b)  # projection onto Aθ = b
    reference = Reference(theta_star, torch.full((300,), float("nan"), dtype=torch.float64))
    recorder = Recorder(None, parts.config.checkpoint)
    train(parts, recorder, reference=reference)
    table = recorder.metrics.table()
    gamma = table["gamma"].to_numpy(zero_copy_only=False)
    steps = table["step"].to_numpy()
    expected = (2 - ETA * (a[steps % 10] ** 2).sum(1).numpy()) / float((theta0 - theta_star).square().sum())
    defined = table["gamma_defined"].to_numpy() > 0
    assert defined[:50].all() and defined.sum() > 100
    assert np.allclose(gamma[defined], expected[defined], rtol=1e-6, atol=0)


def test_least_squares_gamma_with_theta_star_the_final_iterate():
    """The same law with θ* taken, as the instrument does, as the last iterate of a long run
    (over-parameterized SGD converges to the projection of θ_0)."""
    a, b = least_squares()
    data = sgdlab.Dataset.from_tensors(a, b)
    theta0 = flat_params(sgdlab.prepare(ls_config(1, {"use": []}), data=data).model)
    result = sgdlab.run(ls_config(1500, {"use": ["gamma"]}), data=data)
    theta_star = flat_params(result.parts.model)
    table = result.metrics.slice(0, 100)
    steps = table["step"].to_numpy()
    expected = (2 - ETA * (a[steps % 10] ** 2).sum(1).numpy()) / float((theta0 - theta_star).square().sum())
    assert np.allclose(table["gamma"].to_numpy(zero_copy_only=False), expected, rtol=1e-6)
    assert result.summary["probes"]["gamma"]["replay_checked_steps"] == 15000


def mlp_config(mode: str, batch_norm: str = "all", **train) -> dict:
    return tiny(
        model={"widths": [16, 16], "batch_norm": batch_norm, "dropout": 0.2},
        train={"epochs": 4, **train},
        probes={"use": ["eval", "gamma"], "gamma": {"mode": mode}},
    )


@pytest.mark.parametrize("batch_norm", ["all", "none"])  # ℓ(θ*; B_k) per batch / from a table
def test_replay_matches_store_mode(batch_norm):
    replay = sgdlab.run(mlp_config("replay", batch_norm))
    store = sgdlab.run(mlp_config("store", batch_norm))
    assert replay.status == store.status == "completed"
    for column in ("gamma", "gamma_dist", "gamma_loss_gap", "gamma_coherence", "gamma_update_term"):
        x = replay.metrics[column].to_numpy(zero_copy_only=False)
        y = store.metrics[column].to_numpy(zero_copy_only=False)
        assert np.allclose(x, y, rtol=1e-6, atol=0, equal_nan=True), column
    assert replay.summary["probes"]["gamma"]["replay_checked_steps"] == 32
    for key in ("defined_steps", "undefined_steps", "positive_fraction", "gamma_min"):
        assert replay.summary["probes"]["gamma"][key] == pytest.approx(store.summary["probes"]["gamma"][key])


def test_minibatch_losses_read_off_per_sample_losses_equal_a_forward_per_batch():
    parts = sgdlab.prepare(tiny(model={"widths": [16], "dropout": 0.3}))
    rt = Runtime(parts.model, parts.data, parts.loss, flat_params(parts.model), 64)
    theta = flat_params(parts.model) + 0.1 * torch.randn(
        parts.n_params, generator=torch.Generator().manual_seed(1)
    )
    table = star_losses(rt, theta)
    assert table is not None and table.shape == (len(parts.data.train),)
    gen = torch.Generator().manual_seed(0)
    for idx in [torch.randint(len(parts.data.train), (32,), generator=gen), torch.arange(5), slice(None)]:
        forward = batch_loss_at(rt, theta, *parts.data.batch(parts.data.train, idx))  # dropout off
        assert loss_on_batch(rt, theta, table, idx) == pytest.approx(forward, rel=1e-6)
        assert loss_on_batch(rt, theta, None, idx) == forward


def test_batch_norm_models_get_no_per_sample_table():
    parts = sgdlab.prepare(tiny(model={"widths": [16], "batch_norm": "all"}))
    rt = Runtime(parts.model, parts.data, parts.loss, flat_params(parts.model), 64)
    assert star_losses(rt, rt.theta0) is None
    with pytest.raises(ValueError, match="batch norm"):
        sample_losses_at(rt, rt.theta0)


def test_replay_detects_the_first_diverging_step():
    cfg = tiny(probes={"use": ["gamma"]})
    first = sgdlab.run(tiny())
    losses = torch.tensor(first.metrics["batch_loss"].to_numpy()[:16], dtype=torch.float64)
    losses[7] += 1e-6
    parts = sgdlab.prepare(cfg)
    reference = Reference(flat_params(first.parts.model), losses)
    with pytest.raises(ReplayError, match="at step 7: minibatch loss"):
        train(parts, Recorder(None, parts.config.checkpoint), reference=reference)


def test_a_nondeterministic_run_fails_loudly_with_a_one_line_error(tmp_path):
    with pytest.raises(ReplayError, match="replay diverged from the first pass at step 0") as err:
        sgdlab.run(tiny(probes={"use": ["gamma"]}), tmp_path / "r", model=Flaky())
    assert "deterministic = true" in str(err.value) and "\n" not in str(err.value)
    summary = RunDir(tmp_path / "r").read_summary()
    assert summary["status"] == "failed" and "step 0" in summary["error"]


def test_undefined_steps_are_recorded_and_counted():
    result = sgdlab.run(tiny(probes={"use": ["gamma"], "gamma": {"gap_tol": 1e9}}))
    table = result.metrics
    assert (table["gamma_defined"].to_numpy() == 0).all() and "gamma" not in table.column_names
    assert result.summary["probes"]["gamma"]["undefined_steps"] == 16
    assert result.summary["probes"]["gamma"]["positive_fraction"] is None


def known_path() -> pa.Table:
    """Six steps with ‖θ_0 − θ*‖ = 1 and η = ½ that obey ‖θ_{k+1} − θ*‖² = ‖θ_k − θ*‖² −
    2ηγ_k·gap_k: d² = 1, .8, .6, .6 (undefined step, no move), .65 (γ < 0), .5."""
    return pa.table(
        {
            "step": [0, 1, 2, 3, 4, 5],
            "lr": [0.5] * 6,
            "gamma_dist": np.sqrt([1.0, 0.8, 0.6, 0.6, 0.65, 0.5]).tolist(),
            "gamma_loss_gap": [0.1, 0.2, 0.0, 0.05, 0.3, 0.4],
            "gamma_coherence": [0.2, 0.2, 0.0, -0.05, 0.15, 0.1],
            "gamma_update_term": [0.0] * 6,
            "gamma_defined": [1.0, 1.0, 0.0, 1.0, 1.0, 1.0],
            "gamma": [2.0, 1.0, None, -1.0, 0.5, 0.25],
        }
    )


def test_theorem_checks_on_known_numbers():
    checks = theorem_checks(known_path())
    assert (
        checks["dist_max_increase"] == pytest.approx(np.sqrt(0.65) - np.sqrt(0.6))
        and checks["dist_increases"] == 1
    )
    assert checks["positive_fraction"] == pytest.approx(4 / 5) and checks["defined_steps"] == 5
    # Theorem 1.3 on both stretches where the principle holds: steps 0–2 and 4–5
    assert checks["rate_stretches"] == 2 and checks["rate_covered_steps"] == 5
    assert checks["rate_violations"] == 0


def test_rate_check_restarts_theorem_1_3_on_every_stretch():
    check = rate_check_of(known_path())
    first, second = check.stretches
    assert (first.first, first.last, second.first, second.last) == (0, 2, 4, 5)
    # from θ_0: Σ gap = 0.3 ≤ 1/(2·½·γ_min = 1) = 1
    assert first.gap_sum == pytest.approx(0.3) and first.bound == pytest.approx(1.0)
    # from θ_4: Σ gap = 0.7 ≤ d_4²/(2·½·0.25) = 0.65/0.25
    assert second.gap_sum == pytest.approx(0.7) and second.bound == pytest.approx(2.6)
    assert check.covered_fraction == pytest.approx(5 / 6) and not check.violations
    # a step the principle misses, an undefined step moving away from θ*, and an unmeasured step
    # each end a stretch
    assert maximal_stretches(
        premise_steps(np.array([1.0, np.nan, 1.0]), np.array([1.0, -1e-9, 1.0])), np.arange(3)
    ) == [
        (0, 1),
        (2, 3),
    ]
    assert maximal_stretches(np.ones(3, bool), np.array([0, 1, 5])) == [(0, 2), (2, 3)]
    # a recorded η ten times the step taken puts Σ gap over the bound
    wrong = known_path().set_column(1, "lr", pa.array([5.0] * 6))
    assert [(s.first, s.last) for s in rate_check_of(wrong).violations] == [(0, 2), (4, 5)]
    # an unknown η is no pass
    unknown = known_path().set_column(1, "lr", pa.array([None] * 6, pa.float64()))
    assert len(rate_check_of(unknown).violations) == 2
    with pytest.raises(ValueError, match="η_k"):
        rate_check_of(known_path().drop_columns(["lr"]))


def test_rate_bound_holds_on_the_least_squares_path_where_gamma_is_exact():
    """With θ* the exact projection, γ_k = (2 − η‖a_ξk‖²)/‖θ_0 − θ*‖² > 0 on every step: one
    stretch covers the measured steps and Theorem 1.3 holds on it, with room to spare."""
    a, b = least_squares()
    probes = {"use": ["gamma", "batch_loss"]}  # batch_loss records η_k
    parts = sgdlab.prepare(ls_config(10, probes), data=sgdlab.Dataset.from_tensors(a, b))
    theta0 = flat_params(parts.model).double()
    theta_star = theta0 - torch.linalg.pinv(a) @ (a @ theta0 - b)
    recorder = Recorder(None, parts.config.checkpoint)
    train(
        parts,
        recorder,
        reference=Reference(theta_star, torch.full((100,), float("nan"), dtype=torch.float64)),
    )
    check = rate_check_of(recorder.metrics.table().slice(0, 50))
    assert check.covered_fraction == 1.0 and len(check.stretches) == 1 and not check.violations
    assert 0 < check.worst_usage < 1


def test_gamma_run_through_the_cli_is_one_directory(tmp_path, cli):
    cfg = write_toml(tmp_path / "c.toml", tiny())
    out = tmp_path / "run"
    result = cli("run", cfg, "--out", out, "--quiet", "--set", 'probes.use=["eval", "norms", "gamma"]')
    assert result.exit_code == 0, result.stderr
    run = sgdlab.load_run(out)
    assert run.status == "completed" and "phase" not in run.summary
    assert {"gamma", "gamma_dist", "train_loss", "dist_init"} <= set(run.metrics.column_names)
    assert run.summary["probes"]["gamma"]["replay_checked_steps"] == 16
    assert json.loads((out / "replay" / "summary.json").read_text())["status"] == "completed"


def test_sigkill_during_the_replay_pass_then_resume(tmp_path):
    raw = tiny(
        model={"widths": [8]},
        train={"epochs": None, "max_steps": 3000},
        checkpoint={"every_steps": 200},
        probes={"use": ["batch_loss", "gamma"]},
    )
    cfg = write_toml(tmp_path / "c.toml", raw)
    ref = sgdlab.run(raw, tmp_path / "ref")
    out = tmp_path / "killed"
    start_and_stop(cfg, out, signal.SIGKILL, 1000, watch="replay")
    assert RunDir(out).read_summary()["phase"] == "replay"
    resumed = sgdlab.resume(out)
    assert resumed.status == "completed"
    assert sgdlab.load_run(out).metrics.equals(sgdlab.load_run(ref.path).metrics)


@pytest.mark.parametrize("sampler", ["reshuffle", "full"])  # batch indices: a tensor / every sample
def test_sigkill_in_store_mode_then_resume(tmp_path, sampler):
    raw = tiny(
        model={"widths": [8]},
        train={"epochs": None, "max_steps": 1200, "sampler": sampler},
        checkpoint={"every_steps": 100},
        probes={"use": ["batch_loss", "gamma"], "gamma": {"mode": "store"}},
    )
    cfg = write_toml(tmp_path / "c.toml", raw)
    ref = sgdlab.run(raw, tmp_path / "ref")
    out = tmp_path / "killed"
    start_and_stop(cfg, out, signal.SIGKILL, 500)
    resumed = sgdlab.resume(out)
    assert resumed.status == "completed"
    assert sgdlab.load_run(out).metrics.equals(sgdlab.load_run(ref.path).metrics)
    assert resumed.summary["probes"]["gamma"] == ref.summary["probes"]["gamma"]

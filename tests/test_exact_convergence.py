"""exact-convergence (seed 000): rate estimators against exact laws, the batched logistic
trainer against a per-step loop, the claim logic on made-up histories, and the smoke-scale
reproduction end to end (claims, tables, figures, reuse)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from sgdlab.data.separable import make_separable
from sgdlab.experiments import reproduce
from sgdlab.experiments.exact_convergence import cnn, linear, logistic, rates, settings

# ---------------------------------------------------------------------------------------
# rate estimators: exact answers on exact laws

T = rates.log_steps(10**6, 10)


def test_log_steps_hold_every_decade_and_the_end():
    assert T[0] == 1 and T[-1] == 10**6 and np.all(np.diff(T) > 0)
    assert {10**k for k in range(7)} <= set(T.tolist())
    assert rates.log_steps(3000, 5)[-1] == 3000


def test_decade_factor_of_power_laws():
    t = T.astype(float)
    for start in rates.last_decades(10**6, 3):
        assert rates.decade_factor(t, 3.0 / t, start) == pytest.approx(10.0, rel=1e-12)
        assert rates.decade_factor(t, 2.0 * t**-1.5, start) == pytest.approx(10**1.5, rel=1e-12)
        assert rates.decade_factor(t, np.full_like(t, 0.7), start) == pytest.approx(1.0, rel=1e-12)


def test_decade_increment_of_a_log_law():
    t = T.astype(float)
    assert rates.decade_increment(t, 4.2 * np.log(t) - 3.0, 1e4) == pytest.approx(
        4.2 * math.log(10), rel=1e-12
    )


def test_log_exponent_of_inverse_log_laws():
    t = T[T > 1].astype(float)
    assert rates.log_exponent(t, 0.3 / np.log(t), 100, 1e6) == pytest.approx(1.0, rel=1e-12)
    assert rates.log_exponent(t, 2.0 * np.log(t) ** -0.5, 100, 1e6) == pytest.approx(0.5, rel=1e-12)
    assert rates.log_exponent(t, np.full_like(t, 0.1), 100, 1e6) == pytest.approx(0.0, abs=1e-12)


def test_estimator_edges():
    assert rates.last_decades(1e5, 2) == [1e3, 1e4]
    assert rates.at(T, T * 2.0, 1000) == 2000.0
    assert math.isnan(rates.decade_factor(T, -np.ones(len(T)), 10))
    with pytest.raises(ValueError, match="fewer than two"):
        rates.decade_factor(np.array([1.0, 100.0]), np.array([1.0, 0.01]), 2)


# ---------------------------------------------------------------------------------------
# the hard-margin solver against known answers


def test_hard_margin_svm_recovers_the_constructed_max_margin_vector():
    gen = torch.Generator().manual_seed(3)
    w_true = torch.tensor([3.0, -1.0, 0.5, 0.0, 2.0, 1.0], dtype=torch.float64)
    x, y, _ = make_separable(40, 6, 0.3, gen, w_hat=w_true, n_support=3)
    w = linear.hard_margin_svm(x, 2.0 * y - 1)
    np.testing.assert_allclose(w, w_true.numpy(), rtol=1e-9, atol=1e-9)


def test_hard_margin_svm_matches_a_generic_qp_solver_and_its_kkt_conditions():
    from scipy.optimize import minimize

    gen = torch.Generator().manual_seed(5)
    x = torch.randn(30, 8, generator=gen, dtype=torch.float64)
    y = torch.sign(x @ torch.randn(8, generator=gen, dtype=torch.float64)).numpy()
    w = linear.hard_margin_svm(x, y)
    g = y[:, None] * x.numpy()
    margins = g @ w
    assert margins.min() == pytest.approx(1.0, abs=1e-9)  # feasible, with tight constraints
    support = np.abs(margins - 1) < 1e-7
    alpha, *_ = np.linalg.lstsq(g[support].T, w, rcond=None)  # w = Σ α_s y_s x_s, α ≥ 0
    np.testing.assert_allclose(g[support].T @ alpha, w, atol=1e-9)
    assert np.all(alpha >= -1e-9)
    qp = minimize(
        lambda v: v @ v,
        np.ones(8) * 10,
        jac=lambda v: 2 * v,
        method="SLSQP",
        constraints={"type": "ineq", "fun": lambda v: g @ v - 1, "jac": lambda v: g},
        options={"ftol": 1e-14, "maxiter": 1000},
    )
    assert qp.success and np.linalg.norm(w) <= np.linalg.norm(qp.x) + 1e-9
    np.testing.assert_allclose(w, qp.x, atol=1e-5)


def test_hard_margin_svm_rejects_data_that_are_not_separable():
    x = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="not linearly separable"):
        linear.hard_margin_svm(x, np.array([1.0, 1.0, 1.0]))


# ---------------------------------------------------------------------------------------
# the batched trainer against the plain per-step loop


def separable_pair(n=12, dim=7, seed=0):
    """Two signed-input sets [2, n, dim] (separable by construction: y_n = sign of x_nᵀv)."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(2):
        x = torch.randn(n, dim, generator=gen, dtype=torch.float64)
        v = torch.randn(dim, generator=gen, dtype=torch.float64)
        out.append(logistic.signed_inputs(x, torch.sign(x @ v)))
    return torch.stack(out)


RUNS = [
    logistic.RunSpec("gd", 0.5),
    logistic.RunSpec("gd", 3.0),
    logistic.RunSpec("sgd", 0.5, 3, 0),
    logistic.RunSpec("sgd", 3.0, 3, 0),
    logistic.RunSpec("sgd", 3.0, 3, 1),
]


def test_batched_trainer_matches_the_per_step_loop():
    xs, steps = separable_pair(), 300
    traj = logistic.train_logistic(xs, RUNS, steps, range(steps + 1), chunk=64)
    assert traj.weights.dtype == torch.float64 and traj.steps.tolist() == list(range(steps + 1))
    for d in range(2):
        for r, spec in enumerate(RUNS):
            ref = logistic.reference_run(xs, spec, d, steps)
            assert torch.allclose(traj.weights[:, d, r], ref, rtol=1e-12, atol=1e-13), spec.label


def test_a_run_does_not_depend_on_the_chunk_or_its_batch_mates():
    xs = separable_pair(seed=1)
    whole = logistic.train_logistic(xs, RUNS, 200, [0, 50, 200], chunk=256)
    chunked = logistic.train_logistic(xs, RUNS, 200, [0, 50, 200], chunk=17)
    assert torch.equal(whole.weights, chunked.weights)
    alone = logistic.train_logistic(xs, RUNS[3:4], 200, [0, 50, 200])
    # the same batch indices; a different batch count may change BLAS rounding only
    assert torch.allclose(alone.weights[:, :, 0], whole.weights[:, :, 3], rtol=1e-12, atol=1e-14)


def test_run_specs_are_validated():
    with pytest.raises(Exception, match="method"):
        logistic.RunSpec("adam", 0.1)
    with pytest.raises(Exception, match="one batch size"):
        logistic.train_logistic(
            separable_pair(), [logistic.RunSpec("sgd", 1, 1), logistic.RunSpec("sgd", 1, 2)], 5, [5]
        )


def test_measure_at_the_max_margin_direction():
    xs = separable_pair()[0]
    w_hat = torch.from_numpy(linear.hard_margin_svm(xs, torch.ones(len(xs))))
    m = linear.measure(xs, w_hat, torch.stack([5 * w_hat, -w_hat]))
    assert m["direction_error"][0] == pytest.approx(0.0, abs=1e-12)
    assert m["margin"][0] == pytest.approx(1 / float(w_hat.norm()), rel=1e-9)
    assert m["train_error"].tolist() == [0.0, 1.0]
    assert m["loss"][0] == pytest.approx(float(torch.nn.functional.softplus(-5 * xs @ w_hat).mean()))


# ---------------------------------------------------------------------------------------
# claim logic on made-up measurements


def fake_table(loss_of_t, steps=10**4, seeds=2):
    """A linear table of one dataset with a given SGD loss law (other columns lawful)."""
    t = rates.log_steps(steps, 10).astype(float)
    cols = {k: [] for k in ("dataset", "method", "lr", "batch_size", "seed", "step", *linear.METRICS)}
    for seed in range(seeds):
        cols["dataset"] += ["d"] * len(t)
        cols["method"] += ["sgd"] * len(t)
        cols["lr"] += [1.0] * len(t)
        cols["batch_size"] += [1] * len(t)
        cols["seed"] += [seed] * len(t)
        cols["step"] += t.tolist()
        cols["loss"] += loss_of_t(t).tolist()
        cols["w_norm"] += (2.0 * np.log(t) + 1).tolist()
        cols["direction_error"] += (0.5 / np.log(t + 1)).tolist()
        cols["margin"] += (0.5 - 0.1 / np.log(t + 2)).tolist()
        cols["train_error"] += np.where(t < 10, 0.5, 0.0).tolist()
    sets = {"dataset": np.array(["d"]), "w_hat_norm": np.array([2.0])}
    return {k: np.asarray(v) for k, v in cols.items()}, sets


def test_linear_claims_hold_on_lawful_curves_and_fail_on_a_floor():
    s = settings.LinearSettings(steps=10**4, lrs=(1.0,), sgd_seeds=2)
    table, sets = fake_table(lambda t: 0.5 / t)
    verdicts = {c.id: c.verdict for c in linear.linear_claims(table, sets, s)}
    assert set(verdicts.values()) == {"holds"}, verdicts
    table, sets = fake_table(lambda t: 0.5 / t + 1e-3)  # a loss floor
    claims = {c.id: c for c in linear.linear_claims(table, sets, s)}
    assert claims["linear-sgd-no-floor"].verdict == "fails"
    assert claims["linear-loss-rate"].verdict == "fails"


def history(train_error, train_loss, test_loss, test_error):
    e = np.arange(len(train_error), dtype=float)
    return cnn.History(
        e,
        {
            "train_loss": np.asarray(train_loss, float),
            "train_error": np.asarray(train_error, float),
            "test_loss": np.asarray(test_loss, float),
            "test_error": np.asarray(test_error, float),
        },
    )


CNN = settings.CnnSettings((), n_train=100, n_test=100)


def test_cnn_claims_after_zero_error():
    e = np.arange(41, dtype=float)
    h = history(np.where(e >= 10, 0.0, 0.5), 1 / (e + 1), (e - 8) ** 2 / 100 + 1, np.full(41, 0.3))
    claims = {c.id.split("-", 1)[1]: c for c in cnn.cnn_claims("m", "m", h, CNN, 100)}
    assert claims["zero-train-error"].verdict == "holds"
    assert claims["zero-train-error"].evidence["first_zero_epoch"] == 10
    assert claims["loss-still-falling"].verdict == "holds"
    assert claims["loss-still-falling"].evidence["slope_log_loss_vs_log_epoch"] < 0
    assert claims["val-loss-rises"].verdict == "holds"
    assert claims["val-loss-rises"].evidence["val_loss_min_epoch"] == 8


def test_zero_error_epochs():
    e = np.arange(6.0)
    assert cnn.first_zero(e, [0.5, 0, 0.1, 0, 0, 0]) == 1
    assert cnn.zero_from(e, [0.5, 0, 0.1, 0, 0, 0]) == 3
    assert cnn.zero_from(e, [0, 0, 0, 0, 0, 0]) == 0
    assert cnn.zero_from(e, [0, 0, 0, 0, 0, 0.1]) is None
    assert cnn.first_zero(e, [0.1] * 6) is None


def test_cnn_claims_are_not_applicable_without_zero_error():
    h = history(np.full(20, 0.1), np.linspace(2, 1, 20), np.linspace(2, 1, 20), np.full(20, 0.5))
    verdicts = [c.verdict for c in cnn.cnn_claims("m", "m", h, CNN, 100)]
    assert verdicts == ["fails", "not-applicable", "not-applicable"]


def test_cnn_claims_fail_on_a_flat_loss_and_a_wandering_val_error():
    e = np.arange(41, dtype=float)
    h = history(np.where(e >= 5, 0.0, 0.5), np.full(41, 0.01), np.linspace(3, 1, 41), 0.3 + 0.05 * np.sin(e))
    verdicts = {c.id: c.verdict for c in cnn.cnn_claims("m", "m", h, CNN, 100)}
    assert verdicts == {
        "m-zero-train-error": "holds",
        "m-loss-still-falling": "fails",
        "m-val-loss-rises": "fails",
    }


# ---------------------------------------------------------------------------------------
# settings and configs


@pytest.mark.parametrize("scale", ["smoke", "cpu", "full"])
def test_every_scale_resolves_with_the_papers_optimizer(scale):
    from sgdlab.build import resolve
    from sgdlab.config import load_config

    s = settings.SCALE_SETTINGS[scale]
    for m in s.cnn.models:
        cfg = resolve(load_config(raw=cnn.cnn_config(m, s.cnn)))
        assert (cfg.optim.name, cfg.optim.lr, cfg.optim.weight_decay) == ("sgd", 0.01, 0.0)
        assert cfg.optim.schedule.name == "constant" and cfg.data.name == "cifar10"
        assert cfg.model.batch_norm in (None, "none") and cfg.model.dropout in (None, 0.0)
    assert len(linear.run_grid(s.linear)) == len(s.linear.lrs) * (1 + s.linear.sgd_seeds)


def test_full_scale_networks_have_the_texts_parameter_counts():
    from sgdlab.build import resolve
    from sgdlab.config import load_config
    from sgdlab.models import build_model

    s = settings.SCALE_SETTINGS["full"].cnn
    counts = {}
    for m in s.models:
        cfg = resolve(load_config(raw=cnn.cnn_config(m, s)))
        side = cfg.data.resize or 32
        with torch.device("meta"):
            model = build_model(cfg.model, (3, side, side), 10)
        counts[m.key] = sum(p.numel() for p in model.parameters())
    assert counts == {"base": 121_802, "alexnet": 21_622_154, "vgg16": 37_704_258}


# ---------------------------------------------------------------------------------------
# the smoke reproduction end to end


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("exact-convergence-smoke")
    claims = reproduce("exact-convergence", out, "smoke", "cpu")
    return out, claims


def test_smoke_claims_file_has_the_required_shape(smoke):
    out, claims = smoke
    written = json.loads((out / "claims.json").read_text())
    assert [c["id"] for c in written] == [c.id for c in claims]
    assert len({c["id"] for c in written}) == len(written)
    for c in written:
        assert set(c) == {"id", "statement", "verdict", "evidence", "headline", "meaning", "source"}
        assert c["verdict"] in ("holds", "fails", "not-applicable")
        assert isinstance(c["evidence"], dict) and c["evidence"] and c["statement"]


def test_smoke_linear_claims_hold(smoke):
    _, claims = smoke
    linear_claims = {c.id: c for c in claims if c.id.startswith("linear-")}
    assert set(linear_claims) == {
        "linear-zero-error",
        "linear-loss-rate",
        "linear-norm-growth",
        "linear-direction",
        "linear-margin",
        "linear-sgd-no-floor",
    }
    for c in linear_claims.values():
        assert c.verdict == "holds", (c.id, c.evidence)
    for factors in linear_claims["linear-loss-rate"].evidence["factor_per_decade"].values():
        assert abs(factors[-1] - 10) <= 1.0


def test_smoke_cnn_claims_follow_the_measurement(smoke):
    _, claims = smoke
    c = {x.id: x for x in claims if x.id.startswith("base-")}
    assert c["base-zero-train-error"].verdict == "holds"
    ev = c["base-zero-train-error"].evidence
    e0, z, epochs = ev["first_zero_epoch"], ev["zero_from_epoch"], ev["epochs"]
    assert 0 < e0 <= z <= epochs and ev["final_train_error"] == 0
    assert c["base-loss-still-falling"].verdict == "holds"
    assert c["base-loss-still-falling"].evidence["slope_log_loss_vs_log_epoch"] < 0
    val = c["base-val-loss-rises"]
    if z > 0.75 * epochs:
        assert val.verdict == "not-applicable"
    else:
        ev = val.evidence
        expected = (
            ev["val_loss_min_epoch"] < epochs
            and ev["final_val_loss"] >= 1.05 * ev["val_loss_min"]
            and ev["val_error_range_last_quarter"] <= ev["stable_tolerance"]
        )
        assert val.verdict == ("holds" if expected else "fails")


def test_smoke_writes_tables_and_figures(smoke):
    out, _ = smoke
    for name in ("linear-separable", "linear-separable-random", "cnn-base"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 10_000
    for name in ("linear", "linear_sets", "cnn"):
        assert (out / "tables" / f"{name}.parquet").is_file()
    sets = experiments_table(out, "linear_sets")
    assert sets["direction_vs_constructed"][0] < 1e-6  # ŵ of the constructed set is recovered
    assert np.all(np.abs(sets["min_margin"] - 1) < 1e-9)


def experiments_table(out, name):
    from sgdlab.experiments import Lab

    return Lab(out, "smoke").load_table(name)


def test_smoke_rerun_reuses_everything(smoke):
    out, claims = smoke
    messages = []
    again = reproduce("exact-convergence", out, "smoke", "cpu", log=messages.append)
    assert any("reusing the simulated table" in m for m in messages)
    assert any("cnn-base: reusing" in m for m in messages)
    assert [(c.id, c.verdict) for c in again] == [(c.id, c.verdict) for c in claims]


def test_a_sigkilled_reproduction_run_again_ends_as_an_uninterrupted_one(smoke, tmp_path):
    """`sgdlab reproduce` killed (SIGKILL) inside its CNN run: the same command again resumes
    the run from its latest state (not from step 0) and ends with the claims, table and metrics
    of the uninterrupted reproduction (the `smoke` fixture). `--only cnn-base` leaves out the
    linear simulation (seconds, no run in it; its reuse is tested above)."""
    import os
    import signal
    import subprocess
    import sys

    import pyarrow.parquet as pq

    from sgdlab.store import RunDir

    ref, _ = smoke
    out = tmp_path / "killed"
    command = [
        sys.executable,
        "-m",
        "sgdlab",
        "reproduce",
        "exact-convergence",
        "--scale",
        "smoke",
        "--device",
        "cpu",
        "--only",
        "cnn-base",
        "--out",
        str(out),
    ]
    killed = subprocess.run(
        command + ["--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, SGDLAB_FAULT="step@350"),
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-500:]
    run = out / "runs" / "cnn-base"
    assert RunDir(run).read_summary()["status"] == "running" and RunDir(run).states()[-1][0] == 300
    assert not (out / "claims.json").exists()

    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "cnn-base: resuming" in again.stderr and "cnn-base: training" not in again.stderr
    summary = RunDir(run).read_summary()
    assert summary["status"] == "completed" and summary["resumes"] == 1
    expected = [c for c in json.loads((ref / "claims.json").read_text()) if c["id"].startswith("base-")]
    assert json.loads((out / "claims.json").read_text()) == expected
    a, b = (pq.read_table(d / "tables" / "cnn.parquet").drop_columns(["wall_time_s"]) for d in (out, ref))
    assert a.equals(b)  # wall_time_s: the table's only measured time
    metrics = RunDir(run).read_metrics()
    assert metrics.equals(RunDir(ref / "runs" / "cnn-base").read_metrics())
    assert metrics["step"].to_pylist() == sorted(set(metrics["step"].to_pylist()))  # no row twice


def test_a_diverged_cnn_run_makes_its_claims_say_so(tmp_path, monkeypatch):
    """lr 10^30 (for the paper's 0.01) makes the smoke CNN run diverge at once: the reproduction
    still ends, with the zero-error claim failing and the other two not applicable, each giving
    "run cnn-base diverged at step k" as its reason; no claim is decided on a NaN."""
    monkeypatch.setattr(cnn, "LR", 1e30)
    claims = {c.id: c for c in reproduce("exact-convergence", tmp_path, "smoke", "cpu", only="cnn-base")}
    assert set(claims) == {"base-zero-train-error", "base-loss-still-falling", "base-val-loss-rises"}
    summary = json.loads((tmp_path / "runs" / "cnn-base" / "summary.json").read_text())
    assert summary["status"] == "diverged"
    why = f"run cnn-base diverged at step {summary['diverged_at']}"
    assert claims["base-zero-train-error"].verdict == "fails"
    assert (
        claims["base-loss-still-falling"].verdict == claims["base-val-loss-rises"].verdict == "not-applicable"
    )
    assert all(c.evidence["reason"] == why for c in claims.values())
    assert "nan" not in json.dumps([c.evidence for c in claims.values()]).lower()
    assert (tmp_path / "figures" / "cnn-base.png").is_file() and (tmp_path / "report.html").is_file()

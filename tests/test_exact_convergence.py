"""exact-convergence (seed 000): rate estimators against exact laws, the batched logistic
trainer against a per-step loop, the claim logic on made-up histories, and the smoke-scale
reproduction end to end (claims, tables, figures, reuse)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from sgdlab.data.separable import hard_margin_svm, make_separable
from sgdlab.experiments import reproduce
from sgdlab.experiments.exact_convergence import claims, configs, logistic, measure, rates, settings

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
    w = hard_margin_svm(x, 2.0 * y - 1)
    np.testing.assert_allclose(w, w_true.numpy(), rtol=1e-9, atol=1e-9)


def test_hard_margin_svm_matches_a_generic_qp_solver_and_its_kkt_conditions():
    from scipy.optimize import minimize

    gen = torch.Generator().manual_seed(5)
    x = torch.randn(30, 8, generator=gen, dtype=torch.float64)
    y = torch.sign(x @ torch.randn(8, generator=gen, dtype=torch.float64)).numpy()
    w = hard_margin_svm(x, y)
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
        hard_margin_svm(x, np.array([1.0, 1.0, 1.0]))


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
    w_hat = torch.from_numpy(hard_margin_svm(xs, torch.ones(len(xs))))
    m = measure.weight_measures(xs, w_hat, torch.stack([5 * w_hat, -w_hat]))
    assert m["direction_error"][0] == pytest.approx(0.0, abs=1e-12)
    assert m["margin"][0] == pytest.approx(1 / float(w_hat.norm()), rel=1e-9)
    assert m["train_error"].tolist() == [0.0, 1.0]
    assert m["loss"][0] == pytest.approx(float(torch.nn.functional.softplus(-5 * xs @ w_hat).mean()))


# ---------------------------------------------------------------------------------------
# claim logic on made-up measurements


W_HAT_NORM = 2.0


def lawful_laws():
    """The theory's laws for ‖ŵ‖ = 2: loss 0.5/t; w = ŵ ln t + w̃ with w̃ = c·ŵ/‖ŵ‖ + q
    (q ⊥ ŵ, c < 0 as in the measured runs), so ‖w‖ = √((2 ln t + c)² + q²) and the direction
    error is 2 sin(θ/2), tan θ = q/(2 ln t + c); a margin gap 0.2/ln t + 0.4/ln² t; the training
    error 0 from step 10."""
    c, q = -2.0, 0.8

    def direction(t):
        return 2 * np.sin(np.arctan2(q, W_HAT_NORM * np.log(t) + c) / 2)

    return {
        "loss": lambda t: 0.5 / t,
        "w_norm": lambda t: np.hypot(W_HAT_NORM * np.log(t) + c, q),
        "direction_error": direction,
        "margin": lambda t: (1 - 0.2 / np.log(t + 1) - 0.4 / np.log(t + 1) ** 2) / W_HAT_NORM,
        "train_error": lambda t: np.where(t < 10, 0.5, 0.0),
    }


def fake_table(steps=10**4, seeds=4, method="sgd", noise=0.0, **laws):
    """A linear table of one dataset, `seeds` runs of `method` following `lawful_laws` except
    where `laws` replaces one (name → function of t); `noise` scatters each run's loss,
    direction error and margin gap by a relative noise·N(0, 1) at every recorded step."""
    law = {**lawful_laws(), **laws}
    t = rates.log_steps(steps, 10).astype(float)
    cols = {k: [] for k in ("dataset", "method", "lr", "batch_size", "seed", "step", *measure.METRICS)}
    rng = np.random.default_rng(0)
    for seed in range(seeds):
        cols["dataset"] += ["d"] * len(t)
        cols["method"] += [method] * len(t)
        cols["lr"] += [1.0] * len(t)
        cols["batch_size"] += [1] * len(t)
        cols["seed"] += [seed] * len(t)
        cols["step"] += t.tolist()
        for name in measure.METRICS:
            values = np.asarray(law[name](t), float)
            jitter = 1 + noise * rng.standard_normal(len(t))
            if name in ("loss", "direction_error"):
                values = values * jitter
            elif name == "margin":  # the gap to the max margin scatters, the margin stays below it
                values = (1 - (1 - values * W_HAT_NORM) * jitter) / W_HAT_NORM
            cols[name] += values.tolist()
    sets = {"dataset": np.array(["d"]), "w_hat_norm": np.array([W_HAT_NORM])}
    return {k: np.asarray(v) for k, v in cols.items()}, sets


LINEAR = settings.LinearSettings(steps=10**4, lrs=(1.0,), sgd_seeds=4)


def linear_verdicts(**kw):
    table, sets = fake_table(**kw)
    return {c.id: c.verdict for c in claims.linear_claims(table, sets, LINEAR)}


def linear_claim(claim_id, **kw):
    table, sets = fake_table(**kw)
    return next(c for c in claims.linear_claims(table, sets, LINEAR) if c.id == claim_id)


def test_linear_claims_hold_on_the_theorys_laws():
    for method in ("gd", "sgd"):
        verdicts = linear_verdicts(method=method)
        assert set(verdicts.values()) == ({"holds"} if method == "sgd" else {"holds", "not-applicable"})
    assert linear_verdicts(method="gd")["linear-sgd-no-floor"] == "not-applicable"


def test_linear_claims_hold_under_seed_noise():
    """Runs scattered by 2 % per point about the laws: the claims read the median over seeds and
    allow its standard error."""
    assert set(linear_verdicts(noise=0.02, seeds=16).values()) == {"holds"}


def test_linear_zero_error_fails_when_a_run_is_not_separated_in_the_window():
    late = linear_claim("linear-zero-error", train_error=lambda t: np.where(t < 500, 0.5, 0.0))
    assert late.verdict == "fails" and late.evidence["zero_from_step"]["d"] >= 500
    never = linear_claim("linear-zero-error", train_error=lambda t: np.full(len(t), 0.05))
    assert never.verdict == "fails" and never.evidence["zero_from_step"]["d"] == "inf"


def test_linear_loss_rate_fails_on_a_floor_and_on_another_power_law():
    floor = linear_claim("linear-loss-rate", loss=lambda t: 0.5 / t + 1e-3)
    assert floor.verdict == "fails" and floor.evidence["failing"] == ["d/sgd/lr=1"]
    slower = linear_claim("linear-loss-rate", loss=lambda t: 0.5 * t**-0.8)
    assert slower.verdict == "fails"
    assert slower.evidence["factor_per_decade"]["d/sgd/lr=1"]["value"][-1] == pytest.approx(10**0.8)
    # 1/(t ln t) is O(1/t) with a factor that tends to 10: nearer to it every decade
    assert linear_claim("linear-loss-rate", loss=lambda t: 1 / (t * np.log(t + 1))).verdict == "holds"


def test_linear_norm_growth_holds_in_the_cos_theta_band_and_fails_outside_it():
    claim = linear_claim("linear-norm-growth")
    low, high = claim.evidence["band"]["d/sgd/lr=1"]
    assert low < claim.evidence["growth_over_w_hat_ln10"]["d/sgd/lr=1"] <= high == 1.0
    slow = linear_claim("linear-norm-growth", w_norm=lambda t: 0.98 * W_HAT_NORM * np.log(t))
    assert slow.verdict == "fails"  # 2 % below ‖ŵ‖ ln 10, the band reaches down only e²/2
    fast = linear_claim("linear-norm-growth", w_norm=lambda t: 1.01 * W_HAT_NORM * np.log(t))
    assert fast.verdict == "fails"  # faster than ‖ŵ‖ ln t is never allowed


def test_linear_direction_fails_on_a_slower_law_and_a_stalled_error():
    slow = linear_claim("linear-direction", direction_error=lambda t: 0.5 / np.sqrt(np.log(t + 1)))
    assert slow.verdict == "fails"
    assert slow.evidence["exponent_a_per_decade"]["d/sgd/lr=1"]["value"][-1] == pytest.approx(0.5, abs=0.01)
    stalled = linear_claim("linear-direction", direction_error=lambda t: 0.1 + 0.5 / np.log(t + 1))
    assert stalled.verdict == "fails"


def test_linear_margin_fails_when_it_stalls_or_exceeds_the_max_margin():
    stalled = linear_claim("linear-margin", margin=lambda t: (0.9 - 0.2 / np.log(t + 1)) / W_HAT_NORM)
    assert stalled.verdict == "fails"
    above = linear_claim("linear-margin", margin=lambda t: (1.01 - 0.2 / np.log(t + 1) ** 2) / W_HAT_NORM)
    assert above.verdict == "fails"


def test_linear_sgd_no_floor_fails_on_a_floor_and_needs_sgd_runs():
    floor = linear_claim("linear-sgd-no-floor", loss=lambda t: 0.5 / t + 1e-3)
    assert floor.verdict == "fails" and floor.evidence["min_factor_per_decade"]["d/sgd/lr=1"] < 3
    # a factor of 5 per decade (loss ~ t^−0.7) is still nearer 10 than 1 on a log scale
    assert linear_claim("linear-sgd-no-floor", loss=lambda t: t**-0.7).verdict == "holds"
    assert linear_claim("linear-sgd-no-floor", method="gd").verdict == "not-applicable"


def test_approaches_reads_noise_and_trend():
    E = rates.Estimate
    assert rates.approaches(10, E(9.0, 0), E(9.9, 0))  # nearer
    assert not rates.approaches(10, E(9.9, 0), E(9.0, 0))  # farther
    assert rates.approaches(10, E(9.0, 0), E(9.8, 0.15))  # within 2 standard errors
    assert not rates.approaches(10, E(8.0, 0.3), E(8.5, 0.3))  # nearer, but within the noise
    assert rates.Estimate.of([1.0]) == E(1.0, 0.0)
    est = rates.Estimate.of([1.0, 2.0, 3.0, 4.0])
    assert est.value == 2.5 and est.stderr == pytest.approx(
        np.sqrt(np.pi / 2) * np.std([1, 2, 3, 4], ddof=1) / 2
    )


def history(train_error, train_loss, test_loss, test_error, start=0):
    e = np.arange(start, start + len(train_error), dtype=float)
    return measure.History(
        e,
        {
            "train_loss": np.asarray(train_loss, float),
            "train_error": np.asarray(train_error, float),
            "test_loss": np.asarray(test_loss, float),
            "test_error": np.asarray(test_error, float),
        },
    )


E = np.arange(41, dtype=float)
WIGGLE = np.where(np.arange(41) % 2, 1.0, -1.0)  # ±1 on alternate epochs: scatter about any trend


def lawful(zero_at=10):
    """A net that interpolates at `zero_at` and then behaves as in the text: training loss
    ∝ 1/epoch, validation loss rising after epoch 8, validation error flat up to scatter."""
    return history(
        np.where(E >= zero_at, 0.0, 0.5),
        1 / (E + 1),
        (E - 8) ** 2 / 100 + 1,
        0.3 + 0.01 * WIGGLE,
    )


def test_slope_and_error_of_a_line_and_of_scatter():
    u = np.arange(10.0)
    assert rates.slope_and_error(u, 3 * u + 1) == pytest.approx((3.0, 0.0), abs=1e-12)
    b, se = rates.slope_and_error(u, np.where(np.arange(10) % 2, 1.0, -1.0))
    residual = np.where(np.arange(10) % 2, 1.0, -1.0) - b * (u - u.mean())
    assert se == pytest.approx(np.sqrt(residual @ residual / 8 / ((u - u.mean()) ** 2).sum()))
    with pytest.raises(ValueError, match="≥ 3 points"):
        rates.slope_and_error(u[:2], u[:2])


def test_zero_error_epochs():
    e = np.arange(6.0)
    assert measure.first_zero(e, [0.5, 0, 0.1, 0, 0, 0]) == 1
    assert measure.zero_from(e, [0.5, 0, 0.1, 0, 0, 0]) == 3
    assert measure.zero_from(e, [0, 0, 0, 0, 0, 0]) == 0
    assert measure.zero_from(e, [0, 0, 0, 0, 0, 0.1]) is None
    assert measure.first_zero(e, [0.1] * 6) is None


def test_zero_error_claim_holds_fails_and_fails_on_a_relapse():
    claim = claims.zero_error_claim("m", "m", lawful(10))
    assert claim.verdict == "holds"
    assert (claim.evidence["first_zero_epoch"], claim.evidence["zero_from_epoch"]) == (10, 10)
    never = history(np.full(41, 0.1), 1 / (E + 1), np.ones(41), np.ones(41))
    assert claims.zero_error_claim("m", "m", never).verdict == "fails"
    relapse = history(np.where((E >= 10) & (E < 40), 0.0, 0.01), 1 / (E + 1), np.ones(41), np.ones(41))
    claim = claims.zero_error_claim("m", "m", relapse)
    assert claim.verdict == "fails" and claim.evidence["first_zero_epoch"] == 10
    assert "at the end" in claim.headline


def test_loss_falling_claim_holds_fails_on_a_floor_and_needs_a_window():
    claim = claims.loss_falling_claim("m", "m", lawful(10))
    assert claim.verdict == "holds" and claim.evidence["window_epochs"] == [20, 40]
    assert claim.evidence["log_loss_vs_log_epoch_slope"] == pytest.approx(-1, abs=0.05)
    # a floor with scatter: the fitted slope may come out < 0, but not beyond 2 standard errors
    floor = lawful(10)
    floor.values["train_loss"][:] = 0.01 * (1 + 0.05 * WIGGLE)
    claim = claims.loss_falling_claim("m", "m", floor)
    assert claim.verdict == "fails"
    assert (
        abs(claim.evidence["log_loss_vs_log_epoch_slope"])
        < 2 * claim.evidence["log_loss_vs_log_epoch_slope_stderr"]
    )
    # falling early in the window, then at a floor: the later half does not fall
    settled = lawful(10)
    settled.values["train_loss"][:] = np.maximum(1 / (E + 1), 1 / 29) * (1 + 0.01 * WIGGLE)
    claim = claims.loss_falling_claim("m", "m", settled)
    assert claim.verdict == "fails" and claim.evidence["log_loss_vs_log_epoch_slope"] < 0
    assert claim.evidence["later_half_epochs"] == [29, 40]
    for h, why in ((lawful(41), "never"), (lawful(38), "fewer than 5 epochs")):
        claim = claims.loss_falling_claim("m", "m", h)
        assert claim.verdict == "not-applicable" and why in claim.evidence["reason"]


def test_val_loss_rises_claim_holds_fails_and_needs_a_window():
    claim = claims.val_loss_rises_claim("m", "m", lawful(10), 1000)
    assert claim.verdict == "holds", claim.evidence
    assert claim.evidence["val_loss_min_epoch"] == 8
    overfit = lawful(10)  # the validation error grows by 0.1 over the window: overfitting
    overfit.values["test_error"][:] = 0.3 + 0.005 * E + 0.01 * WIGGLE
    claim = claims.val_loss_rises_claim("m", "m", overfit, 1000)
    assert claim.verdict == "fails"
    assert claim.evidence["val_error_change_over_window"] == pytest.approx(0.1, abs=0.01)
    assert claim.evidence["val_error_noise"] == pytest.approx(claims.test_error_noise(0.45, 1000), rel=0.05)
    # on 100 test images a rise of 0.1 is within the sampling noise of the error (±0.07)
    assert claims.val_loss_rises_claim("m", "m", overfit, 100).verdict == "holds"
    flat = lawful(10)  # the validation loss only scatters about a level
    flat.values["test_loss"][:] = 1 + 0.05 * WIGGLE
    assert claims.val_loss_rises_claim("m", "m", flat, 1000).verdict == "fails"
    improving = lawful(10)  # the original's "validation error slowly improves" holds too
    improving.values["test_error"][:] = 0.3 - 0.002 * E + 0.01 * WIGGLE
    assert claims.val_loss_rises_claim("m", "m", improving, 1000).verdict == "holds"
    assert claims.val_loss_rises_claim("m", "m", lawful(41), 1000).verdict == "not-applicable"


def test_test_error_noise_is_binomial():
    assert claims.test_error_noise(0.5, 200) == pytest.approx(0.05)
    assert claims.test_error_noise(0.0, 200) == 0.0


def test_cnn_claims_are_not_applicable_without_zero_error():
    h = history(np.full(20, 0.1), np.linspace(2, 1, 20), np.linspace(2, 1, 20), np.full(20, 0.5))
    verdicts = [c.verdict for c in claims.cnn_claims("m", "m", h, 100)]
    assert verdicts == ["fails", "not-applicable", "not-applicable"]


def net(title, depth, e0, z, slope=-1.0, stderr=0.1, epochs=100):
    """The contrast claims' view of one network (the same trend over the window and its later half)."""
    start = max(z or 0, epochs // 2)
    whole = measure.Trend(slope, stderr, (start, epochs), epochs - start + 1)
    late = measure.Trend(slope, stderr, (round(np.sqrt(start * epochs)), epochs), 10)
    t = None if z is None else measure.LossTrend(whole, late)
    return measure.Interpolation(title, depth, e0, z, epochs, t, None if z is not None else "no Z")


RESNET = net("resnet", 18, 20, 25)


def test_interpolation_of_a_history():
    n = measure.Interpolation.of("m", 4, lawful(10))
    assert (n.first_zero, n.zero_from, n.epochs) == (10, 10, 40) and n.loss_trend.falls
    assert n.loss_trend.late.window == (29, 40)
    assert n.epochs_at_zero() == "10"
    diverged = measure.Interpolation.of("m", 4, lawful(10), diverged="run m diverged at step 3")
    assert diverged.zero_from is None and diverged.loss_trend is None and "diverged" in diverged.why


def test_skips_zero_error_claim():
    plain = [net("base", 4, 60, 80), net("vgg", 9, 30, 30)]
    claim = claims.skips_zero_error_claim(RESNET, plain)
    assert claim.verdict == "holds" and claim.evidence["first_zero_over_resnet"] == {"base": 3.0, "vgg": 1.5}
    claim = claims.skips_zero_error_claim(RESNET, [plain[0], net("vgg", 9, 30, None)])
    assert claim.verdict == "fails" and claim.evidence["missed"] == ["vgg"]
    claim = claims.skips_zero_error_claim(net("resnet", 18, None, None), plain)
    assert claim.verdict == "not-applicable" and "reference result" in claim.evidence["reason"]


def test_skips_loss_falling_claim():
    plain = [net("base", 4, 60, 80), net("vgg", 9, 30, 30, slope=-0.5)]
    assert claims.skips_loss_falling_claim(RESNET, plain).verdict == "holds"
    flat = net("vgg", 9, 30, 30, slope=-0.1, stderr=0.1)  # within 2 standard errors of 0
    claim = claims.skips_loss_falling_claim(RESNET, [plain[0], flat])
    assert claim.verdict == "fails" and claim.evidence["missed"] == ["vgg"]
    assert claims.skips_loss_falling_claim(RESNET, [plain[0], net("vgg", 9, None, None)]).verdict == "fails"
    claim = claims.skips_loss_falling_claim(net("resnet", 18, 20, 25, slope=0.0), plain)
    assert claim.verdict == "not-applicable"


def test_depth_first_zero_claim():
    deep_first = [net("base", 4, 60, 80), net("vgg", 9, 30, 30)]
    claim = claims.depth_first_zero_claim(deep_first, RESNET)
    assert claim.verdict == "holds" and "vgg" in claim.statement.split("no later")[0]
    tied = [net("base", 4, 60, 80), net("vgg", 9, 70, 90)]  # [60, 80] and [70, 90] overlap
    assert claims.depth_first_zero_claim(tied).verdict == "holds"
    later = [net("base", 4, 60, 65), net("vgg", 9, 70, 90)]
    assert claims.depth_first_zero_claim(later).verdict == "fails"
    never = [net("base", 4, 60, 65), net("vgg", 9, 70, None)]
    assert claims.depth_first_zero_claim(never).verdict == "not-applicable"
    assert claims.depth_first_zero_claim(deep_first[:1]).verdict == "not-applicable"


def test_contrast_claims_follow_the_selected_runs():
    plain = [net("base", 4, 60, 80), net("vgg", 9, 30, 30)]
    assert [c.id for c in claims.contrast_claims(RESNET, plain)] == [
        "skips-zero-train-error",
        "skips-loss-still-falling",
        "depth-first-zero",
    ]
    assert [c.id for c in claims.contrast_claims(None, plain)] == ["depth-first-zero"]
    assert [c.id for c in claims.contrast_claims(RESNET, plain[:1])] == [
        "skips-zero-train-error",
        "skips-loss-still-falling",
    ]
    assert claims.contrast_claims(RESNET, []) == []


# ---------------------------------------------------------------------------------------
# settings and configs


def built(m, c):
    """Network `m` of CNN settings `c` as its run builds it (on the meta device), and its config."""
    from sgdlab.build import resolve
    from sgdlab.config import load_config
    from sgdlab.models import build_model

    cfg = resolve(load_config(raw=configs.cnn_config(m, c)))
    side = cfg.data.resize or 32
    with torch.device("meta"):
        return build_model(cfg.model, (3, side, side), 10), cfg


@pytest.mark.parametrize("scale", ["smoke", "cpu", "full"])
def test_every_scale_contrasts_nets_without_skips_with_a_resnet_on_the_papers_recipe(scale):
    s = settings.SCALE_SETTINGS[scale]
    for m in s.cnn.models:
        model, cfg = built(m, s.cnn)
        assert (cfg.optim.name, cfg.optim.lr, cfg.optim.weight_decay) == ("sgd", 0.01, 0.0)
        assert cfg.optim.schedule.name == "constant" and cfg.data.name == "cifar10"
        assert cfg.train.batch_size == 32 and cfg.model.dropout in (None, 0.0)
        has_skips = cfg.model.name.startswith("resnet") and cfg.model.skips == "all"
        assert m.skips == has_skips
        if not m.skips:  # the nets of the text: no skip connections and no batch norm
            assert cfg.model.batch_norm in (None, "none")
        # depth: weight layers on the longest path (the shortcut projections run beside it)
        layers = [
            name
            for name, x in model.named_modules()
            if isinstance(x, (torch.nn.Conv2d, torch.nn.Linear)) and "shortcut" not in name
        ]
        assert len(layers) == m.depth, m.key
    resnet = s.cnn.resnet
    assert resnet is not None and resnet.depth == 18 and s.cnn.plain
    assert len(measure.run_grid(s.linear)) == len(s.linear.lrs) * (1 + s.linear.sgd_seeds)


def test_full_scale_networks_have_the_texts_parameter_counts():
    s = settings.SCALE_SETTINGS["full"].cnn
    counts = {m.key: sum(p.numel() for p in built(m, s)[0].parameters()) for m in s.models}
    # the text's three; ResNet-18 for CIFAR-10: He et al.'s 11.17 M
    assert counts == {"base": 121_802, "alexnet": 21_622_154, "vgg16": 37_704_258, "resnet": 11_173_962}


# ---------------------------------------------------------------------------------------
# the smoke reproduction end to end


@pytest.fixture(scope="module")
def smoke(smoke_reproduction):
    return smoke_reproduction("exact-convergence")


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
        assert abs(np.log10(factors["value"][-1]) - 1) < 0.05  # the last decade's loss law is ~1/t


def test_smoke_cnn_claims_follow_the_measurement(smoke):
    out, claims = smoke
    c = {x.id: x for x in claims}
    table = experiments_table(out, "cnn")
    for key, skips in (("base", False), ("resnet", True)):
        row = {k: v[list(table["network"]).index(key)] for k, v in table.items()}
        assert row["skips"] == skips
        zero = c[f"{key}-zero-train-error"]
        assert zero.verdict == ("holds" if row["zero_from_epoch"] >= 0 else "fails")
        assert zero.evidence["first_zero_epoch"] == (
            row["first_zero_epoch"] if row["first_zero_epoch"] >= 0 else None
        )
        falling = c[f"{key}-loss-still-falling"]
        if falling.verdict != "not-applicable":
            falls = [
                falling.evidence[f"{p}log_loss_vs_log_epoch_slope"]
                < -2 * falling.evidence[f"{p}log_loss_vs_log_epoch_slope_stderr"]
                for p in ("", "later_half_")
            ]
            assert falling.verdict == ("holds" if all(falls) else "fails")
        val = c[f"{key}-val-loss-rises"]
        if val.verdict != "not-applicable":
            ev = val.evidence
            rises = ev["log_val_loss_vs_log_epoch_slope"] > 2 * ev["log_val_loss_vs_log_epoch_slope_stderr"]
            stable = ev["val_error_change_over_window"] <= 2 * ev["val_error_noise"]
            assert val.verdict == ("holds" if rises and stable else "fails")
    assert c["base-zero-train-error"].verdict == "holds"


def test_smoke_contrast_claims_follow_the_per_network_claims(smoke):
    _, claims = smoke
    c = {x.id: x for x in claims}
    assert "depth-first-zero" not in c  # one net without skips at this scale
    zero, falling = c["skips-zero-train-error"], c["skips-loss-still-falling"]
    if c["resnet-zero-train-error"].verdict != "holds":
        assert zero.verdict == "not-applicable"
    else:
        assert zero.verdict == c["base-zero-train-error"].verdict
        assert (
            zero.evidence["first_zero_epoch"]["ResNet-18 (width 8)"]
            == c["resnet-zero-train-error"].evidence["first_zero_epoch"]
        )
    if c["resnet-loss-still-falling"].verdict != "holds":
        assert falling.verdict == "not-applicable"
    else:
        assert falling.verdict == ("holds" if c["base-loss-still-falling"].verdict == "holds" else "fails")


def test_smoke_writes_tables_and_figures(smoke):
    out, _ = smoke
    for name in ("linear-separable", "linear-separable-random", "cnn-base", "cnn-resnet", "cnn-skips"):
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

    import pyarrow.compute as pc
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
    assert RunDir(run).read_summary()["status"] == "interrupted" and RunDir(run).states()[-1][0] == 300
    assert not (out / "claims.json").exists()

    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "cnn-base: resuming" in again.stderr and "cnn-base: training" not in again.stderr
    summary = RunDir(run).read_summary()
    assert summary["status"] == "completed" and summary["resumes"] == 1
    expected = [c for c in json.loads((ref / "claims.json").read_text()) if c["id"].startswith("base-")]
    assert json.loads((out / "claims.json").read_text()) == expected
    a, b = (pq.read_table(d / "tables" / "cnn.parquet").drop_columns(["wall_time_s"]) for d in (out, ref))
    assert a.equals(b.filter(pc.equal(b["network"], "base")))  # wall_time_s: the only measured time
    metrics = RunDir(run).read_metrics()
    assert metrics.equals(RunDir(ref / "runs" / "cnn-base").read_metrics())
    assert metrics["step"].to_pylist() == sorted(set(metrics["step"].to_pylist()))  # no row twice


def test_a_diverged_cnn_run_makes_its_claims_say_so(tmp_path, monkeypatch):
    """lr 10^30 (for the paper's 0.01) makes the smoke CNN run diverge at once: the reproduction
    still ends, with the zero-error claim failing and the other two not applicable, each giving
    "run cnn-base diverged at step k" as its reason; no claim is decided on a NaN."""
    monkeypatch.setattr(configs, "LR", 1e30)
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

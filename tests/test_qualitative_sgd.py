"""qualitative-sgd (Giselsson's lecture): the toy simulations against their closed forms, every
claim decided from synthetic measurements (where it holds, where it fails and, where it has a
premise, where it is not applicable), the measurements' statistics, and the smoke-scale
reproduction end to end (claims decided from their evidence, tables, figures, --only)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from sgdlab.experiments import experiments, reproduce
from sgdlab.experiments.qualitative_sgd import claims as C
from sgdlab.experiments.qualitative_sgd import measure, plan
from sgdlab.experiments.qualitative_sgd import settings as S
from sgdlab.experiments.qualitative_sgd.measure import (
    Escapes,
    Estimate,
    Floor,
    Landscape,
    Net,
    PairRun,
    RuleRun,
)
from sgdlab.toys import (
    Escape,
    NoiseBall,
    escape_summary,
    pair_amplitude,
    simulate_escape,
    simulate_noise_ball,
    simulate_pair,
)
from sgdlab.toys.lecture import subset_masks


def test_noise_ball_closed_forms():
    nb = NoiseBall()
    assert torch.allclose(nb.c.sum(dim=0), torch.zeros(2, dtype=torch.float64))
    sim = simulate_noise_ball(nb, runs=4000, steps=150, seed=1)
    assert np.abs(sim["gd"][1]).max() < 1e-12
    cycle = nb.cycle().numpy()
    for j in range(3):  # the cycle is a fixed point of the three cyclic steps
        nxt = (2 / 3) * cycle[j] + nb.c.numpy()[j] / 3
        np.testing.assert_allclose(nxt, cycle[(j + 1) % 3], atol=1e-15)
    np.testing.assert_allclose(sim["cyclic"][-3:], np.roll(cycle, -((150 - 2) % 3), axis=0), atol=1e-12)
    sq = (sim["iid"][75:] ** 2).sum(-1).mean()
    assert sq == pytest.approx(nb.ball, rel=0.03)
    # μ(x): negative at the centre (min c_i·c_j), ≈ ‖x‖² far away
    assert float(nb.mu(torch.zeros(2, dtype=torch.float64))) < 0
    assert float(nb.mu(torch.tensor([100.0, 0.0], dtype=torch.float64))) > 0


def test_pair_settles_on_the_two_cycle():
    for c in (0.83, 0.02):
        x = simulate_pair(c, 0.07, 1.0, 1500)
        amp = pair_amplitude(c, 0.07)
        assert np.abs(x[-2:]).max() == pytest.approx(amp, rel=1e-9)
        assert x[-1] == pytest.approx(-x[-2], rel=1e-9)
    assert measure.stays_below(np.array([1.0, 0.0, 2.0, 0.0, 0.0]), 0.5) == 3
    assert measure.stays_below(np.array([1.0, 0.0, 2.0]), 0.5) is None


def test_escape_landscape_and_batches():
    e = Escape()
    xl = torch.tensor(e.x_left, dtype=torch.float64)
    g = e.grads(xl)
    assert float(g[3]) == pytest.approx(-2.77) and abs(float(g.sum())) < 1e-12
    assert float(e.grads(torch.tensor(e.x_right, dtype=torch.float64)).abs().max()) == 0.0
    # derivatives are the derivatives of the functions
    x = torch.linspace(-0.5, 3.5, 101, dtype=torch.float64, requires_grad=True)
    (auto,) = torch.autograd.grad(e.f_i(x)[:, 3].sum(), x)
    torch.testing.assert_close(auto, e.grads(x.detach())[:, 3])
    assert subset_masks(2).shape == (6, 4) and (subset_masks(2).sum(1) == 2).all()
    sim = simulate_escape(e, (1, 4), runs=200, steps=60, seed=0)
    summary = escape_summary(sim["first_escape"], (1, 4))
    assert summary["escape_probability"][1] == 0.0 and summary["escape_probability"][0] > 0.5
    assert np.all(sim["final"][0][sim["first_escape"][0] > 0] > e.barrier)  # absorbed on the right


def test_plan_lists_runs_and_simulations():
    p = plan("cpu")
    assert {"noise-ball", "pair", "escaping"} == set(p.simulations)
    assert {"ls-under", "ls-over", "net-3x5", "net-15x25", "rule-undamped", "mu-mlp"} <= set(p.runs)
    assert p.runs["rule-undamped"]["optim"]["schedule"]["alpha"] == 0.0
    entry = experiments.get("qualitative-sgd")
    assert "Giselsson" in str(entry.extra["paper"])


@pytest.fixture(scope="module")
def smoke(smoke_reproduction):
    return smoke_reproduction("qualitative-sgd")


def test_smoke_reproduction_decides_every_claim_from_its_evidence(smoke):
    out, claims = smoke
    by_id = {c.id: c for c in claims}
    for part in ("noise-ball/", "pair/", "ls/", "nets/", "escaping/", "rules/", "mu/"):
        assert any(i.startswith(part) for i in by_id), part
    decided = [c for c in claims if c.verdict != "not-applicable"]
    assert all(c.headline and c.meaning for c in decided), [c.id for c in decided if not c.headline]
    assert all(c.evidence.get("reason") for c in claims if c.verdict == "not-applicable")
    assert all("Giselsson" in c.source for c in claims)
    # verdicts follow from the recorded evidence
    nb = by_id["noise-ball/sgd-stationary"].evidence
    assert (by_id["noise-ball/sgd-stationary"].verdict == "holds") == (
        abs(nb["measured"] - nb["target"]) <= 4 * nb["standard_error"]
    )
    esc = by_id["escaping/gd-never"]
    assert esc.verdict == "holds" and esc.evidence["escapes"] == 0
    und = by_id["rules/undamped-diverges"]
    if und.evidence["full_grad_norm_epoch0"] < C.LARGE_GRADIENT:
        assert und.verdict == "not-applicable"
    else:
        assert (und.verdict == "holds") == (und.evidence["status"] == "diverged")
    amp = by_id["pair/amplitude"].evidence
    assert amp["amplitude"]["0.83"] == pytest.approx(0.07 * 0.83 / 1.93, rel=1e-6)
    ls = by_id["ls/individual-gradients-at-solution"].evidence
    assert ls["max_norm_over"] < 1e-6 < ls["max_norm_under"]
    smoke_ls = S.SCALE_SETTINGS["smoke"].least_squares  # the statement names the sizes it ran
    assert f"{smoke_ls.n}×{smoke_ls.dims[1]}" in by_id["ls/over-interpolates"].statement
    for name in ("noise-ball", "pair", "least-squares", "nets", "escaping", "agreement"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 10_000
    for table in (
        "noise_ball",
        "escaping_summary",
        "least_squares_floors",
        "step_size_rules",
        "agreement_batch",
    ):
        assert (out / "tables" / f"{table}.parquet").is_file()
    stored = json.loads((out / "claims.json").read_text())
    assert [c["id"] for c in stored] == [c.id for c in claims]


def test_undamped_rule_is_recorded_as_diverged_with_its_step(smoke):
    from sgdlab.store import load_run

    out, _ = smoke
    run = load_run(out / "runs" / "rule-undamped")
    assert run.status == "diverged" and isinstance(run.summary["diverged_at"], int)


def test_only_selects_a_simulation_and_skips_the_rest(tmp_path):
    claims = reproduce("qualitative-sgd", tmp_path, scale="smoke", device="cpu", only="pair")
    assert {c.id.split("/")[0] for c in claims} == {"pair"}
    assert not any((tmp_path / "runs").iterdir())


def test_plan_estimates_simulations_from_a_timed_stretch():
    from sgdlab.experiments.qualitative_sgd import SIMULATIONS, simulation_seconds
    from sgdlab.experiments.qualitative_sgd.settings import SCALE_SETTINGS

    for name in SIMULATIONS:
        assert 0 < simulation_seconds(name, SCALE_SETTINGS["smoke"].toys, fraction=0.05) < 120


# ---------------------------------------------------------------------------------------
# Measurements: the statistics the claims are decided from


def test_ratio_of_means_is_not_dominated_by_small_denominators():
    num, den = np.array([1e-3, 2.0, 4.0]), np.array([1e-6, 2.0, 4.0])
    assert np.mean(num / den) > 300  # the mean of ratios: one near-zero denominator decides it
    e = measure.ratio_of_means(num, den)
    assert e.value == pytest.approx(6.001 / 6.000001) and e.count == 3
    spread = measure.ratio_of_means(np.array([1.0, 3.0]), np.array([1.0, 1.0]))
    assert spread.value == 2.0 and spread.se == pytest.approx(1.0)  # √(2·(1 + 1))/2


def test_contraction_by_region_is_a_ratio_of_means_over_runs():
    iid = np.zeros((3, 2, 2))
    iid[0] = [[2.0, 0.0], [0.0, 4.0]]
    iid[1] = iid[0] / 2
    iid[2] = iid[1] / 2
    e = measure.contraction(iid, np.ones((2, 2), dtype=bool))
    assert e.value == pytest.approx(0.25) and e.se == pytest.approx(0.0, abs=1e-15) and e.count == 2
    assert measure.contraction(iid, np.zeros((2, 2), dtype=bool)).count == 0


def test_stationary_excess_loss_matches_the_one_dimensional_closed_form():
    """d = 1: 2H·C − γ·mean(a⁴)·C = γ·mean(r²a²), so E f − f* = ½·H·C."""
    a = np.array([[1.0], [0.5], [-0.8], [0.3]])
    b = np.array([1.0, -2.0, 0.5, 3.0])
    x = np.linalg.lstsq(a, b, rcond=None)[0]
    r = b - a @ x
    h, a4, s = (a[:, 0] ** 2).mean(), (a[:, 0] ** 4).mean(), (r**2 * a[:, 0] ** 2).mean()
    for step in (0.1, 0.5, 1.0):
        c = step * s / (2 * h - step * a4)
        assert measure.stationary_excess_loss(a, b, step) == pytest.approx(0.5 * h * c, rel=1e-8)


def test_stationary_excess_loss_matches_a_simulation_of_iid_sgd():
    gen = np.random.default_rng(0)
    a, b = gen.normal(size=(12, 3)) / 2, gen.normal(size=12)
    x_star = np.linalg.lstsq(a, b, rcond=None)[0]
    f_star = 0.5 * np.mean((a @ x_star - b) ** 2)
    step, chains, steps = 0.5, 4000, 400
    x = np.zeros((chains, 3))
    for _ in range(steps):
        i = gen.integers(0, 12, chains)
        x -= step * ((a[i] * x).sum(1) - b[i])[:, None] * a[i]
    excess = 0.5 * np.mean((x @ a.T - b) ** 2, axis=1) - f_star
    theory = measure.stationary_excess_loss(a, b, step)
    assert abs(excess.mean() - theory) < 4 * excess.std() / math.sqrt(chains)


def test_floor_halves_and_drift():
    gap = np.concatenate([np.full(10, 100.0), np.full(4, 3.0), np.full(4, 1.0)])
    assert measure.window_halves(gap, 8) == (3.0, 1.0)
    f = measure.floor(0.5, [gap, gap + 1], 8, theory=2.0)
    np.testing.assert_allclose(f.per_seed, [2.0, 3.0])
    np.testing.assert_allclose(f.drift, [-2.0, -2.0])


def test_power_law_exponent_and_its_error():
    steps = np.array([0.125, 0.25, 0.5])
    p, se = C.power_law_exponent(steps, 3 * np.sqrt(steps), np.zeros(3))
    assert p == pytest.approx(0.5) and se == 0
    _, se = C.power_law_exponent(steps, steps, 0.1 * steps)  # σ_ln = 0.1 at every point
    assert se == pytest.approx(0.1 / math.sqrt(2) / math.log(2))


def test_escape_summary_counts_and_errors():
    first = np.array([[1, 3, -1, 5], [-1, -1, -1, -1]])
    s = escape_summary(first, (1, 4))
    assert s["escaped"] == [3, 0] and s["escape_probability"] == [0.75, 0.0]
    assert s["mean_escape_step"][0] == 3.0 and s["escape_step_se"][0] == pytest.approx(2 / math.sqrt(3))
    assert math.isnan(s["mean_escape_step"][1])
    assert C.escape_probability_se(np.array([0]), 100)[0] > 0  # 0 of n keeps an error of order 1/n


# ---------------------------------------------------------------------------------------
# Every claim: synthetic measurements where it holds, fails, and is not applicable


def verdict(claim):
    return claim.verdict


def test_noise_ball_gd_one_step():
    x0 = np.array([6.0, 4.0])
    assert verdict(C.noise_ball_gd_one_step_claim(x0, np.zeros(2))) == "holds"
    assert verdict(C.noise_ball_gd_one_step_claim(x0, np.array([1e-6, 0.0]))) == "fails"


def test_noise_ball_sgd_stationary():
    assert verdict(C.noise_ball_sgd_stationary_claim(Estimate(0.240, 0.001, 100), 0.2387, 100)) == "holds"
    assert verdict(C.noise_ball_sgd_stationary_claim(Estimate(0.250, 0.001, 100), 0.2387, 100)) == "fails"
    claim = C.noise_ball_sgd_stationary_claim(Estimate(0.24, math.nan, 1), 0.2387, 100)
    assert verdict(claim) == "not-applicable" and "one run" in claim.evidence["reason"]


def test_noise_ball_cyclic_cycle():
    cycle = NoiseBall().cycle().numpy()
    assert verdict(C.noise_ball_cyclic_cycle_claim(cycle + 1e-12, cycle)) == "holds"
    assert verdict(C.noise_ball_cyclic_cycle_claim(cycle + 1e-3, cycle)) == "fails"
    collapsed = np.zeros((3, 2))  # converged to the solution: no cycle
    assert verdict(C.noise_ball_cyclic_cycle_claim(collapsed, collapsed)) == "fails"


def test_noise_ball_fast_outside_slow_inside():
    fast, slow = Estimate(0.45, 0.01, 100), Estimate(0.98, 0.01, 100)
    assert verdict(C.noise_ball_fast_outside_slow_inside_claim(fast, slow, 10, 10)) == "holds"
    assert (
        verdict(C.noise_ball_fast_outside_slow_inside_claim(fast, Estimate(0.47, 0.01, 100), 10, 10))
        == "fails"
    )
    assert (
        verdict(C.noise_ball_fast_outside_slow_inside_claim(Estimate(1.01, 0.01, 100), slow, 10, 10))
        == "fails"
    )
    claim = C.noise_ball_fast_outside_slow_inside_claim(fast, Estimate(math.nan, math.nan, 0), 10, 0)
    assert verdict(claim) == "not-applicable" and "μ < 0: 0" in claim.evidence["reason"]


def test_pair_amplitude():
    exact = {c: PairRun(pair_amplitude(c, 0.07), 0.0, None) for c in (0.83, 0.02)}
    assert verdict(C.pair_amplitude_claim(exact, 0.07)) == "holds"
    off = exact | {0.02: PairRun(1.01 * pair_amplitude(0.02, 0.07), 0.0, None)}
    assert verdict(C.pair_amplitude_claim(off, 0.07)) == "fails"


def test_pair_small_individual_gradients():
    runs = {0.83: PairRun(0.03, 9e-4, None), 0.02: PairRun(7e-4, 5e-7, 120)}
    assert verdict(C.pair_small_individual_gradients_claim(runs, 1e-5)) == "holds"
    both_stall = runs | {0.02: PairRun(7e-4, 5e-5, None)}
    assert verdict(C.pair_small_individual_gradients_claim(both_stall, 1e-5)) == "fails"


def test_escaping_landscape():
    land = measure.landscape(Escape())
    assert verdict(C.escaping_landscape_claim(land)) == "holds"
    short = measure.landscape(Escape(s123=(0.5, 0.3, 0.2)))  # s_4 = −1: the step stops short
    assert short.jump < short.barrier and verdict(C.escaping_landscape_claim(short)) == "fails"
    rough = Landscape(
        land.grads_left, land.grads_right + 1e-3, land.f_left, land.f_right, land.jump, land.barrier
    )
    assert verdict(C.escaping_landscape_claim(rough)) == "fails"


def test_escaping_gd_never():
    assert verdict(C.escaping_gd_never_claim(0, 100, 0.0)) == "holds"
    assert verdict(C.escaping_gd_never_claim(1, 100, 2.0)) == "fails"
    assert verdict(C.escaping_gd_never_claim(0, 100, 1e-3)) == "fails"


def escapes(escaped, mean_step, step_se, runs=1000):
    return Escapes((1, 2, 3, 4), np.asarray(escaped), runs, np.asarray(mean_step), np.asarray(step_se))


def test_escaping_batch_size():
    nan = math.nan
    good = escapes([1000, 996, 0, 0], [16.0, 177.0, nan, nan], [0.5, 5.0, nan, nan])
    assert verdict(C.escaping_batch_size_claim(good)) == "holds"
    noisy_tie = escapes([990, 995, 0, 0], [16.0, 15.5, nan, nan], [0.5, 0.5, nan, nan])
    assert verdict(C.escaping_batch_size_claim(noisy_tie)) == "holds"  # within 3 standard errors
    rising = escapes([500, 900, 0, 0], [16.0, 177.0, nan, nan], [0.5, 5.0, nan, nan])
    assert verdict(C.escaping_batch_size_claim(rising)).startswith("fail")
    sooner = escapes([1000, 996, 0, 0], [177.0, 16.0, nan, nan], [5.0, 0.5, nan, nan])
    assert verdict(C.escaping_batch_size_claim(sooner)) == "fails"
    no_contrast = escapes([300, 300, 300, 0], [16.0, 16.0, 16.0, nan], [0.5, 0.5, 0.5, nan])
    assert verdict(C.escaping_batch_size_claim(no_contrast)) == "fails"


def test_escaping_flat_stays():
    assert verdict(C.escaping_flat_stays_claim(0.0, 100)) == "holds"
    assert verdict(C.escaping_flat_stays_claim(1e-9, 100)) == "fails"


def test_ls_over_interpolates():
    assert verdict(C.ls_over_interpolates_claim(1e-9, 10.0, 1e-14)) == "holds"
    assert verdict(C.ls_over_interpolates_claim(1e-3, 10.0, 1e-14)) == "fails"
    assert verdict(C.ls_over_interpolates_claim(1e-9, 10.0, 1e-3)) == "fails"


def test_ls_individual_gradients():
    assert verdict(C.ls_individual_gradients_claim(np.array([100.0, 3.0]), np.array([1e-12, 0.0]))) == "holds"
    assert verdict(C.ls_individual_gradients_claim(np.array([100.0, 3.0]), np.array([1e-3, 0.0]))) == "fails"


def test_ls_over_converges_faster():
    assert verdict(C.ls_over_converges_faster_claim(0.2, 1e-18)) == "holds"
    assert verdict(C.ls_over_converges_faster_claim(0.2, 1e-3)) == "fails"


STEPS = (0.5, 0.25, 0.125)


def floors(law, seeds=4, spread=0.02, drift=0.0, steps=STEPS):
    """Per-seed window halves of floors 100·(γ/0.5)^law with a relative seed spread `spread`
    and a relative second-minus-first drift `drift`; the seeds' deviations are fixed."""
    dev = np.array([-1.5, -0.5, 0.5, 1.5, -1.0, 1.0, 0.0, 0.3])[:seeds] * spread
    out = []
    for g in steps:
        level = 100 * (g / 0.5) ** law * (1 + dev)
        out.append(Floor(g, level * (1 - drift / 2), level * (1 + drift / 2), theory=100 * g / 0.5))
    return out


def test_ls_floor_holds_for_a_floor_proportional_to_the_step():
    claim = C.ls_floor_scales_with_step_claim(floors(1.0))
    assert verdict(claim) == "holds"
    assert claim.evidence["exponent"] == pytest.approx(1.0) and claim.evidence[
        "exponent_theory"
    ] == pytest.approx(1.0)
    assert (
        verdict(C.ls_floor_scales_with_step_claim(floors(1.1))) == "holds"
    )  # first order in γ: the O(γ²) term


def test_ls_floor_fails_for_a_floor_proportional_to_the_root_of_the_step_or_its_square():
    claim = C.ls_floor_scales_with_step_claim(floors(0.5))
    assert verdict(claim) == "fails" and claim.evidence["exponent"] == pytest.approx(0.5)
    assert verdict(C.ls_floor_scales_with_step_claim(floors(2.0))) == "fails"


def test_ls_floor_is_not_applicable_while_the_runs_still_decay():
    claim = C.ls_floor_scales_with_step_claim(floors(1.0, drift=-0.3))
    assert verdict(claim) == "not-applicable"
    assert "not stationary" in claim.evidence["reason"] and "0.125" in claim.evidence["reason"]


def test_ls_floor_is_not_applicable_when_the_fit_cannot_tell_the_laws_apart():
    claim = C.ls_floor_scales_with_step_claim(floors(1.0, spread=0.5))
    assert verdict(claim) == "not-applicable" and "cannot tell" in claim.evidence["reason"]


def test_ls_floor_needs_three_steps_and_two_seeds():
    assert "≥ 3" in C.ls_floor_scales_with_step_claim(floors(1.0, steps=(0.5, 0.125))).evidence["reason"]
    assert "one seed" in C.ls_floor_scales_with_step_claim(floors(1.0, seeds=1)).evidence["reason"]


def test_ls_floor_fails_without_a_positive_floor():
    zero = [Floor(g, np.zeros(3), np.zeros(3)) for g in STEPS]
    assert verdict(C.ls_floor_scales_with_step_claim(zero)) == "fails"


def net(error, loss, best=1e-2, norms=(1.0, 0.5), mu_end=-1.0, mu_half=-1.0, status="completed"):
    return Net(status, loss, error, best, np.asarray(norms), mu_end, mu_half)


UNDER = net(0.05, 0.17, best=5e-2, norms=(2.0, 0.5), mu_end=-1.5, mu_half=-1.0)
OVER = net(0.0, 1e-4, best=1e-4, norms=(1e-2, 1e-3), mu_end=-1e-5, mu_half=-1e-4)
INTERPOLATING_UNDER = net(0.0, 2e-3, best=7e-3, norms=(2.3, 0.1), mu_end=-1.5, mu_half=-1.0)


def test_nets_regime():
    assert verdict(C.nets_regime_claim(UNDER, OVER)) == "holds"
    claim = C.nets_regime_claim(INTERPOLATING_UNDER, OVER)
    assert verdict(claim) == "fails" and "3x5,2,1 interpolates" in claim.evidence["reason"]
    assert "does not interpolate" in C.nets_regime_claim(UNDER, UNDER).evidence["reason"]


@pytest.mark.parametrize(
    "claim_of, failing_over",
    [
        (C.nets_final_loss_claim, net(0.0, 0.05)),
        (C.nets_best_gradient_claim, net(0.0, 1e-4, best=1e-2)),
        (C.nets_individual_gradients_claim, net(0.0, 1e-4, norms=(1e-2, 0.3))),
        (C.nets_agreement_claim, net(0.0, 1e-4, mu_end=-2.0)),
    ],
)
def test_nets_claims_hold_fail_and_need_the_regime(claim_of, failing_over):
    assert verdict(claim_of(UNDER, OVER)) == "holds"
    assert verdict(claim_of(UNDER, failing_over)) == "fails"
    outside = claim_of(INTERPOLATING_UNDER, OVER)
    assert (
        verdict(outside) == "not-applicable" and "outside the lecture's regime" in outside.evidence["reason"]
    )


def rule(status="completed", first_step=4e-4, final_gradient=1e-4, diverged_at=None):
    return RuleRun(status, diverged_at, first_step, 1e-5, final_gradient)


LARGE, SMALL_GRADIENT = 1.3e3, 12.0  # ‖∇f(x_0)‖ inside and outside the premise


def test_rules_large_initial_gradients():
    assert verdict(C.rules_large_initial_gradients_claim(LARGE)) == "holds"
    assert verdict(C.rules_large_initial_gradients_claim(SMALL_GRADIENT)) == "fails"
    unmeasured = C.rules_large_initial_gradients_claim(math.nan)
    assert verdict(unmeasured) == "not-applicable" and "not measured" in unmeasured.evidence["reason"]


def test_rules_undamped_diverges():
    assert verdict(C.rules_undamped_diverges_claim(rule("diverged", diverged_at=4), LARGE)) == "holds"
    assert verdict(C.rules_undamped_diverges_claim(rule(), LARGE)) == "fails"
    claim = C.rules_undamped_diverges_claim(rule(), SMALL_GRADIENT)
    assert verdict(claim) == "not-applicable" and "large-initial-gradients" in claim.evidence["reason"]
    claim = C.rules_undamped_diverges_claim(rule("diverged", diverged_at=4), math.nan)
    assert verdict(claim) == "not-applicable" and "not measured" in claim.evidence["reason"]
    assert claim.evidence["status"] == {"undamped": "diverged"}  # what happened, kept as evidence


def test_rules_damping_survives():
    both = {"combined": rule(), "damped": rule()}
    assert verdict(C.rules_damping_survives_claim(both, 0.1, LARGE)) == "holds"
    big_step = {"combined": rule(first_step=0.05), "damped": rule()}
    assert verdict(C.rules_damping_survives_claim(big_step, 0.1, LARGE)) == "fails"
    gone = {"combined": rule(), "damped": rule("diverged", diverged_at=7)}
    claim = C.rules_damping_survives_claim(gone, 0.1, LARGE)
    assert verdict(claim) == "fails" and claim.headline == "run rule-damped diverged at step 7"
    claim = C.rules_damping_survives_claim(big_step, 0.1, SMALL_GRADIENT)
    assert verdict(claim) == "not-applicable" and "large-initial-gradients" in claim.evidence["reason"]


def test_rules_diminishing_smaller_final_gradient():
    holds = C.rules_diminishing_smaller_final_gradient_claim(
        rule(final_gradient=3e-4), rule(final_gradient=1.3e-2)
    )
    assert verdict(holds) == "holds"
    same = C.rules_diminishing_smaller_final_gradient_claim(
        rule(final_gradient=7.9e-5), rule(final_gradient=8.1e-5)
    )
    assert verdict(same) == "fails"
    gone = C.rules_diminishing_smaller_final_gradient_claim(rule(), rule("diverged", diverged_at=3))
    assert verdict(gone) == "not-applicable" and "rule-damped diverged" in gone.evidence["reason"]


def test_mu_batch_size():
    rising = {"θ_0 (step 0)": {"batch_size": [1, 4, 16], "mu": [-4.7, -1.0, 0.2]}}
    assert verdict(C.mu_batch_size_claim(rising)) == "holds"
    dip = rising | {"θ* (step 9)": {"batch_size": [1, 4, 16], "mu": [-4.7, -5.0, 0.2]}}
    assert verdict(C.mu_batch_size_claim(dip)) == "fails"


def test_mu_distance_and_cosine():
    distance = np.linspace(7.0, 0.0, 25)
    rising = -8.0 + distance / 3 + 0.05 * np.sin(np.arange(25))
    assert verdict(C.mu_distance_claim(distance, rising)) == "holds"
    assert verdict(C.mu_distance_cosine_claim(distance, rising / 100)) == "holds"
    shuffled = np.random.default_rng(0).permutation(rising)  # no association with the distance
    shuffled[0], shuffled[-1] = 1.0, -9.0
    assert verdict(C.mu_distance_claim(distance, shuffled)) == "fails"
    assert verdict(C.mu_distance_claim(distance, rising[::-1])) == "fails"
    assert verdict(C.mu_distance_cosine_claim(distance, -rising)) == "fails"

"""`sgdl-flatness` at smoke scale end to end: every claim decided from its evidence, the tables
and figures written, --only and --plan; and the claim logic on constructed numbers."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest

from sgdlab.experiments import experiments, load_claims, reproduce
from sgdlab.experiments.premise import premise_claim
from sgdlab.experiments.sgdl_flatness import plan
from sgdlab.experiments.sgdl_flatness.claims import (
    Baseline,
    Measured,
    all_similar_claim,
    boltzmann_claim,
    boltzmann_paper_levels_claim,
    gd_mass_claim,
    measures_agree_claim,
    noise_threshold_claim,
    premise,
    ratio_check,
    report_sharp_claim,
    rosenbrock_rate_claim,
    rosenbrock_stalls_claim,
    separation_claim,
    sgdl_mass_claim,
    simplex_claim,
)
from sgdlab.experiments.sgdl_flatness.measure import (
    LinearRegime,
    SweepRun,
    TallestBar,
    linear_regime,
    rosenbrock_marks,
    simplex_corners,
    surface_summary,
)
from sgdlab.experiments.sgdl_flatness.settings import SCALE_SETTINGS
from sgdlab.papers import ZHANG_2017_SGD
from sgdlab.probes.landscape import simplex_lambdas

FIGURES = (
    "toy-landscapes",
    "toy-histogram-vs-mass",
    "toy-occupancy",
    "rosenbrock",
    "sgdl-digits",
    "labels-interpolation",
    "labels-flatness",
)


@pytest.fixture(scope="module")
def smoke(smoke_reproduction):
    return smoke_reproduction("sgdl-flatness")


def test_smoke_reproduction_decides_every_claim_from_its_evidence(smoke):
    out, claims = smoke
    by_id = {c.id: c for c in claims}
    assert {
        "2d/gd-mass",
        "2d/sgdl-mass",
        "2d/report-sharp-popular",
        "2d/boltzmann",
        "2d/boltzmann-paper-levels",
        "rosenbrock/rate",
        "rosenbrock/no-local-minima",
        "mlp/digits-noise-threshold",
        "mlp/digits-report-all-similar",
        "mlp/digits-constant-all-similar",
        "labels/zero-train-error",
        "labels/lambda_max",
        "labels/trace",
        "labels/sharpness",
        "labels/simplex_excess",
        "labels/measures-agree",
    } <= set(by_id)
    for c in claims:
        assert c.source == str(ZHANG_2017_SGD) and c.statement
        if c.verdict != "not-applicable":
            assert c.headline and c.meaning, c.id
        else:
            assert c.evidence.get("reason"), c.id
    assert load_claims(out) == claims
    for name in FIGURES:
        assert (out / "figures" / f"{name}.png").stat().st_size > 10_000, name

    # Verdicts follow from the recorded numbers.
    gd = by_id["2d/gd-mass"].evidence
    assert (by_id["2d/gd-mass"].verdict == "holds") == (gd["flat_ci95"][0] > gd["sharp_ci95"][1])
    report = by_id["2d/report-sharp-popular"].evidence
    assert (by_id["2d/report-sharp-popular"].verdict == "holds") == (
        report["sharp_mass"] > report["flat_mass"]
    )
    # The report's picture: GD piles the sharp minimum's runs into one bin.
    assert (
        report["tallest_bin_basin"] == "sharp minimum"
        and report["tallest_bar_sharp"] > report["tallest_bar_flat"]
    )
    for check in by_id["2d/boltzmann"].evidence["checks"].values():
        assert check["matches"] == (
            abs(math.log(check["measured_ratio"] / check["boltzmann_ratio"])) <= check["allowed"]
        )
    rate = by_id["rosenbrock/rate"].evidence
    assert rate["condition_number"] == pytest.approx(2508, rel=1e-3)
    assert rate["predicted_rate"] == pytest.approx(1 - 5e-4 * 0.39936, rel=1e-6)
    labels = by_id["labels/zero-train-error"]
    for name in labels.evidence["meets"]:
        assert labels.evidence["runs"][name]["final_train_error"] == 0
    for key in ("lambda_max", "trace", "sharpness"):
        c = by_id[f"labels/{key}"]
        if c.verdict != "not-applicable":
            e = c.evidence
            upper = max(v + 3 * se for v, se in zip(e["natural"], e["natural_se"], strict=True))
            lower = min(v - 3 * se for v, se in zip(e["random"], e["random_se"], strict=True))
            assert (c.verdict == "holds") == (upper < lower)
            assert len(c.evidence["natural"]) + len(c.evidence["random"]) == len(labels.evidence["meets"])
    sweep = by_id["mlp/digits-noise-threshold"].evidence["runs"]
    assert set(sweep) == {"0", "0.1"}
    for row in sweep.values():
        assert row["converges"] == (row["tail_loss"] <= 0.1 * row["initial_loss"])

    # Tables hold what the claims and figures were made from.
    import pyarrow.parquet as pq

    runs = pq.read_table(out / "tables" / "toy_runs.parquet").to_pydict()
    assert runs["particles"][0] == SCALE_SETTINGS["smoke"].toy.particles
    assert np.allclose(np.array(runs["flat"]) + runs["sharp"] + runs["plateau"] + runs["elsewhere"], 1.0)
    flat = pq.read_table(out / "tables" / "labels_flatness.parquet").to_pydict()
    assert all(v > 0 for v in flat["lambda_max"])
    experiment = json.loads((out / "experiment.json").read_text())
    assert experiment["experiment"] == "sgdl-flatness"


def test_second_invocation_reuses_simulations_and_runs(smoke, monkeypatch):
    out, claims = smoke
    import sgdlab.experiments.sgdl_flatness.measure.toy as toy

    def boom(*a, **k):
        raise AssertionError("the particle study was simulated again")

    monkeypatch.setattr(toy, "simulate", boom)
    monkeypatch.setattr("sgdlab.experiments.sgdl_flatness.simulate_all", boom)
    monkeypatch.setattr("sgdlab.experiments.sgdl_flatness.simulate_rosenbrock", boom)
    again = reproduce("sgdl-flatness", out, scale="smoke", device="cpu")
    assert [(c.id, c.verdict, c.headline) for c in again] == [(c.id, c.verdict, c.headline) for c in claims]


def test_only_selects_a_part(tmp_path):
    claims = reproduce("sgdl-flatness", tmp_path, scale="smoke", device="cpu", only="rosenbrock")
    assert [c.id for c in claims] == ["rosenbrock/rate", "rosenbrock/no-local-minima"]
    assert not any((tmp_path / "runs").iterdir())  # no run was trained
    assert (tmp_path / "figures" / "rosenbrock.png").is_file()


def test_plan_lists_every_run_and_the_simulations():
    p = plan("cpu")
    assert len(p.runs) == 5 + 2 * 4 + 6  # plain SGD on 5 seeds, 4 γ' × 2 schedules, 6 label runs
    assert {"particles", "rosenbrock"} <= set(p.simulations)
    cfg = p.runs["sgdl-digits-constant-0.01"]
    assert cfg["model"] == {"name": "mlp", "widths": [512, 512]} and cfg["train"]["batch_size"] == 32
    assert cfg["optim"] == {"name": "sgdl", "lr": 0.01, "noise": 0.01, "noise_decay": "none"}
    assert p.runs["sgdl-digits-decaying-0.01"]["optim"]["noise_decay"] == "inverse"  # the report's code
    seeds = [p.runs[f"sgdl-digits-0-seed{k}"] for k in range(5)]
    assert {c["seed"] for c in seeds} == set(range(5)) and {c["data"]["seed"] for c in seeds} == {0}
    rnd = p.runs["labels-random-1"]
    assert rnd["data"]["label_noise"] == 1.0 and rnd["data"]["seed"] == 0 and rnd["seed"] == 1
    assert "hessian" in rnd["probes"]["use"]
    assert SCALE_SETTINGS["cpu"].toy.particles >= 100_000
    assert "sgdl-flatness" in experiments.names()


def test_boltzmann_check_allows_sampling_error_and_discretization_only():
    row = {
        "particles": 100_000,
        "flat": 0.6,
        "sharp": 0.05,
        "boltzmann_flat": 0.6,
        "boltzmann_sharp": 0.05,
        "boltzmann_error": 1e-4,
        "lr": 0.1,
        "temperature": 0.25,
        "steps": 1000,
        "noise": 0.22,
    }
    assert ratio_check(row, 1.586)["matches"]
    off = dict(row, sharp=0.04)  # 25 % off: far beyond 3 s.e. (≈ 4 %) + ηκ/2 (≈ 8 %)
    assert not ratio_check(off, 1.586)["matches"]


# ---------------------------------------------------------------------------------------
# Each claim on constructed measurements: where it holds, where it fails, and where its
# premise is missing.


def mass(flat, sharp, n=100_000):
    """A toy_runs row with Wilson-like intervals of ±1 % around the masses."""
    return {
        "flat": flat,
        "flat_lo": flat - 0.01,
        "flat_hi": flat + 0.01,
        "sharp": sharp,
        "sharp_lo": sharp - 0.01,
        "sharp_hi": sharp + 0.01,
        "plateau": 1 - flat - sharp,
        "elsewhere": 0.0,
        "particles": n,
        "steps": 2000,
    }


def test_basin_mass_claims_need_non_overlapping_intervals():
    assert gd_mass_claim(mass(0.55, 0.2), {}).verdict == "holds"
    assert gd_mass_claim(mass(0.30, 0.29), {}).verdict == "fails"  # overlapping intervals
    assert gd_mass_claim(mass(0.2, 0.55), {}).verdict == "fails"
    many = {"a": mass(0.55, 0.2), "b": mass(0.5, 0.3)}
    assert sgdl_mass_claim(many).verdict == "holds"
    assert sgdl_mass_claim({**many, "c": mass(0.3, 0.3)}).verdict == "fails"
    assert sgdl_mass_claim({}).verdict == "not-applicable"


def test_report_sharp_claim_is_decided_by_mass_not_by_the_tallest_bar():
    bar = TallestBar((8.0, 5.0), "sharp minimum", 400, 50.0, 400.0, 40)
    assert report_sharp_claim(mass(0.55, 0.2), bar).verdict == "fails"
    assert report_sharp_claim(mass(0.2, 0.55), bar).verdict == "holds"
    assert report_sharp_claim(mass(0.30, 0.31), bar).verdict == "fails"  # not significant


def check(matches=True, tv_start=0.5, tv_end=0.1, t=0.25):
    return {
        "matches": matches,
        "tv_start": tv_start,
        "tv_end": tv_end,
        "temperature": t,
        "measured_ratio": 12.0,
        "measured_log_se": 0.02,
        "boltzmann_ratio": 12.1,
        "escape_exponent_dU_over_T": 1 / t,
    }


def test_boltzmann_claims_hold_fail_and_need_runs():
    assert boltzmann_claim({"T=0.25": check(), "T=0.5": check(t=0.5)}).verdict == "holds"
    assert boltzmann_claim({"T=0.25": check(), "T=0.5": check(matches=False)}).verdict == "fails"
    assert boltzmann_claim({"T=0.25": check(tv_end=0.6)}).verdict == "fails"  # moved away
    assert boltzmann_claim({}).verdict == "not-applicable"
    assert boltzmann_paper_levels_claim({"γ'=0.1": check(t=0.01)}).verdict == "holds"
    assert boltzmann_paper_levels_claim({"γ'=0.1": check(matches=False, t=0.01)}).verdict == "fails"
    assert boltzmann_paper_levels_claim({}).verdict == "not-applicable"


REGIME = LinearRegime(5e-4, (0.4, 1000.0), 1e-9, 1e-3, 1e-3)


def geometric(rate, total=120_000, d0=1.0):
    steps = np.array([0, *rosenbrock_marks(total, 60)])
    return steps, d0 * rate ** steps.astype(float)


def test_rosenbrock_rate_claim_tests_the_rate_not_a_budget():
    steps, median = geometric(REGIME.rate)
    c = rosenbrock_rate_claim(steps, median, REGIME, 0.01)
    assert c.verdict == "holds" and abs(c.evidence["relative_error"]) < 1e-6
    # 1 % slower than the Hessian predicts: more than the 0.1 % allowance
    slow = rosenbrock_rate_claim(*geometric(1 - 0.99 * 5e-4 * 0.4), REGIME, 0.01)
    assert slow.verdict == "fails"
    # still far from the minimum at the end: the rate is undecidable, whatever the budget
    stuck = rosenbrock_rate_claim(steps, np.full(len(steps), 0.5), REGIME, 0.01)
    assert stuck.verdict == "not-applicable" and "linear regime" in stuck.evidence["reason"]


def test_rosenbrock_regime_comes_from_the_hessian_and_the_float64_floor():
    theory = linear_regime(SCALE_SETTINGS["cpu"].toy)
    assert theory.eigenvalues[0] == pytest.approx(0.39936, rel=1e-4)
    assert theory.low == pytest.approx(1e3 * np.finfo(np.float64).eps * 2508.0, rel=1e-3)
    assert 1e-4 < theory.allowance < 1e-2  # λ_min changes by ~0.1 % within 10⁻³ along the valley


def test_rosenbrock_stalls_claim_catches_a_run_stuck_away_from_the_minimum():
    dist = np.full(10, 1e-9)
    grad = np.full(10, 1e-10)
    assert rosenbrock_stalls_claim(dist, grad, REGIME, 0.01).verdict == "holds"
    moving = rosenbrock_stalls_claim(np.r_[dist, 0.5], np.r_[grad, 1.0], REGIME, 0.01)
    assert moving.verdict == "holds" and moving.evidence["away_and_moving"] == 1
    stuck = rosenbrock_stalls_claim(np.r_[dist, 0.5], np.r_[grad, 1e-8], REGIME, 0.01)
    assert stuck.verdict == "fails" and stuck.evidence["stalled"] == 1
    assert rosenbrock_stalls_claim(np.r_[dist, np.nan], np.r_[grad, np.nan], REGIME, 0.01).verdict == "fails"


def sweep_run(noise, train_error=0.005, test_error=0.05, tail=0.04, seed=0, schedule="decaying"):
    return SweepRun(noise, schedule, seed, "completed", 2.3, tail, tail, train_error, test_error)


BASELINE = Baseline(
    tuple(
        sweep_run(0.0, e, t, seed=k)
        for k, (e, t) in enumerate([(0.004, 0.05), (0.006, 0.046), (0.005, 0.054)])
    ),
    n_train=1024,
    n_test=512,
)


def test_baseline_tolerance_is_three_seed_sds_but_at_least_one_example():
    assert BASELINE.tolerance("test_error") == pytest.approx(3 * np.std([0.05, 0.046, 0.054], ddof=1))
    same = Baseline(tuple(sweep_run(0.0, 0.0, 0.05, seed=k) for k in range(3)), 1024, 512)
    assert same.tolerance("train_error") == 1 / 1024


def test_all_similar_claim_judges_errors_as_well_as_the_loss():
    runs = [sweep_run(1e-4), sweep_run(1e-3, test_error=0.052)]
    c = all_similar_claim("mlp/x-report-all-similar", "decaying noise", runs, BASELINE, 0.1)
    assert c.verdict == "holds" and c.evidence["baseline"]["test_error"]["values"] == [0.05, 0.046, 0.054]
    # the loss converged (≤ 10 % of the initial), but the test error is far outside the seed spread
    worse = all_similar_claim(
        "id", "decaying noise", [*runs, sweep_run(1e-2, test_error=0.09)], BASELINE, 0.1
    )
    assert worse.verdict == "fails" and worse.evidence["failing"] == ["0.01"] and "worse" in worse.headline
    better = all_similar_claim("id", "x", [sweep_run(0.1, train_error=0.0, test_error=0.03)], BASELINE, 0.1)
    assert better.verdict == "fails" and "better" in better.headline  # similar means similar
    train = all_similar_claim("id", "decaying noise", [sweep_run(1e-2, train_error=0.03)], BASELINE, 0.1)
    assert train.verdict == "fails"
    # errors as good as plain SGD's, but the loss never came down
    assert all_similar_claim("id", "x", [sweep_run(0.1, tail=1.5)], BASELINE, 0.1).verdict == "fails"
    # premise: plain SGD converged, on at least two seeds
    lazy = Baseline(tuple(sweep_run(0.0, tail=1.0, seed=k) for k in range(3)), 1024, 512)
    assert all_similar_claim("id", "x", runs, lazy, 0.1).verdict == "not-applicable"
    one = Baseline(BASELINE.runs[:1], 1024, 512)
    assert all_similar_claim("id", "x", runs, one, 0.1).verdict == "not-applicable"


def test_noise_threshold_claim_needs_a_converging_and_a_failing_level_in_order():
    ok, bad = 0.04, 1.5
    levels = [0.0, 1e-4, 1e-3, 1e-2, 1e-1]
    tails = [ok, ok, ok, bad, bad]
    runs = [sweep_run(n, tail=t, schedule="constant") for n, t in zip(levels, tails, strict=True)]
    c = noise_threshold_claim("x", runs, 0.1)
    assert c.verdict == "holds" and c.evidence["threshold"] == 1e-2
    assert noise_threshold_claim("x", [sweep_run(n, tail=ok) for n in levels], 0.1).verdict == "fails"
    mixed = [sweep_run(n, tail=t) for n, t in zip(levels, [ok, bad, ok, bad, bad], strict=True)]
    assert noise_threshold_claim("x", mixed, 0.1).verdict == "fails"  # converges again above a failure


def test_simplex_corners_are_the_three_minimizers_not_every_lambda_equal_to_one():
    lam = simplex_lambdas(12, 0.25).numpy()
    some_one = (np.abs(lam - 1) < 1e-12).any(axis=1)
    assert some_one.sum() > 3  # the enlarged grid has other rows with a λ_i = 1
    corners = simplex_corners(lam)
    assert np.array_equal(lam[corners], np.eye(3))
    # a surface that is 0 at the three minimizers and 1 everywhere else: corners' mean 0
    values = np.ones(len(lam))
    values[corners] = 0.0
    summary = surface_summary(lam, values, flat_level=0.1)
    assert summary["corner_mean"] == 0.0
    inside = (lam >= -1e-12).all(axis=1)
    assert summary["simplex_excess"] == pytest.approx(values[inside].mean())
    assert summary["flat_fraction"] == pytest.approx(3 / inside.sum())
    assert summary["edge_excess"] == [pytest.approx(1 - 2 / 13)] * 3  # 13 points per edge, 2 of them corners


def test_separation_claim_needs_every_natural_seed_below_every_random_one_beyond_3_se():
    nat = Measured((1.0, 1.2, 1.1), (0.0, 0.0, 0.0), 3)
    rnd = Measured((3.0, 2.5, 2.8), (0.0, 0.0, 0.0), 3)
    c = separation_claim("lambda_max", "s", nat, rnd)
    assert c.verdict == "holds" and c.evidence["flatter_by_mean"] == "natural"
    assert separation_claim("lambda_max", "s", Measured((1.0, 2.6), (0, 0), 3), rnd).verdict == "fails"
    noisy = Measured(
        (1.0, 1.2, 1.1), (0.5, 0.5, 0.5), 3
    )  # separated by value, not beyond the estimator's noise
    assert separation_claim("trace", "s", noisy, rnd).verdict == "fails"
    partial = separation_claim("trace", "s", Measured((1.0,), (0.0,), 3), rnd)
    assert "natural 1/3" in partial.headline  # the headline says the coverage
    assert separation_claim("trace", "s", Measured((), (), 3), rnd).verdict == "not-applicable"


def test_simplex_claim_and_measures_agree_claim():
    nat = {"simplex_excess": 0.6, "corner_mean": 0.02, "edge_excess": [0.28, 0.30, 0.29]}
    rnd = {"simplex_excess": 1.0, "corner_mean": 0.02, "edge_excess": [0.59, 0.58, 0.64]}
    assert simplex_claim(nat, rnd).verdict == "holds"
    assert simplex_claim(rnd, nat).verdict == "fails"
    overlap = dict(nat, edge_excess=[0.28, 0.30, 0.60])  # lower on average, but one pair is not
    assert simplex_claim(overlap, rnd).verdict == "fails"
    assert simplex_claim(None, rnd).verdict == "not-applicable"
    assert measures_agree_claim({"a": "natural", "b": "natural"}).verdict == "holds"
    assert measures_agree_claim({"a": "natural", "b": "random"}).verdict == "fails"
    assert measures_agree_claim({"a": "natural"}).verdict == "not-applicable"


def test_zero_train_error_premise_claim():
    def run(loss, error):
        return SimpleNamespace(
            status="completed", final={"train_loss": loss, "train_error": error}, summary={}
        )

    p = premise(SCALE_SETTINGS["cpu"].labels)
    claim, meets = premise_claim(
        "labels/zero-train-error", "t", p, {"a": run(0.01, 0.0), "b": run(0.015, 0.0)}
    )
    assert claim.verdict == "holds" and meets == ["a", "b"]
    claim, meets = premise_claim(
        "labels/zero-train-error", "t", p, {"a": run(0.01, 0.0), "b": run(0.3, 0.02)}
    )
    assert claim.verdict == "fails" and meets == ["a"]
    assert premise_claim("labels/zero-train-error", "t", p, {})[0].verdict == "not-applicable"

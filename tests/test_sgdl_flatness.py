"""`sgdl-flatness` at smoke scale end to end: every claim decided from its evidence, the tables
and figures written, --only and --plan; and the claim logic on constructed numbers."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from sgdlab.experiments import experiments, load_claims, reproduce
from sgdlab.experiments.sgdl_flatness import plan
from sgdlab.experiments.sgdl_flatness.settings import SCALE_SETTINGS
from sgdlab.experiments.sgdl_flatness.toy import ratio_check
from sgdlab.papers import ZHANG_2017_SGD

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
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("sgdl-flatness")
    return out, reproduce("sgdl-flatness", out, scale="smoke", device="cpu")


def test_smoke_reproduction_decides_every_claim_from_its_evidence(smoke):
    out, claims = smoke
    by_id = {c.id: c for c in claims}
    assert {
        "2d/gd-mass",
        "2d/sgdl-mass",
        "2d/report-sharp-popular",
        "2d/boltzmann",
        "2d/boltzmann-paper-levels",
        "rosenbrock/budget",
        "rosenbrock/ill-conditioned",
        "mlp/digits-noise-threshold",
        "mlp/digits-report-all-similar",
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
    rb = by_id["rosenbrock/budget"].evidence
    assert rb["condition_number"] == pytest.approx(2508, rel=1e-3)
    assert (by_id["rosenbrock/budget"].verdict == "holds") == (rb["median_distance"] <= 0.01)
    labels = by_id["labels/zero-train-error"]
    for name in labels.evidence["meets"]:
        assert labels.evidence["runs"][name]["final_train_error"] == 0
    for key in ("lambda_max", "trace", "sharpness"):
        c = by_id[f"labels/{key}"]
        if c.verdict != "not-applicable":
            assert (c.verdict == "holds") == (max(c.evidence["natural"]) < min(c.evidence["random"]))
            assert len(c.evidence["natural"]) + len(c.evidence["random"]) == len(labels.evidence["meets"])
    sweep = by_id["mlp/digits-noise-threshold"].evidence["runs"]
    assert set(sweep) == {"0", "0.0001", "0.001", "0.01", "0.1"}
    for row in sweep.values():
        assert row["converges"] == (row["last_quarter_median_loss"] <= 0.1 * row["initial_train_loss"])

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
    import sgdlab.experiments.sgdl_flatness.toy as toy

    def boom(*a, **k):
        raise AssertionError("the particle study was simulated again")

    monkeypatch.setattr(toy, "simulate", boom)
    monkeypatch.setattr("sgdlab.experiments.sgdl_flatness.simulate_all", boom)
    monkeypatch.setattr("sgdlab.experiments.sgdl_flatness.simulate_rosenbrock", boom)
    again = reproduce("sgdl-flatness", out, scale="smoke", device="cpu")
    assert [(c.id, c.verdict, c.headline) for c in again] == [(c.id, c.verdict, c.headline) for c in claims]


def test_only_selects_a_part(tmp_path):
    claims = reproduce("sgdl-flatness", tmp_path, scale="smoke", device="cpu", only="rosenbrock")
    assert [c.id for c in claims] == ["rosenbrock/budget", "rosenbrock/ill-conditioned"]
    assert not any((tmp_path / "runs").iterdir())  # no run was trained
    assert (tmp_path / "figures" / "rosenbrock.png").is_file()


def test_plan_lists_every_run_and_the_simulations():
    p = plan("cpu")
    assert len(p.runs) == 5 + 6
    assert {"particles", "rosenbrock"} <= set(p.simulations)
    cfg = p.runs["sgdl-digits-0.01"]
    assert cfg["model"] == {"name": "mlp", "widths": [512, 512]} and cfg["train"]["batch_size"] == 32
    assert cfg["optim"] == {"name": "sgdl", "lr": 0.01, "noise": 0.01, "noise_decay": "none"}
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

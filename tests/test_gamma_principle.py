"""The gamma-principle reproduction at smoke scale: the premise decided per run (some runs meet it,
some do not), every other claim computed over the runs that meet it and decided from its
evidence, figures and tables written, reruns reuse, `--only` runs a subset."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pytest

from sgdlab.experiments import reproduce
from sgdlab.experiments.gamma_principle import plan
from sgdlab.experiments.gamma_principle.claims import (
    DIST_TOL,
    RATE_MIN_COVERAGE,
    Scope,
    decisive_pairs,
    distance_claim,
    faster_beyond,
    gamma_vs_speed_claim,
    kendall_tau,
    paper_order_claim,
    pca_directions_claim,
    pca_untrained_claim,
    principle_claim,
    rate_claim,
    tier_pairs,
)
from sgdlab.experiments.gamma_principle.configs import ablations
from sgdlab.experiments.gamma_principle.measure import SeedSpread, epochs_to_level, gamma_before, step_angles
from sgdlab.experiments.gamma_principle.settings import SCALE_SETTINGS
from sgdlab.experiments.premise import Premise, premise_claim
from sgdlab.probes.gamma_theorem import rate_check

ABLATIONS = ("activation", "batch-norm", "skips", "optimizer")
KINDS = ("premise", "principle", "distance", "rate", "gamma-vs-speed", "paper-order")


@pytest.fixture(scope="module")
def smoke(smoke_reproduction):
    return smoke_reproduction("gamma-principle")


def test_every_claim_is_decided_from_its_evidence(smoke):
    out, claims = smoke
    stored = json.loads((out / "claims.json").read_text())
    assert [c["id"] for c in stored] == [c.id for c in claims]
    ids = {c.id: c for c in claims}
    for ab in ABLATIONS:
        for kind in KINDS:
            assert f"{ab}/{kind}" in ids
        premise = ids[f"{ab}/premise"]
        meets = premise.evidence["meets"]
        principle = ids[f"{ab}/principle"]
        if not meets:
            assert principle.verdict == "not-applicable"
            continue
        assert principle.evidence["runs"] == meets
        fractions = [v["positive_fraction"] for v in principle.evidence["per_run"].values()]
        assert principle.verdict == ("holds" if min(fractions) == 1 else "fails")
        speed = ids[f"{ab}/gamma-vs-speed"]
        assert set(speed.evidence["epochs_to_level"]) == set(meets)
        if len(meets) < 2:
            assert speed.verdict == "not-applicable" and "fewer than two" in speed.evidence["reason"]
        elif speed.verdict != "not-applicable":
            assert speed.verdict == ("fails" if speed.evidence["discordant_pairs"] else "holds")
    for ab in ablations("smoke"):
        # the paper's order is judged over every trained run; one that never reached the level is last
        order = ids[f"{ab.id}/paper-order"].evidence
        assert set(order["epochs_to_level"]) == set(ab.variants)
        assert (
            order["by_speed"][len(order["by_speed"]) - len(order["never_reached"]) :]
            == order["never_reached"]
        )
    assert all(c.headline or c.verdict == "not-applicable" for c in claims)
    assert all("reason" in c.evidence for c in claims if c.verdict == "not-applicable")
    assert all("Anonymous (2019)" in c.source for c in claims)


def test_the_premise_is_exercised_both_ways(smoke):
    """Smoke settings make some runs reach the threshold within their cap and others not; the
    ones that miss are named and left out of the claims that assume the premise."""
    _, claims = smoke
    premises = [c for c in claims if c.id.endswith("/premise")]
    met = [label for c in premises for label in c.evidence["meets"]]
    missed = [label for c in premises for label in c.evidence["missed"]]
    assert met and missed
    for c in premises:
        for label, run in c.evidence["runs"].items():
            assert run["meets"] == (label in c.evidence["meets"])
            threshold = SCALE_SETTINGS["smoke"].premise.max_loss
            assert run["meets"] == (
                run["final_train_loss"] <= threshold
                and run["final_train_error"] == 0
                and run["status"] == "completed"
            )
        expected_missed = [x for x in c.evidence["missed"] if "paper_exception" not in c.evidence["runs"][x]]
        assert c.verdict == ("fails" if expected_missed else "holds")
    ids = {c.id: c for c in claims}
    for c in premises:
        ab = c.id.split("/")[0]
        later = ids[f"{ab}/distance"]
        assert later.evidence["left_out_missing_premise"] == c.evidence["missed"]


def test_runs_stop_at_the_threshold_or_their_cap(smoke):
    out, _ = smoke
    s = SCALE_SETTINGS["smoke"]
    for ab in ablations("smoke"):
        for label in ab.variants:
            path = out / "runs" / f"{ab.id}-{label}"
            if not path.exists():
                continue  # trained once under an identical config's name
            summary = json.loads((path / "summary.json").read_text())
            if summary["stop_reason"] == "stop_loss":
                assert summary["final"]["train_loss"] < s.premise.max_loss
            else:
                assert summary["stop_reason"] == "epochs"


def test_figures_and_tables(smoke):
    out, _ = smoke
    for name in ABLATIONS + ("pca",):
        assert (out / "figures" / f"gamma-{name}.png").stat().st_size > 10_000
    assert (out / "tables" / "pca-adam-grid.parquet").exists()
    import pyarrow.parquet as pq

    table = pq.read_table(out / "tables" / "gamma_runs.parquet")
    assert table.num_rows == sum(len(ab.variants) for ab in ablations("smoke"))
    assert {"meets_premise", "final_train_loss", "epochs_to_level"} <= set(table.column_names)
    experiment = json.loads((out / "experiment.json").read_text())
    assert experiment["scale"] == "smoke" and sum(experiment["verdicts"].values()) == 25


def test_identical_variants_are_trained_once_and_reruns_reuse(smoke):
    out, claims = smoke
    assert not (out / "runs" / "skips-all").exists()  # same config as batch-norm-all
    messages = []
    again = reproduce("gamma-principle", out, "smoke", "cpu", log=messages.append)
    assert [(c.id, c.verdict) for c in again] == [(c.id, c.verdict) for c in claims]
    trained = [m for m in messages if m.endswith(": done") or m.endswith(": training")]
    assert not trained and any("optimizer-adam: reusing" in m for m in messages), messages


def test_only_trains_a_subset_and_marks_what_it_lacks(smoke, tmp_path):
    out, _ = smoke
    sub = tmp_path / "sub"
    # reuse the smoke runs: --only must not retrain what is there
    import shutil

    shutil.copytree(out / "runs", sub / "runs")
    claims = reproduce("gamma-principle", sub, "smoke", "cpu", only="optimizer-adam")
    ids = {c.id: c for c in claims}
    assert set(ids) == {f"optimizer/{k}" for k in KINDS} | {"optimizer/pca-directions"}
    for kind in ("premise", "gamma-vs-speed", "paper-order", "pca-directions"):
        assert ids[f"optimizer/{kind}"].verdict == "not-applicable"
        assert "not trained here" in ids[f"optimizer/{kind}"].evidence["reason"]
    assert ids["optimizer/principle"].evidence["runs"] in ([], ["adam"])


def test_plan_matches_what_run_trains(smoke):
    out, _ = smoke
    planned = plan("smoke").runs
    trained = {p.name for p in (out / "runs").iterdir()}
    assert trained <= set(planned)
    for name in trained:
        cfg = json.loads((out / "runs" / name / "summary.json").read_text())
        assert cfg["status"] in ("completed", "diverged")


class FakeRun:
    """A run's metrics table and nothing else."""

    def __init__(self, columns: dict):
        self.metrics = pa.table({k: pa.array(v, pa.float64()) for k, v in columns.items()})

    def epochs(self, name):
        rows = self.metrics.filter(self.metrics[name].is_valid())
        return rows["epoch"].to_numpy(), rows[name].to_numpy()


def test_epochs_to_level_interpolates_in_log_loss():
    run = FakeRun({"epoch": [0, 1, 2, 3], "train_loss": [1.0, 0.1, 0.001, 0.0001]})
    assert epochs_to_level(run, 0.01) == pytest.approx(1.5)
    assert epochs_to_level(run, 0.1) == 1.0
    assert epochs_to_level(run, 1e-9) == math.inf


def test_gamma_before_uses_only_the_steps_before_the_level():
    run = FakeRun(
        {
            "epoch": [0, 0.5, 1, 1.5, 2],
            "gamma": [1.0, -1.0, 3.0, 5.0, float("nan")],
            "gamma_defined": [1, 1, 1, 1, 0],
        }
    )
    before = gamma_before(run, 1.2)
    assert before["gamma_median"] == 1.0 and before["gamma_positive_fraction"] == pytest.approx(2 / 3)
    assert before["gamma_steps"] == 3


def test_speed_helpers():
    assert kendall_tau([3, 2, 1], [30, 20, 10]) == 1.0 and kendall_tau([1, 2], [2, 1]) == -1.0
    assert SeedSpread("relu", (100.0, 110.0)).tie == pytest.approx(10 / 110)
    assert math.isnan(SeedSpread("relu", (100.0, math.inf)).tie) and math.isnan(
        SeedSpread(None, (math.nan, math.nan)).tie
    )
    assert faster_beyond(10.0, 20.0, 0.1) and not faster_beyond(19.0, 20.0, 0.1)
    assert faster_beyond(1e6, math.inf, 0.1) and faster_beyond(math.inf, 5.0, 0.1) is False
    assert faster_beyond(math.inf, math.inf, 0.1) is None and faster_beyond(1.0, 2.0, math.nan) is None
    epochs = {"relu": 10.0, "leaky-relu": 10.5, "tanh": 20.0, "sigmoid": math.inf}
    assert decisive_pairs(epochs, 0.1) == [
        ("relu", "tanh"),
        ("relu", "sigmoid"),
        ("leaky-relu", "tanh"),
        ("leaky-relu", "sigmoid"),
        ("tanh", "sigmoid"),
    ]
    assert tier_pairs((("a", "b"), ("c",))) == [("a", "c"), ("b", "c")]


# --- each claim kind on synthetic measurements: holds, fails, not applicable --------------------

SCOPE = Scope("activation", "activation function", ("relu", "tanh"), ("sigmoid",))
NOBODY = Scope("activation", "activation function", (), ("relu", "tanh"))


def test_premise_claim_of_an_ablation():
    """The premise (`experiments.premise`, tested in full in test_experiment_framework) with this
    reproduction's exception: a ResNet without BN need not converge, a VGG without BN must."""

    class Trained:
        def __init__(self, loss):
            self.status, self.final, self.summary = "completed", {"train_loss": loss, "train_error": 0.0}, {}

    premise = Premise(max_loss=0.01)
    runs = {"all": Trained(0.005), "first-in-block": Trained(0.009), "none": Trained(0.5)}
    holds, meets = premise_claim("batch-norm/premise", "bn", premise, dict(runs, none=Trained(0.001)))
    assert holds.verdict == "holds" and meets == ["all", "first-in-block", "none"]
    assert premise_claim("batch-norm/premise", "bn", premise, runs)[0].verdict == "fails"
    assert premise_claim("batch-norm/premise", "bn", premise, {})[0].verdict == "not-applicable"
    exceptions = {ab.id: ab.exceptions for ab in ablations("cpu")}
    assert exceptions["batch-norm"] == {}  # the cpu scale's VGG without BN is expected to train


def test_principle_claim():
    steps = {"relu": 100, "tanh": 100}
    holds = principle_claim(SCOPE, {"relu": 1.0, "tanh": 1.0}, {"relu": 100, "tanh": 90}, steps)
    assert holds.verdict == "holds" and "γ undefined on 10 of the 200 steps" in holds.headline
    assert holds.evidence["defined_share"] == 0.95
    one_undefined = principle_claim(
        SCOPE, {"relu": 1.0, "tanh": 1.0}, {"relu": 9999, "tanh": 10000}, {"relu": 10000, "tanh": 10000}
    )
    assert "γ undefined on 1 of the 20,000 steps" in one_undefined.headline  # not "defined on 100.0%"
    fails = principle_claim(SCOPE, {"relu": 1.0, "tanh": 0.99}, {"relu": 100, "tanh": 100}, steps)
    assert fails.verdict == "fails" and fails.evidence["nonpositive_steps"] == {"relu": 0, "tanh": 1}
    assert "99.00% of the defined steps in the worst run (tanh)" in fails.headline
    empty = principle_claim(SCOPE, {"relu": 1.0, "tanh": math.nan}, {"relu": 100, "tanh": 0}, steps)
    assert empty.verdict == "not-applicable" and "tanh" in empty.evidence["reason"]
    assert principle_claim(NOBODY, {}, {}, {}).verdict == "not-applicable"


def test_distance_claim():
    final = {"relu": 0.0, "tanh": 0.0}
    holds = distance_claim(SCOPE, {"relu": 0.0, "tanh": DIST_TOL / 2}, {"relu": 0, "tanh": 3}, final)
    assert holds.verdict == "holds"
    fails = distance_claim(SCOPE, {"relu": 0.0, "tanh": 1e-3}, {"relu": 0, "tanh": 1}, final)
    assert fails.verdict == "fails" and fails.headline == "largest increase 0.001 (tanh)"
    assert distance_claim(NOBODY, {}, {}, {}).verdict == "not-applicable"


def consistent_path(gammas, gaps, eta=0.1, excess_undefined=0.0) -> dict[str, np.ndarray]:
    """The γ columns of a path that obeys ‖θ_{k+1} − θ*‖² = ‖θ_k − θ*‖² − 2ηγ_k‖θ_0 − θ*‖²·gap_k
    (‖θ_0 − θ*‖ = 1; NaN γ: an undefined step whose distance changes by −2η·`excess_undefined`)."""
    gammas, gaps = np.asarray(gammas, float), np.asarray(gaps, float)
    drop = np.where(np.isnan(gammas), 2 * eta * excess_undefined, 2 * eta * np.nan_to_num(gammas) * gaps)
    dist_sq = 1.0 - np.concatenate([[0.0], np.cumsum(drop)[:-1]])
    excess = np.where(np.isnan(gammas), excess_undefined, gammas * gaps)
    return {
        "steps": np.arange(len(gammas)),
        "gamma": gammas,
        "excess": excess,
        "gap": gaps,
        "dist": np.sqrt(dist_sq),
        "lr": np.full(len(gammas), eta),
    }


def test_rate_claim():
    good = rate_check(**consistent_path([2.0, 1.0, 0.5, 0.5], [0.5, 0.4, 0.3, 0.2]))
    holds = rate_claim(SCOPE, {"relu": good, "tanh": good})
    assert holds.verdict == "holds" and "covering 100.0% of the steps" in holds.headline
    # a wrong η on record (10× the step taken) shrinks the bound below the measured Σ gap
    path = consistent_path([2.0, 1.0, 0.5, 0.5], [0.5, 0.4, 0.3, 0.2])
    bad = rate_check(**dict(path, lr=path["lr"] * 10))
    fails = rate_claim(SCOPE, {"relu": good, "tanh": bad})
    assert fails.verdict == "fails" and list(fails.evidence["violations"]) == ["tanh"]
    # γ ≤ 0 on most steps: the theorem speaks for too little of the path
    sparse = rate_check(**consistent_path([1.0, -1.0, -1.0, -1.0], [0.1, 0.1, 0.1, 0.1]))
    assert sparse.covered_fraction == 0.25
    na = rate_claim(SCOPE, {"relu": sparse, "tanh": sparse})
    assert na.verdict == "not-applicable" and "25.0%" in na.evidence["reason"]
    assert str(RATE_MIN_COVERAGE) in str(na.evidence["min_coverage"])
    assert rate_claim(NOBODY, {}).verdict == "not-applicable"
    # one step in 10,000 outside the principle: the headline does not round it to all of them
    nearly = rate_check(**consistent_path([1.0] * 9999 + [-1.0], [0.01] * 10000, eta=0.001))
    assert "covering >99.9% of the steps" in rate_claim(SCOPE, {"relu": nearly, "tanh": nearly}).headline


def test_gamma_vs_speed_claim():
    spread = SeedSpread("relu", (100.0, 105.0))  # a 4.8 % seed-to-seed spread
    epochs = {"relu": 100.0, "tanh": 200.0}
    holds = gamma_vs_speed_claim(SCOPE, 0.01, epochs, {"relu": 2.0, "tanh": 1.0}, spread)
    assert holds.verdict == "holds" and holds.evidence["decisive_pairs"] == [["relu", "tanh"]]
    fails = gamma_vs_speed_claim(SCOPE, 0.01, epochs, {"relu": 1.0, "tanh": 2.0}, spread)
    assert fails.verdict == "fails" and fails.evidence["discordant_pairs"] == [["relu", "tanh"]]
    tie = gamma_vs_speed_claim(
        SCOPE, 0.01, {"relu": 100.0, "tanh": 103.0}, {"relu": 1.0, "tanh": 2.0}, spread
    )
    assert tie.verdict == "not-applicable" and "seed-to-seed spread" in tie.evidence["reason"]
    no_baseline = SeedSpread("relu", (100.0, math.inf))
    assert gamma_vs_speed_claim(SCOPE, 0.01, epochs, {"relu": 2.0, "tanh": 1.0}, no_baseline).verdict == (
        "not-applicable"
    )
    one = Scope("activation", "activation function", ("relu",), ("tanh",))
    assert gamma_vs_speed_claim(one, 0.01, {"relu": 1.0}, {"relu": 1.0}, spread).verdict == "not-applicable"


def test_paper_order_claim():
    tiers = (("adam",), ("momentum",), ("sgd",))
    spread = SeedSpread("adam", (10.0, 11.0))  # 9.1 %

    def order(epochs, spread=spread):
        return paper_order_claim("optimizer", "adam > momentum > sgd", tiers, 0.01, epochs, spread)

    assert order({"adam": 10.0, "momentum": 40.0, "sgd": 90.0}).verdict == "holds"
    # a run that never reaches the level is the slowest, not a reason to give up
    slowest = order({"adam": 10.0, "momentum": 40.0, "sgd": math.inf})
    assert slowest.verdict == "holds" and slowest.evidence["never_reached"] == ["sgd"]
    assert "sgd ∞" in slowest.headline
    wrong = order({"adam": 50.0, "momentum": 40.0, "sgd": 90.0})
    assert wrong.verdict == "fails" and wrong.evidence["not_faster"] == [["adam", "momentum"]]
    within = order({"adam": 38.0, "momentum": 40.0, "sgd": 90.0})  # 5 % apart, within the seed spread
    assert within.verdict == "fails" and within.evidence["not_faster"] == [["adam", "momentum"]]
    assert order({"adam": math.inf, "momentum": 40.0, "sgd": 90.0}).verdict == "fails"
    undecided = order({"adam": 10.0, "momentum": math.inf, "sgd": math.inf})
    assert undecided.verdict == "not-applicable" and undecided.evidence["undecided"] == [["momentum", "sgd"]]
    no_baseline = order({"adam": 10.0, "momentum": 40.0, "sgd": 90.0}, SeedSpread(None, (math.nan, math.nan)))
    assert no_baseline.verdict == "not-applicable"
    one_tier = paper_order_claim("x", "s", (("a", "b"), ("c",)), 0.01, {"a": 1.0, "b": 2.0}, spread)
    assert one_tier.verdict == "not-applicable"


def test_pca_directions_claim():
    assert pca_directions_claim({"momentum": 80.0, "adam": 60.0}, {}).verdict == "holds"
    fails = pca_directions_claim({"momentum": 1.0, "adam": 60.0}, {})
    assert fails.verdict == "fails" and fails.headline == "momentum 1°, adam 60°"
    assert pca_directions_claim({"momentum": math.nan, "adam": 60.0}, {}).verdict == "not-applicable"
    assert step_angles(np.array([[1.0, 0.0]]), np.array([[-2.0, 0.0]])) == [180.0]
    untrained = pca_untrained_claim("not trained here (--only): optimizer-adam")
    assert untrained.verdict == "not-applicable" and "optimizer-adam" in untrained.evidence["reason"]


def test_every_scale_has_the_four_ablations_and_a_premise(tmp_path, monkeypatch):
    monkeypatch.setenv("SGDLAB_DATA_ROOT", str(tmp_path / "root"))
    monkeypatch.setenv("SGDLAB_DATA", str(tmp_path / "cache"))
    for scale in ("smoke", "cpu", "full"):
        plan_ = ablations(scale)
        assert [a.id for a in plan_] == list(ABLATIONS)
        assert all(len(a.variants) >= 2 for a in plan_)
        premise = SCALE_SETTINGS[scale].premise
        for ab in plan_:
            for cfg in ab.variants.values():
                assert cfg["train"]["stop_loss"] == premise.max_loss and cfg["train"]["epochs"] > 0
        # the paper's own exception applies to ResNets without BN only, not to its VGGs
        resnet = plan_[1].variants["none"]["model"]["name"].startswith("resnet")
        assert set(plan_[1].exceptions) == ({"none"} if resnet else set())
        # every ablation trains one variant again at another seed, speed only
        for ab in plan_:
            ((label, cfg),) = ab.spread.items()
            assert cfg["seed"] != ab.variants[label]["seed"] and "gamma" not in cfg["probes"]["use"]
            assert {k: v for k, v in cfg.items() if k not in ("seed", "probes", "checkpoint")} == {
                k: v for k, v in ab.variants[label].items() if k not in ("seed", "probes", "checkpoint")
            }


def test_full_scale_repeats_the_ablations_on_cifar100_when_supplied(tmp_path, monkeypatch):
    folder = tmp_path / "root" / "cifar-100-python"
    folder.mkdir(parents=True)
    for name in ("train", "test"):
        (folder / name).write_bytes(b"")  # located by name; read only when a run loads it
    monkeypatch.setenv("SGDLAB_DATA_ROOT", str(tmp_path / "root"))
    monkeypatch.setenv("SGDLAB_DATA", str(tmp_path / "cache"))
    plan_ = {a.id: a for a in ablations("full")}
    assert list(plan_) == [
        "activation",
        "batch-norm",
        "skips",
        "optimizer",
        "activation-cifar100",
        "batch-norm-cifar100",
        "skips-cifar100",
        "optimizer-cifar100",
    ]
    for ab in ("activation", "optimizer"):
        base, copy = plan_[ab], plan_[f"{ab}-cifar100"]
        assert set(copy.variants) == set(base.variants)
        for label, cfg in copy.variants.items():
            assert cfg["data"]["name"] == "cifar100"
            assert {k: v for k, v in cfg.items() if k != "data"} == {
                k: v for k, v in base.variants[label].items() if k != "data"
            }
    assert [a.id for a in ablations("cpu")] == list(ABLATIONS)
    assert np.isfinite(SCALE_SETTINGS["full"].premise.max_loss)


def test_the_speed_order_shows_equal_printed_values_as_equal():
    from sgdlab.experiments.gamma_principle.claims.speed import speed_order_text

    epochs = {"relu": 168.6, "leaky-relu": 169.2, "tanh": 239.0, "sigmoid": math.inf}
    text = speed_order_text(["relu", "leaky-relu", "tanh", "sigmoid"], epochs)
    assert text == "relu 169 ≈ leaky-relu 169 < tanh 239 < sigmoid ∞"

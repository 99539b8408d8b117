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
    POSITIVE_FRACTION,
    SPEED_TIE,
    decisive_discordant,
    epochs_to_level,
    gamma_before,
    kendall_tau,
    tiers_hold,
)
from sgdlab.experiments.gamma_principle.settings import ablations, settings

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
        assert principle.verdict == ("holds" if min(fractions) >= POSITIVE_FRACTION else "fails")
        speed = ids[f"{ab}/gamma-vs-speed"]
        if len(meets) < 2:
            assert speed.verdict == "not-applicable" and "fewer than two" in speed.evidence["reason"]
        else:
            assert speed.verdict == ("fails" if speed.evidence["discordant_pairs"] else "holds")
            assert set(speed.evidence["epochs_to_level"]) == set(meets)
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
            threshold = settings("smoke").premise.max_loss
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
    s = settings("smoke")
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


def test_ordering_helpers():
    assert kendall_tau([3, 2, 1], [30, 20, 10]) == 1.0 and kendall_tau([1, 2], [2, 1]) == -1.0
    epochs = {"relu": 10.0, "leaky-relu": 10.5, "tanh": 20.0, "sigmoid": 200.0}
    tiers = (("relu", "leaky-relu"), ("tanh",), ("sigmoid",))
    assert tiers_hold(epochs, tiers) and not tiers_hold(dict(epochs, tanh=5.0), tiers)
    gamma = {"relu": 1.0, "leaky-relu": 2.0, "tanh": 0.5, "sigmoid": 0.1}
    # relu vs leaky-relu differ by < SPEED_TIE: their γ order does not count
    assert 0.5 / 10.5 < SPEED_TIE and decisive_discordant(gamma, epochs) == []
    assert decisive_discordant(dict(gamma, sigmoid=3.0), epochs) == [
        ["relu", "sigmoid"],
        ["leaky-relu", "sigmoid"],
        ["tanh", "sigmoid"],
    ]


def test_every_scale_has_the_four_ablations_and_a_premise(tmp_path, monkeypatch):
    monkeypatch.setenv("SGDLAB_DATA_ROOT", str(tmp_path / "root"))
    monkeypatch.setenv("SGDLAB_DATA", str(tmp_path / "cache"))
    for scale in ("smoke", "cpu", "full"):
        plan_ = ablations(scale)
        assert [a.id for a in plan_] == list(ABLATIONS)
        assert all(len(a.variants) >= 2 for a in plan_)
        premise = settings(scale).premise
        for ab in plan_:
            for cfg in ab.variants.values():
                assert cfg["train"]["stop_loss"] == premise.max_loss and cfg["train"]["epochs"] > 0
        assert set(plan_[1].exceptions) == {"none"}  # the paper's own exception, ResNets only


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
    assert np.isfinite(settings("full").premise.max_loss)

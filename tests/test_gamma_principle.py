"""The gamma-principle reproduction at smoke scale: every claim decided from its evidence,
figures and tables written, and a second invocation reuses the runs."""

from __future__ import annotations

import json

import pytest

from sgdlab.experiments import reproduce
from sgdlab.experiments.gamma_principle import (POSITIVE_FRACTION, ablations, kendall_tau,
                                                tiers_hold)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("gamma")
    claims = reproduce("gamma-principle", out, "smoke", "cpu")
    return out, claims


def test_claims_are_decided_from_their_evidence(smoke):
    out, claims = smoke
    stored = json.loads((out / "claims.json").read_text())
    assert [c["id"] for c in stored] == [c.id for c in claims]
    ids = {c.id: c for c in claims}
    for ab in ("activation", "batch-norm", "skips", "optimizer"):
        for kind in ("principle", "distance", "rate", "gamma-vs-speed", "paper-order"):
            assert f"{ab}/{kind}" in ids
        principle = ids[f"{ab}/principle"]
        fractions = [v["positive_fraction"] for v in principle.evidence.values()]
        assert principle.verdict == ("holds" if min(fractions) >= POSITIVE_FRACTION else "fails")
        speed = ids[f"{ab}/gamma-vs-speed"]
        assert speed.verdict == ("holds" if speed.evidence["kendall_tau"] == 1.0 else "fails")
    assert {c["verdict"] for c in stored} <= {"holds", "fails", "not-applicable"}
    assert ids["optimizer/pca-directions"].evidence["adam"]["explained_pc1"] > 0


def test_figures_and_tables(smoke):
    out, _ = smoke
    for name in ("activation", "batch-norm", "skips", "optimizer", "pca"):
        assert (out / "figures" / f"gamma-{name}.png").stat().st_size > 10_000
    assert (out / "tables" / "pca-adam-grid.parquet").exists()
    experiment = json.loads((out / "experiment.json").read_text())
    assert experiment["scale"] == "smoke" and sum(experiment["verdicts"].values()) == 21


def test_identical_variants_are_trained_once_and_reruns_reuse(smoke):
    out, claims = smoke
    assert not (out / "runs" / "skips-all").exists()  # same config as batch-norm-all
    messages = []
    again = reproduce("gamma-principle", out, "smoke", "cpu", log=messages.append)
    assert [(c.id, c.verdict) for c in again] == [(c.id, c.verdict) for c in claims]
    trained = [m for m in messages if m.endswith(": done")]
    assert not trained and any("optimizer-adam: reusing" in m for m in messages), messages


def test_ordering_helpers():
    assert kendall_tau([3, 2, 1], [30, 20, 10]) == 1.0 and kendall_tau([1, 2], [2, 1]) == -1.0
    speed = {"relu": -2.0, "leaky-relu": -1.9, "tanh": -1.0, "sigmoid": 0.5}
    tiers = (("relu", "leaky-relu"), ("tanh",), ("sigmoid",))
    assert tiers_hold(speed, tiers) and not tiers_hold(dict(speed, tanh=-3.0), tiers)


def test_every_scale_has_the_four_ablations(tmp_path, monkeypatch):
    monkeypatch.setenv("SGDLAB_DATA_ROOT", str(tmp_path / "root"))
    monkeypatch.setenv("SGDLAB_DATA", str(tmp_path / "cache"))
    for scale in ("smoke", "cpu", "full"):
        plan = ablations(scale)
        assert [a.id for a in plan] == ["activation", "batch-norm", "skips", "optimizer"]
        assert all(len(a.variants) >= 2 for a in plan)


def test_full_scale_repeats_the_ablations_on_cifar100_when_supplied(tmp_path, monkeypatch):
    folder = tmp_path / "root" / "cifar-100-python"
    folder.mkdir(parents=True)
    for name in ("train", "test"):
        (folder / name).write_bytes(b"")  # located by name; read only when a run loads it
    monkeypatch.setenv("SGDLAB_DATA_ROOT", str(tmp_path / "root"))
    monkeypatch.setenv("SGDLAB_DATA", str(tmp_path / "cache"))
    plan = {a.id: a for a in ablations("full")}
    assert list(plan) == ["activation", "batch-norm", "skips", "optimizer", "activation-cifar100",
                          "batch-norm-cifar100", "skips-cifar100", "optimizer-cifar100"]
    for ab in ("activation", "optimizer"):
        base, copy = plan[ab], plan[f"{ab}-cifar100"]
        assert set(copy.variants) == set(base.variants)
        for label, cfg in copy.variants.items():
            assert cfg["data"]["name"] == "cifar100"
            assert {k: v for k, v in cfg.items() if k != "data"} == \
                {k: v for k, v in base.variants[label].items() if k != "data"}
    assert [a.id for a in ablations("cpu")] == ["activation", "batch-norm", "skips", "optimizer"]

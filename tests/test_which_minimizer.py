"""The which-minimizer reproduction at smoke scale, end to end: every claim is reported and
follows from the stored tables, the runs are what `--plan` lists, the step sizes are what the
settings say, every setting starts from the same θ_0 draws, and a second invocation reuses the
runs. The claims themselves are tested on synthetic numbers in test_which_minimizer_claims.py."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from sgdlab.experiments import reproduce
from sgdlab.experiments.which_minimizer import plan
from sgdlab.experiments.which_minimizer.configs import specs
from sgdlab.experiments.which_minimizer.settings import SCALE_SETTINGS
from sgdlab.experiments.which_minimizer.steps import monotone
from sgdlab.ntk import empirical_ntk, gd_learning_rate
from sgdlab.store import RunDir, load_run


@pytest.fixture(scope="module")
def smoke(smoke_reproduction):
    return smoke_reproduction("which-minimizer")


def test_every_claim_is_reported_and_follows_from_the_stored_tables(smoke):
    """Each claim kind's verdict logic is tested on synthetic numbers in
    test_which_minimizer_claims.py; here: every group is there with its premise, and the claims
    recomputed from tables/ alone are the reported ones."""
    out, claims = smoke
    stored = json.loads((out / "claims.json").read_text())
    assert [c["id"] for c in stored] == [c.id for c in claims]
    by = {c.id: c for c in claims}
    groups = (
        "sigma/digits/L1w128",
        "adaptive/digits/L1w128",
        "batch/digits/L1w128",
        "example1/digits/L1w256",
        "later/digits/L1w8",
    )
    for g in groups:
        assert f"{g}/premise" in by
    for kind in ("closed-form", "init-term", "test-loss-rises", "mitigation"):
        assert f"sigma/digits/L1w128/{kind}" in by
    for c in claims:
        assert c.verdict in ("holds", "fails", "not-applicable") and c.headline or c.evidence.get("reason"), (
            c.id
        )
        assert "Nonnenmacher" in c.source
        if c.verdict == "not-applicable":
            assert c.evidence["reason"]
    assert not any(c.id.endswith("kernel-part") for c in claims)  # σ-invariant by construction

    from sgdlab.experiments.base import Lab
    from sgdlab.experiments.which_minimizer import claims as C
    from sgdlab.experiments.which_minimizer.measure import Table, load

    s = SCALE_SETTINGS["smoke"]
    t = Table(load(Lab(out, "smoke")), s.stop_loss)
    again = (
        C.sigma_claims(t, s, "digits", s.sigma_archs[0])
        + C.adaptive_claims(t, s, "digits", s.adaptive_archs[0])
        + C.batch_claims(t, s, "digits", s.batch_arch)
        + C.example1_claims(t, s, "digits")
        + C.later_claims(t, s, "digits")
    )
    assert {c.id: c.verdict for c in again} == {c.id: c.verdict for c in claims}


def test_the_validation_points_are_neither_trained_nor_tested_on(smoke):
    out, _ = smoke
    from sgdlab import runner

    s = SCALE_SETTINGS["smoke"]
    data = runner.prepare(specs("smoke")["sigma-digits-L1w128-s1-i0"].config).data
    assert len(data.test) == s.n_test + s.n_val
    rows = pq.read_table(out / "tables" / "runs.parquet").to_pydict()
    i = rows["name"].index("sigma-digits-L1w128-s1-i0")
    assert len(rows["f_test"][i]) == s.n_test and len(rows["f_val"][i]) == s.n_val
    train = {tuple(x.reshape(-1).tolist()) for x in data.train.x}
    assert not train & {tuple(x.reshape(-1).tolist()) for x in data.test.x}


def test_figures_and_tables(smoke):
    out, _ = smoke
    for name in ("sigma", "mitigation", "adaptive", "batch", "example1", "later"):
        assert (out / "figures" / f"{name}-digits.png").stat().st_size > 20_000
        assert (out / "figures" / f"{name}-digits.svg").is_file()  # the Lab saves both
    runs = pq.read_table(out / "tables" / "runs.parquet")
    assert runs.num_rows == len(plan("smoke").runs)
    search = pq.read_table(out / "tables" / "lr_search.parquet").to_pydict()
    assert any(search["chosen"])


def test_the_runs_are_the_plan_and_the_steps_are_as_specified(smoke):
    out, _ = smoke
    planned = plan("smoke").runs
    trained = {p.name for p in (out / "runs").iterdir()}
    assert trained <= set(planned) and len(trained) < len(planned)  # duplicates trained once
    s = SCALE_SETTINGS["smoke"]
    sp = specs("smoke")
    # GD: 2N/(λ_min + λ_max) of Θ̂ at the run's own θ_0; SGD: the same per-sample step
    gd = load_run(out / "runs" / "sigma-digits-L1w128-s8-i1")
    from sgdlab import runner

    parts = runner.prepare(sp["sigma-digits-L1w128-s8-i1"].config)
    expected = gd_learning_rate(empirical_ntk(parts.model, parts.data.train.x))
    assert gd.config.optim.lr == pytest.approx(expected, rel=1e-12)
    sgd = sp["batch-digits-L1w128-sgd-b4-reshuffle-i1"]
    full = sp["sigma-digits-L1w128-s1-i1"]
    assert sgd.lr == pytest.approx(full.lr * 4 / s.n_train)
    # adaptive: the chosen step was monotone, twice it was not
    search = pq.read_table(out / "tables" / "lr_search.parquet").to_pydict()
    rows = [
        i
        for i, (a, o) in enumerate(zip(search["arch"], search["optimizer"], strict=True))
        if a == "L1w128" and o == "adagrad"
    ]
    chosen = [search["lr"][i] for i in rows if search["chosen"][i]]
    assert len(chosen) == 1 and sp["adaptive-digits-L1w128-adagrad-i0"].lr == chosen[0]
    tried = {search["lr"][i]: search["monotone"][i] for i in rows}
    assert tried[chosen[0]] and tried.get(2 * chosen[0], False) is False
    # Example 1: AdaGrad's first update η·sign(g) moves f(x_1) by η‖φ_1‖₁ = adagrad_step × |r_0|
    one = sp["example1-digits-L1w256-adagrad-i1"]
    parts = runner.prepare(one.config)
    model, x, y = parts.model, parts.data.train.x, parts.data.train.y
    assert len(x) == 1
    out0 = model(x).reshape(())
    phi = torch.autograd.grad(out0, list(model.parameters()))
    l1 = sum(float(g.abs().sum()) for g in phi)
    assert one.lr * l1 == pytest.approx(
        s.example1.adagrad_step * abs(float(y[0]) - float(out0.detach())), rel=1e-5
    )


def test_the_procedures_trial_below_the_grid_is_capped_at_its_budget(smoke):
    from sgdlab.experiments.which_minimizer.configs import trial_specs

    out, _ = smoke
    s = SCALE_SETTINGS["smoke"]
    start = load_run(out / "runs" / "sigma-digits-L1w128-s8-i1")
    trial = load_run(out / "runs" / "trial-digits-L1w128-s0.5-i1")
    assert trial.config.model.sigma == 0.5 and trial.config.train.max_steps == s.mitigation.budget(
        int(start.summary["steps"])
    )
    planned = trial_specs("smoke")["trial-digits-L1w128-s0.5-i1"]  # before training: the step cap
    assert (
        planned.config["train"]["max_steps"] == s.max_steps
        and "trial-digits-L1w128-s0.5-i1" in plan("smoke").runs
    )


def test_every_setting_starts_from_the_same_draws(smoke):
    out, _ = smoke
    a = RunDir(out / "runs" / "sigma-digits-L1w128-s1-i0").load("init.pt")
    b = RunDir(out / "runs" / "sigma-digits-L1w128-s8-i0").load("init.pt")
    c = RunDir(out / "runs" / "adaptive-digits-L1w128-adam-i0").load("init.pt")
    other = RunDir(out / "runs" / "sigma-digits-L1w128-s1-i1").load("init.pt")
    assert all(torch.equal(a[k], b[k]) and torch.equal(a[k], c[k]) for k in a)
    assert not torch.equal(a["1.weight"], other["1.weight"])


def test_a_second_invocation_reuses_everything(smoke):
    """As in a new process: step sizes and searches are recomputed (deterministically), so
    every config is the same and every run is reused."""
    from sgdlab.experiments.which_minimizer import configs, steps

    for cached in (configs._specs, steps._search, steps._gd_lr, steps._sign_step):
        cached.cache_clear()
    out, claims = smoke
    messages = []
    again = reproduce("which-minimizer", out, "smoke", "cpu", log=messages.append)
    assert [(c.id, c.verdict, c.headline) for c in again] == [(c.id, c.verdict, c.headline) for c in claims]
    assert not [m for m in messages if m.endswith(": done") or m.endswith(": training")]


def test_monotone_helper():
    assert monotone(np.array([3.0, 2.0, 2.0, 1.0]), 0.0)
    assert not monotone(np.array([3.0, 2.0, 2.5]), 1e-6) and not monotone(np.array([1.0, np.nan]), 0.1)

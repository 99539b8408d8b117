"""qualitative-sgd (Giselsson's lecture): the toy simulations against their closed forms, the
claim logic, and the smoke-scale reproduction end to end (claims decided from their evidence,
tables, figures, --only)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sgdlab.experiments import experiments, reproduce
from sgdlab.experiments.qualitative_sgd import plan, toy_parts
from sgdlab.experiments.qualitative_sgd.toys import (
    Escape,
    NoiseBall,
    escape_summary,
    pair_amplitude,
    simulate_escape,
    simulate_noise_ball,
    simulate_pair,
    subset_masks,
)


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
    assert toy_parts.stays_below(np.array([1.0, 0.0, 2.0, 0.0, 0.0]), 0.5) == 3
    assert toy_parts.stays_below(np.array([1.0, 0.0, 2.0]), 0.5) is None


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
    assert all(c.verdict in ("holds", "fails") for c in claims), [
        c.id for c in claims if c.verdict not in ("holds", "fails")
    ]
    assert all(c.headline and c.meaning and "Giselsson" in c.source for c in claims)
    # verdicts follow from the recorded evidence
    nb = by_id["noise-ball/sgd-stationary"].evidence
    assert (by_id["noise-ball/sgd-stationary"].verdict == "holds") == (
        abs(nb["measured"] - nb["target"]) <= 4 * nb["standard_error"]
    )
    esc = by_id["escaping/gd-never"]
    assert esc.verdict == "holds" and esc.evidence["escapes"] == 0
    und = by_id["rules/undamped-diverges"].evidence
    assert (by_id["rules/undamped-diverges"].verdict == "holds") == (und["status"] == "diverged")
    amp = by_id["pair/amplitude"].evidence
    assert amp["amplitude"]["0.83"] == pytest.approx(0.07 * 0.83 / 1.93, rel=1e-6)
    ls = by_id["ls/individual-gradients-at-solution"].evidence
    assert ls["max_norm_over"] < 1e-6 < ls["max_norm_under"]
    for name in ("noise-ball", "pair", "least-squares", "nets", "escaping", "agreement"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 10_000
    for table in ("noise_ball", "escaping_summary", "step_size_rules", "agreement_batch"):
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

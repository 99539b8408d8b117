"""edge-of-stability (Cohen, Kaur, Li, Kolter & Talwalkar 2021): each claim on made-up
trajectories where it holds, where it fails and where its premise is missing; the accuracy
horizon; the settings' consistency at every scale; and the smoke reproduction end to end
(claims follow their evidence, the runs are the plan, tables and figures, reuse)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sgdlab.experiments import reproduce
from sgdlab.experiments.edge_of_stability import claims as C
from sgdlab.experiments.edge_of_stability import plan
from sgdlab.experiments.edge_of_stability.configs import configs, flow_name, gd_name
from sgdlab.experiments.edge_of_stability.measure import LAMBDA, LOSS, goal_step, up_to
from sgdlab.experiments.edge_of_stability.settings import SCALE_SETTINGS, Drop, Settings

ETA = 2 / 100  # threshold 2/η = 100
STEPS = np.arange(0, 1001, 20)


def edge_of_stability_curve(plateau: float = 1.05, onset: int = 400, start: float = 60.0) -> np.ndarray:
    """λ_max rising linearly from `start` to 0.89 × 2/η one measurement before `onset`, then
    hovering at plateau·2/η with a ±3 % wobble (the self-stabilization cycle)."""
    rise = start + (89 - start) * STEPS / (onset - 20)
    wobble = plateau * 100 * (1 + 0.03 * np.sin(STEPS / 7.0))
    return np.where(STEPS < onset, rise, wobble)


def sharp(values: np.ndarray, eta: float = ETA, steps: np.ndarray = STEPS) -> C.Sharpness:
    return C.Sharpness(eta, steps, np.asarray(values, dtype=np.float64))


# ---------------------------------------------------------------------------------------
# progressive sharpening


def test_sharpening_holds_on_a_rise_below_the_threshold():
    c = C.sharpening_claim("s", sharp(edge_of_stability_curve()))
    assert c.verdict == "holds"
    assert c.evidence["onset_step"] == 400 and c.evidence["window_steps"] == [0, 380]
    assert c.evidence["slope_per_step"] == pytest.approx((89 - 60) / 380, rel=1e-9)


def test_sharpening_fails_on_flat_or_falling_sharpness():
    flat = 60 + 0.5 * np.sin(STEPS)  # scatter, no trend
    assert C.sharpening_claim("s", sharp(flat)).verdict == "fails"
    assert C.sharpening_claim("s", sharp(80 - 0.01 * STEPS)).verdict == "fails"


def test_sharpening_evidence_shows_an_early_dip_below_the_start():
    values = edge_of_stability_curve(start=75.0)
    values[0] = 88.0  # λ_max(θ_0) just below the band, then a fall to 75 and a slow rise back
    c = C.sharpening_claim("s", sharp(values))
    assert c.evidence["sharpness_lowest"] == pytest.approx(75 + 14 * 20 / 380)
    assert c.evidence["sharpness_lowest_step"] == 20 and "lowest" in c.headline
    assert c.verdict == "holds"  # one dipped point among 20 rising ones: the trend is still significant
    short = C.sharpening_claim("s", sharp(values[:6], steps=STEPS[:6]))  # dip and 4 points of rise
    assert short.verdict == "fails" and short.evidence["sharpness_first"] > short.evidence["sharpness_last"]


def test_sharpening_is_not_applicable_when_it_starts_at_the_band():
    c = C.sharpening_claim("s", sharp(np.full(len(STEPS), 95.0)))
    assert c.verdict == "not-applicable" and "starts at the band" in c.evidence["reason"]


# ---------------------------------------------------------------------------------------
# the edge: reaching the band and staying in it


def test_edge_holds_when_the_sharpness_hovers_just_above_2_over_eta():
    c = C.edge_claim("e", sharp(edge_of_stability_curve(1.05)), goal_step=1000)
    assert c.verdict == "holds"
    assert c.evidence["onset_step"] == 400 and c.evidence["fraction_in_band"] == 1.0
    assert c.evidence["plateau_ratio_median"] == pytest.approx(1.05, abs=0.01)
    assert c.evidence["accuracy_goal_step"] == 1000 and "onset at step 400" in c.headline


def test_edge_fails_when_the_sharpness_never_gets_there():
    c = C.edge_claim("e", sharp(60 + 0.02 * STEPS))  # up to 80 = 0.8 × 2/η
    assert c.verdict == "fails" and c.evidence["onset_step"] is None
    assert c.evidence["max_ratio"] == pytest.approx(0.8)


def test_edge_fails_when_the_sharpness_rises_past_the_band_or_falls_away():
    assert C.edge_claim("e", sharp(edge_of_stability_curve(1.5))).verdict == "fails"  # far above 2/η
    values = edge_of_stability_curve(1.0)
    values[STEPS > 500] = 50.0  # drops well below the threshold and stays there
    c = C.edge_claim("e", sharp(values))
    assert c.verdict == "fails" and c.evidence["fraction_in_band"] < C.MOST


def test_edge_fails_when_the_run_diverged():
    c = C.edge_claim("e", sharp(edge_of_stability_curve()), diverged_at=990)
    assert c.verdict == "fails" and "diverged at step 990" in c.headline


def test_edge_is_not_applicable_when_the_onset_is_the_last_measurement():
    values = 60 + 0.02 * STEPS
    values[-1] = 95.0  # reaches the band only at the last measurement
    assert C.edge_claim("e", sharp(values)).verdict == "not-applicable"


def test_the_band_reads_the_papers_at_or_just_above():
    assert C.BAND_LOW < 1 < C.BAND_HIGH and C.MOST == 0.5
    ratios = sharp(np.array([80.0, 89.9, 90.0, 120.0, 120.1])).ratio
    assert list((ratios >= C.BAND_LOW) & (ratios <= C.BAND_HIGH)) == [False, False, True, True, False]


# ---------------------------------------------------------------------------------------
# the loss after the onset


def oscillating_loss(steps: np.ndarray, onset: int) -> np.ndarray:
    """Smoothly falling before `onset`; after it falling on average with period-4 spikes."""
    base = 1.0 / (1 + steps / 200)
    spikes = np.where((steps > onset) & (steps % 4 == 0), 0.05, 0.0)
    return base + spikes


def test_loss_claim_holds_on_a_non_monotone_falling_loss():
    k = np.arange(1001)
    c = C.loss_claim("l", k, oscillating_loss(k, 400), 400)
    assert c.verdict == "holds"
    assert c.evidence["rising_steps_after_onset"] > 100 and c.evidence["rising_steps_before_onset"] == 0
    assert c.evidence["loss_at_end"] < c.evidence["loss_at_onset"]


def test_loss_claim_fails_on_a_monotone_loss_and_on_one_that_ends_higher():
    k = np.arange(1001)
    assert C.loss_claim("l", k, 1.0 / (1 + k / 200), 400).verdict == "fails"
    rising = oscillating_loss(k, 400) + np.where(k > 400, (k - 400) / 200, 0.0)
    c = C.loss_claim("l", k, rising, 400)
    assert c.verdict == "fails" and c.evidence["loss_at_end"] > c.evidence["loss_at_onset"]


def test_loss_rises_below_the_round_off_tolerance_do_not_count():
    k = np.arange(101)
    loss = 1.0 - k * 1e-3
    loss[60] = loss[59] * (1 + 0.5 * C.RISE_TOL)  # a rise at float32 round-off
    assert C.loss_claim("l", k, loss, 50).verdict == "fails"
    loss[60] = loss[59] * (1 + 10 * C.RISE_TOL)
    assert C.loss_claim("l", k, loss, 50).verdict == "holds"


def test_loss_claim_is_not_applicable_without_an_onset():
    k = np.arange(11)
    assert C.loss_claim("l", k, 1.0 / (1 + k), None).verdict == "not-applicable"


# ---------------------------------------------------------------------------------------
# the step-size cut and gradient flow


def continuation(end_ratio: float, new_eta: float = 2 / 150) -> C.Sharpness:
    """λ_max after the cut at step 500, rising from 105 to end_ratio·2/η'."""
    steps = np.arange(500, 901, 20)
    return sharp(np.linspace(105, end_ratio * 2 / new_eta, len(steps)), new_eta, steps)


def test_cut_claim_holds_when_the_sharpness_rises_to_the_new_threshold():
    c = C.cut_claim("d", sharp(edge_of_stability_curve()), 500, continuation(1.0))
    assert c.verdict == "holds" and c.evidence["threshold_after"] == pytest.approx(150)
    # λ_max climbs from 105 by 2.25 per measurement (every 20 steps) and first reaches 0.9 × 150 = 135
    # at the 14th measurement after the cut's own: 280 steps after the cut, at step 780
    assert c.evidence["steps_to_new_band"] == 280 and "at step 780, 280 steps after the cut" in c.headline


def test_cut_claim_fails_when_the_sharpness_stays_at_the_old_threshold():
    c = C.cut_claim("d", sharp(edge_of_stability_curve()), 500, continuation(0.75))
    assert c.verdict == "fails" and c.evidence["max_ratio_after"] == pytest.approx(0.75)
    assert "within 400 steps after the cut" in c.headline


def test_cut_claim_is_not_applicable_when_the_run_was_not_at_the_edge():
    c = C.cut_claim("d", sharp(edge_of_stability_curve(onset=800)), 500, continuation(1.0))
    assert c.verdict == "not-applicable" and "not at the edge" in c.evidence["reason"]


def flow_run(rate: float, eta_f: float = 2 / 400) -> C.Sharpness:
    """Small-step GD to time 20: λ_max = 60 + rate·t."""
    steps = np.arange(0, 4001, 100)
    return sharp(60 + rate * eta_f * steps, eta_f, steps)


def test_flow_claim_holds_when_the_flow_sharpens_past_the_band():
    c = C.flow_claim("f", sharp(edge_of_stability_curve()), flow_run(5.0))  # 160 at t = 20
    assert c.verdict == "holds" and c.evidence["time_horizon"] == pytest.approx(20)
    assert c.evidence["time_past_band"] == pytest.approx(12.5)  # 60 + 5t > 120 strictly; t on a 0.5 grid


def test_flow_claim_fails_when_the_flow_stops_sharpening_below_the_band():
    c = C.flow_claim("f", sharp(edge_of_stability_curve()), flow_run(2.0))  # 100 at t = 20
    assert c.verdict == "fails" and c.evidence["flow_max_ratio_to_gd_threshold"] == pytest.approx(1.0)


def test_flow_claim_is_not_applicable_when_the_small_step_run_reached_its_own_edge():
    c = C.flow_claim("f", sharp(edge_of_stability_curve()), flow_run(5.0, eta_f=2 / 150))
    assert c.verdict == "not-applicable" and "its own edge" in c.evidence["reason"]


def test_flow_claim_compares_at_equal_time_up_to_the_shorter_horizon():
    short_gd = sharp(edge_of_stability_curve()[:11], steps=STEPS[:11])  # t ≤ 4
    c = C.flow_claim("f", short_gd, flow_run(5.0))  # by t = 4 the flow is at 80 < 120
    assert c.verdict == "fails" and c.evidence["time_horizon"] == pytest.approx(4.0)


# ---------------------------------------------------------------------------------------
# the horizon: the paper stops at 99 % training accuracy


def test_trajectories_stop_where_the_training_accuracy_reaches_the_goal():
    k = np.arange(0, 101)
    error = np.maximum(0.5 - k / 100, 0.0)  # 99 % accuracy from step 49 on
    every = k[::10]
    series = {
        LOSS: (k, 1.0 / (1 + k)),
        LAMBDA: (every, np.append(np.arange(1.0, 10.0), [np.nan, 11.0])),
        "train_error": (every, error[::10]),
    }
    assert goal_step(every, error[::10], 0.99) == 50 and goal_step(every, error[::10], None) is None
    t = up_to("r", 0.1, series, 0.99)
    assert t.goal_step == 50 and t.loss_steps[-1] == 50 and list(t.sharpness.steps) == [0, 10, 20, 30, 40, 50]
    whole = up_to("r", 0.1, series, None)
    assert whole.loss_steps[-1] == 100 and 90 not in whole.sharpness.steps  # NaN left out


# ---------------------------------------------------------------------------------------
# settings


@pytest.mark.parametrize("scale", sorted(SCALE_SETTINGS))
def test_every_scale_has_the_papers_parts(scale):
    s = SCALE_SETTINGS[scale]
    flow_study, cut_study = s.study(s.flow.study), s.study(s.drop.study)
    assert 2 / s.flow.flow_threshold < min(2 / x for x in flow_study.thresholds)  # η_f below every η
    assert s.drop.new_threshold > s.drop.threshold  # the cut lowers η
    names = configs(s)
    assert flow_name(s.flow) in names and gd_name(cut_study, s.drop.threshold) in names
    assert names[gd_name(cut_study, s.drop.threshold)]["checkpoint"]["iterates"] == f"every:{s.drop.at}"
    for raw in names.values():
        assert raw["optim"]["name"] == "gd" and raw["train"]["batch_size"] == s.n_train
        assert raw["probes"]["hessian"]["subset"] == s.n_train  # λ_max of the whole training set
    if scale != "smoke":
        keys = {(st.net.key, st.loss) for st in s.studies}
        assert {("fc-tanh", "mse"), ("fc-relu", "mse"), ("fc-tanh", "ce")} <= keys
        assert any(st.net.model["name"] == "lenet" for st in s.studies)


def test_settings_reject_a_cut_outside_its_run():
    s = SCALE_SETTINGS["smoke"]
    with pytest.raises(ValueError, match="not inside"):
        Settings(s.n_train, s.studies, Drop(s.drop.study, s.drop.threshold, 10_000, 40.0, 10, 10), s.flow)
    with pytest.raises(ValueError, match="no run at"):
        Settings(s.n_train, s.studies, Drop(s.drop.study, 7.0, 10, 40.0, 10, 10), s.flow)


# ---------------------------------------------------------------------------------------
# the smoke reproduction end to end


@pytest.fixture(scope="module")
def smoke(smoke_reproduction):
    return smoke_reproduction("edge-of-stability")


def test_smoke_claims_follow_their_evidence(smoke):
    out, claims = smoke
    stored = json.loads((out / "claims.json").read_text())
    assert [c["id"] for c in stored] == [c.id for c in claims]
    kinds = [c.id.rsplit("/", 1)[1].split("-")[0] for c in claims]
    assert kinds.count("sharpening") == kinds.count("edge") == kinds.count("loss") == 2
    assert kinds.count("cut") == kinds.count("flow") == 1
    for c, kind in zip(claims, kinds, strict=True):
        e = c.evidence
        assert "Cohen" in c.source and c.headline, c.id
        if c.verdict == "not-applicable":
            assert e["reason"]
        elif kind == "sharpening":
            assert (c.verdict == "holds") == (e["slope_per_step"] > C.SIGNIFICANCE * e["slope_se"])
        elif kind == "edge":
            ok = e["onset_step"] is not None and e.get("fraction_in_band", 0) > C.MOST
            assert (c.verdict == "holds") == (ok and e["diverged_at"] is None)
        elif kind == "loss":
            ok = e["rising_steps_after_onset"] > 0 and e["loss_at_end"] < e["loss_at_onset"]
            assert (c.verdict == "holds") == ok
        elif kind == "cut":
            assert (c.verdict == "holds") == (e["max_ratio_after"] >= C.BAND_LOW)
        elif kind == "flow":
            assert (c.verdict == "holds") == (e["flow_max_ratio_to_gd_threshold"] > C.BAND_HIGH)


def test_smoke_runs_are_the_plan_and_tables_and_figures_are_written(smoke):
    out, claims = smoke
    planned = plan("smoke")
    assert sorted(p.name for p in (out / "runs").iterdir()) == sorted(planned.runs)
    assert set(planned.simulations) == {"cut"}
    for name in ("gd-fc-tanh-mse", "cut", "flow"):
        for suffix in (".png", ".svg"):
            assert (out / "figures" / f"{name}{suffix}").stat().st_size > 5_000
    import pyarrow.parquet as pq

    edge = pq.read_table(out / "tables" / "edge.parquet").to_pydict()
    by_id = {c.id: c for c in claims}
    for run, threshold, onset in zip(edge["run"], edge["threshold"], edge["onset_step"], strict=True):
        claim = by_id[f"fc-tanh-mse/2over{threshold:g}/edge"]
        assert run.endswith(f"2over{threshold:g}")
        assert (claim.evidence["onset_step"] is None) == np.isnan(onset)
    cut = pq.read_table(out / "tables" / "cut.parquet").to_pydict()
    assert (
        set(cut["kind"]) == {LOSS, LAMBDA, "train_error"}
        and min(cut["step"]) == SCALE_SETTINGS["smoke"].drop.at
    )


def test_the_plan_times_the_cut():
    assert plan("smoke").simulations["cut"].estimate() > 0


def test_smoke_rerun_reuses_the_runs_and_the_cut(smoke):
    out, claims = smoke
    messages: list[str] = []
    again = reproduce("edge-of-stability", out, "smoke", "cpu", log=messages.append)
    assert not any(m.startswith("cut: continuing") for m in messages)
    assert not any("training" in m for m in messages), messages
    assert [(c.id, c.verdict, c.headline) for c in again] == [(c.id, c.verdict, c.headline) for c in claims]

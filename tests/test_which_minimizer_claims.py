"""Every claim of which-minimizer on synthetic measurements (milliseconds, no training): one
case where it holds, one where it fails, and one where it is not applicable when it has a
premise. The numbers are built from the law each claim tests, so a case breaks when a claim
stops testing what it says."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sgdlab.experiments.which_minimizer import claims as C
from sgdlab.experiments.which_minimizer import measure as W
from sgdlab.experiments.which_minimizer.claims import premise
from sgdlab.experiments.which_minimizer.measure import Table
from sgdlab.experiments.which_minimizer.stats import FiniteWidth, Stat, paired
from sgdlab.tune_init import Procedure

INITS = 8
LAZY = 0.1
SIGMAS = np.array([1.0, 2.0, 4.0, 8.0])


def noise(scale: float, *shape: int, seed: int = 0) -> np.ndarray:
    return scale * np.random.default_rng(seed).standard_normal(shape)


def sigma_runs(**change) -> W.SigmaRuns:
    """One hidden layer (L + 1 = 2): init term 0.02σ², finite-width gap 0.01, the kernel
    interpolant's test loss 0.05 plus the init term's ½I², validation loss alike."""
    init = 0.02 * SIGMAS[:, None] ** 2 * (1 + noise(0.05, len(SIGMAS), INITS))
    loss = 0.05 + noise(0.003, 1, INITS, seed=1) + 0.5 * init**2
    m = W.SigmaRuns(
        arch="L1w64",
        depth=1,
        sigmas=SIGMAS,
        seeds=np.arange(INITS),
        test_loss=loss,
        closed_form_loss=loss + noise(0.0005, len(SIGMAS), INITS, seed=2),
        test_error=np.full_like(loss, 0.02),
        val_loss=loss + noise(0.0005, len(SIGMAS), INITS, seed=3),
        init_trained=init + 0.002,
        init_closed=init,
        gap=0.01 + noise(0.001, len(SIGMAS), INITS, seed=4),
        steps=np.full_like(loss, 500.0),
        kernel_change=np.full_like(loss, 0.02),
    )
    return dataclasses.replace(m, **change)


def baseline(m: W.SigmaRuns) -> FiniteWidth:
    return W.finite_width(m, 1.0)


# ---------------------------------------------------------------------------------------
# experiment 1


def test_closed_form_holds_within_the_seed_noise_and_fails_beyond_it():
    m = sigma_runs()
    claim = C.closed_form_claim("g", m, LAZY)
    assert claim.verdict == "holds" and claim.headline.startswith("every σ")
    off = m.closed_form_loss.copy()
    off[-1] += 0.05  # the largest σ: off by far more than 2 SE of the trained losses
    claim = C.closed_form_claim("g", dataclasses.replace(m, closed_form_loss=off), LAZY)
    assert claim.verdict == "fails"
    assert claim.evidence["per_sigma"]["8"]["difference"] == pytest.approx(0.05, abs=0.002)


def test_closed_form_covers_only_the_lazy_sigmas():
    m = sigma_runs()
    off, moved = m.closed_form_loss.copy(), m.kernel_change.copy()
    off[0] += 0.05
    moved[0] = 0.3  # σ = 1: the kernel moved 30%, outside Thm 3.1's regime
    claim = C.closed_form_claim("g", dataclasses.replace(m, closed_form_loss=off, kernel_change=moved), LAZY)
    assert claim.verdict == "holds" and claim.evidence["lazy_sigmas"] == ["2", "4", "8"]
    assert claim.headline.startswith("3 of 4 σ")


def test_closed_form_needs_two_inits_at_two_lazy_sigmas():
    m = sigma_runs()
    one = m.test_loss.copy()
    one[:, 1:] = np.nan
    assert C.closed_form_claim("g", dataclasses.replace(m, test_loss=one), LAZY).verdict == "not-applicable"
    moved = dataclasses.replace(m, kernel_change=np.full_like(m.kernel_change, 0.5))
    assert C.closed_form_claim("g", moved, LAZY).verdict == "not-applicable"


def test_init_term_holds_for_the_power_law_and_fails_for_another():
    m = sigma_runs()
    claim = C.init_term_claim("g", m, baseline(m))
    assert claim.verdict == "holds" and claim.evidence["slope_trained"] == pytest.approx(2, abs=0.05)
    assert claim.evidence["finite_width"]["gap"]["mean"] == pytest.approx(0.01, abs=0.002)
    linear = 0.08 * SIGMAS[:, None] * np.ones((1, INITS))  # slope 1, not L + 1 = 2
    claim = C.init_term_claim("g", dataclasses.replace(m, init_trained=linear), baseline(m))
    assert claim.verdict == "fails" and claim.evidence["slope_trained"] == pytest.approx(1, abs=0.01)


def test_init_term_is_not_applicable_below_the_finite_width_gap():
    m = sigma_runs()
    big_gap = dataclasses.replace(m, gap=np.full_like(m.gap, 1.0))
    assert C.init_term_claim("g", big_gap, baseline(big_gap)).verdict == "not-applicable"


def test_init_term_tolerance_shrinks_with_the_gap():
    m = sigma_runs()
    wide = C.init_term_claim("g", m, baseline(m)).evidence["tolerance"]
    narrow = dataclasses.replace(m, gap=m.gap / 10)
    assert C.init_term_claim("g", narrow, baseline(narrow)).evidence["tolerance"] < wide / 2


def test_test_loss_rises_holds_when_the_largest_sigma_is_worse_and_fails_when_flat():
    m = sigma_runs()
    assert C.test_loss_rises_claim("g", m).verdict == "holds"
    flat = np.tile(m.test_loss[:1], (len(SIGMAS), 1)) + noise(0.003, len(SIGMAS), INITS, seed=5)
    assert C.test_loss_rises_claim("g", dataclasses.replace(m, test_loss=flat)).verdict == "fails"


def plateau(m: W.SigmaRuns) -> W.SigmaRuns:
    """The grid extended below the best σ: at σ = 0.5 the loss no longer falls."""
    sigmas = np.concatenate([[0.5], m.sigmas])

    def down(a: np.ndarray) -> np.ndarray:
        return np.concatenate([a[:1], a])

    return dataclasses.replace(
        m,
        sigmas=sigmas,
        **{
            f.name: down(getattr(m, f.name))
            for f in dataclasses.fields(m)
            if f.name not in ("arch", "depth", "sigmas", "seeds", "below")
        },
    )


RULE = Procedure(factor=0.5)


def test_mitigation_holds_when_the_procedure_stops_near_the_best_sigma():
    m = plateau(sigma_runs())
    claim = C.mitigation_claim("g", m, RULE, 8.0, 1e-5)
    assert claim.verdict == "holds", claim.evidence
    assert set(claim.evidence["chosen_sigma"].values()) <= {0.5, 1.0, 2.0}
    assert all("improved by less" in r or "stopped" in r for r in claim.evidence["stopped_because"].values())


def test_mitigation_fails_when_the_validation_loss_misleads():
    m = plateau(sigma_runs())
    # validation says smaller is better down to σ = 1, but the test loss rises below σ = 4
    val = 0.01 * m.sigmas[:, None] * np.ones((1, INITS))
    val[0] = val[1]
    test = m.test_loss.copy()
    test[:3] = test[3] + 0.2
    claim = C.mitigation_claim("g", dataclasses.replace(m, val_loss=val, test_loss=test), RULE, 8.0, 1e-5)
    assert claim.verdict == "fails" and set(claim.evidence["chosen_sigma"].values()) == {1.0}
    assert claim.evidence["excess_over_best_sigma"]["mean"] == pytest.approx(0.2)


def test_mitigation_is_not_applicable_when_the_grid_ends_first():
    m = sigma_runs()
    val = 0.01 * m.sigmas[:, None] * np.ones((1, INITS))  # still falling by half at the last σ
    claim = C.mitigation_claim("g", dataclasses.replace(m, val_loss=val), RULE, 8.0, 1e-5)
    assert claim.verdict == "not-applicable" and "end at σ = 1 before" in claim.evidence["reason"]


def test_mitigation_goes_on_to_the_trials_below_the_grid():
    m = sigma_runs()
    val = 0.01 * m.sigmas[:, None] * np.ones((1, INITS))  # still falling at the grid's end
    dead = W.Below(*(np.array([0.5]) if k == 0 else np.full((1, INITS), np.nan) for k in range(5)))
    claim = C.mitigation_claim("g", dataclasses.replace(m, val_loss=val, below=dead), RULE, 8.0, 1e-5)
    assert claim.verdict != "not-applicable" and set(claim.evidence["chosen_sigma"].values()) == {1.0}
    assert all("impractically slow at σ = 0.5" in r for r in claim.evidence["stopped_because"].values())


def test_mitigation_stops_where_training_gets_too_slow():
    m = plateau(sigma_runs())
    val = 0.01 * m.sigmas[:, None] * np.ones((1, INITS))
    steps = m.steps.copy()
    steps[0] = 100 * steps[-1]  # σ = 0.5 needs 100× the start's steps
    claim = C.mitigation_claim("g", dataclasses.replace(m, val_loss=val, steps=steps), RULE, 8.0, 1e-5)
    assert claim.verdict != "not-applicable"
    assert set(claim.evidence["chosen_sigma"].values()) == {1.0}
    assert all("impractically slow" in r for r in claim.evidence["stopped_because"].values())


# ---------------------------------------------------------------------------------------
# experiment 2 and Example 1


def adaptive_runs(distance: float, adaptive_loss: float) -> W.AdaptiveRuns:
    return W.AdaptiveRuns(
        arch="L1w64",
        seeds=np.arange(INITS),
        gd_gap=0.02 + noise(0.001, INITS),
        sgd_distance=0.004 + noise(0.0005, INITS, seed=9),
        sgd_train_distance=np.full(INITS, 0.002),
        test_distance={o: distance + noise(0.002, INITS, seed=k) for k, o in enumerate(W.ADAPTIVE)},
        train_distance={o: np.full(INITS, 0.003) for o in W.ADAPTIVE},
        test_loss={"gd": 0.05 + noise(0.005, INITS, seed=7)}
        | {o: 0.05 + adaptive_loss + noise(0.005, INITS, seed=7) for o in W.ADAPTIVE},
        test_error={o: np.zeros(INITS) for o in ("gd", *W.ADAPTIVE)},
    )


def test_minimizers_differ_beyond_what_sgd_moves_from_gd():
    claim = C.minimizers_differ_claim("g", adaptive_runs(0.03, 0.0))
    assert claim.verdict == "holds" and claim.evidence["triangle_bound"] == pytest.approx(0.04, abs=0.002)
    assert C.minimizers_differ_claim("g", adaptive_runs(0.004, 0.0)).verdict == "fails"  # SGD's size


def test_gd_generalizes_better_by_paired_standard_errors():
    assert C.gd_generalizes_better_claim("g", adaptive_runs(0.1, 0.01)).verdict == "holds"
    assert C.gd_generalizes_better_claim("g", adaptive_runs(0.1, -0.01)).verdict == "fails"


def sign_kernel_runs(adagrad_follows: str) -> W.SignKernelRuns:
    near, far = 0.005 + noise(0.001, INITS), 0.08 + noise(0.01, INITS, seed=1)
    ada_sign, ada_gd = (near, far) if adagrad_follows == "sign" else (far, near)
    return W.SignKernelRuns(
        arch="L1w64",
        seeds=np.arange(INITS),
        gd_to_gd_limit=near,
        gd_to_sign_limit=far,
        adagrad_to_sign_limit=ada_sign,
        adagrad_to_gd_limit=ada_gd,
        adagrad_to_gd=far if adagrad_follows == "sign" else near,
        limits_apart=far,
    )


def test_example1_closed_form_tells_the_sign_kernel_from_gds():
    assert C.example1_closed_form_claim("g", sign_kernel_runs("sign")).verdict == "holds"
    assert C.example1_closed_form_claim("g", sign_kernel_runs("gd")).verdict == "fails"


def test_example1_minimizers_differ_beyond_their_gaps():
    assert C.example1_differ_claim("g", sign_kernel_runs("sign")).verdict == "holds"
    assert C.example1_differ_claim("g", sign_kernel_runs("gd")).verdict == "fails"


# ---------------------------------------------------------------------------------------
# experiment 3


def batch_runs(sgd: float, adagrad: float, cyclic: bool = True) -> W.BatchRuns:
    variants = ("b20", "b10", "b10-cyclic") if cyclic else ("b20", "b10")
    return W.BatchRuns(
        arch="L1w64",
        seeds=np.arange(INITS),
        gd_gap=0.01 + noise(0.001, INITS),
        sgd={v: sgd + noise(0.0005, INITS, seed=k) for k, v in enumerate(variants)},
        adagrad={v: adagrad + noise(0.001, INITS, seed=k + 3) for k, v in enumerate(variants)},
        order={"sgd": sgd + noise(0.0005, INITS), "adagrad": adagrad + noise(0.001, INITS, seed=5)}
        if cyclic
        else {},
    )


def test_sgd_reaches_gd_within_the_finite_width_bound():
    assert C.sgd_reaches_gd_claim("g", batch_runs(0.004, 0.015)).verdict == "holds"
    assert C.sgd_reaches_gd_claim("g", batch_runs(0.05, 0.1)).verdict == "fails"  # > 2 × 0.01


def test_adaptive_depends_on_batch_more_than_sgd():
    assert C.adaptive_depends_on_batch_claim("g", batch_runs(0.004, 0.015)).verdict == "holds"
    assert C.adaptive_depends_on_batch_claim("g", batch_runs(0.004, 0.004)).verdict == "fails"


def test_data_order():
    assert C.data_order_claim("g", batch_runs(0.004, 0.015)).verdict == "holds"
    assert C.data_order_claim("g", batch_runs(0.004, 0.004)).verdict == "fails"  # AdaGrad moved as SGD
    assert C.data_order_claim("g", batch_runs(0.05, 0.1)).verdict == "fails"  # SGD beyond the bound
    assert C.data_order_claim("g", batch_runs(0.004, 0.015, cyclic=False)).verdict == "not-applicable"


# ---------------------------------------------------------------------------------------
# experiment 4


def later_runs(gap_t: float = 0.02, change: float = 0.5, rise: float = 0.02, ada: float = 0.2) -> W.LaterRuns:
    return W.LaterRuns(
        arch="L1w8",
        sigmas=(1.0, 4.0),
        gap_theta0=0.2 + noise(0.02, 2 * INITS),
        gap_theta_t=gap_t + noise(0.002, 2 * INITS, seed=1),
        kernel_change=np.full(2 * INITS, change),
        t_fraction=np.full(2 * INITS, 0.3),
        kernel_tol=0.1,
        test_loss={1.0: 0.05 + noise(0.005, INITS, seed=2), 4.0: 0.05 + rise + noise(0.005, INITS, seed=2)},
        test_error={1.0: np.zeros(INITS), 4.0: np.zeros(INITS)},
        adagrad_test=ada + noise(0.01, INITS, seed=3),
        adagrad_train=np.full(INITS, 0.003),
        gd_gap_t=0.02 + noise(0.002, INITS, seed=4),
    )


def test_linearize_later():
    assert C.linearize_later_claim("g", later_runs()).verdict == "holds"
    assert C.linearize_later_claim("g", later_runs(gap_t=0.3)).verdict == "fails"
    lazy = C.linearize_later_claim("g", later_runs(change=0.05))
    assert lazy.verdict == "not-applicable" and "lazy" in lazy.evidence["reason"]


def test_sigma_still_matters():
    assert C.sigma_still_matters_claim("g", later_runs()).verdict == "holds"
    assert C.sigma_still_matters_claim("g", later_runs(rise=-0.02)).verdict == "fails"


def test_adaptive_still_differs():
    assert C.adaptive_still_differs_claim("g", later_runs()).verdict == "holds"
    assert C.adaptive_still_differs_claim("g", later_runs(ada=0.03)).verdict == "fails"


# ---------------------------------------------------------------------------------------
# the premise and the statistics every claim uses


def table(losses: list[float]) -> Table:
    n = len(losses)
    vec = np.array([np.zeros(3)] * n + [None], dtype=object)[:n]
    return Table(
        {
            "name": np.array([f"r{i}" for i in range(n)]),
            "seed": np.arange(n),
            "status": np.array(["completed"] * n),
            "final_train_loss": np.array(losses),
            "final_train_error": np.zeros(n),
            "steps": np.full(n, 100),
            "stop_reason": np.array(["stop_loss"] * n),
            "f_test": vec,
            "interpolating": vec,
            "initialization": vec,
        },
        stop_loss=1e-5,
    )


def test_premise_names_the_runs_that_missed_the_threshold():
    assert premise("g/premise", "t", table([1e-6, 5e-6]), [0, 1]).verdict == "holds"
    claim = premise("g/premise", "t", table([1e-6, 1e-3]), [0, 1])
    assert claim.verdict == "fails" and claim.evidence["missed"] == ["r1"]
    assert premise("g/premise", "t", table([1e-6]), []).verdict == "not-applicable"


def test_stat_and_paired_differences():
    s = Stat.of([1.0, 2.0, 3.0, np.nan])
    assert (s.mean, s.n) == (2.0, 3) and s.se == pytest.approx(1 / np.sqrt(3))
    assert paired([1.1, 2.1, 3.1], [1.0, 2.0, 3.0]).above(0.05)  # no spread: any offset is clear
    assert not paired([1.1, 2.1, 3.1], [1.0, 2.0, 3.0]).above(0.15)
    assert not Stat.of([5.0]).above(0.0)  # one value has no standard error

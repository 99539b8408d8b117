"""The claims of `qualitative-sgd` (Giselsson, "Stochastic gradient descent: qualitative
convergence behavior"), one function per claim, each decided from plain measured numbers
(`measure.py`'s dataclasses, arrays, floats) so that each can be unit-tested on synthetic
measurements where it holds, where it fails and, where it has a premise, where it is not
applicable.

Tolerances are stated where they are used: round-off levels of float64 closed forms, "much
smaller" = `MUCH` (an order of magnitude), and for statistical comparisons `Z` standard errors
measured across independent runs or seeds (shown in the evidence).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from ..base import Claim, decide, not_applicable
from .measure import Escapes, Estimate, Floor, Landscape, Net, PairRun, RuleRun, mean_estimate
from .toys import pair_amplitude

Z = 3.0  # standard errors a statistical comparison allows
MUCH = 10.0  # "much smaller": at least this factor
SPEARMAN_LEVEL = 0.01  # one-sided p-value of a rank correlation "rises with the distance"


def _se(*ses: float) -> float:
    """√(Σ se²): the standard error of a sum or difference of independent estimates."""
    return float(math.sqrt(sum(s * s for s in ses)))


# ---------------------------------------------------------------------------------------
# 1. noise ball

GD_ROUNDOFF = 1e-12  # ‖x_1‖/‖x_0‖ of an exact one-step solve in float64
CYCLE_ROUNDOFF = 1e-10  # distance of the last cyclic iterates from the closed-form cycle
CYCLE_MIN_GAP = 0.01  # the cycle's points are distinct: it is not the solution


def noise_ball_gd_one_step(x0: np.ndarray, x1: np.ndarray) -> Claim:
    """`noise-ball/gd-one-step`: GD with step 1/3 on f = Σ ½‖x − c_i‖² (∇f = 3x) reaches the
    solution 0 in one step: ‖x_1‖ ≤ 1e-12·‖x_0‖."""
    dist = float(np.linalg.norm(x1))
    return decide(
        "noise-ball/gd-one-step",
        "GD with step 1/3 on f = Σ ½‖x − c_i‖² reaches the solution 0 in one step",
        dist <= GD_ROUNDOFF * float(np.linalg.norm(x0)),
        headline=f"‖x_1‖ = {dist:.1g}",
        meaning="the full gradient 3x points straight at the solution: no noise, no ball",
        x0=x0,
        x1=x1,
        tolerance=f"‖x_1‖ ≤ {GD_ROUNDOFF:g}·‖x_0‖ (float64 round-off)",
    )


def noise_ball_sgd_stationary(stationary: Estimate, ball: float, steps_averaged: int) -> Claim:
    """`noise-ball/sgd-stationary`: iid SGD at step 1/3 has the stationary E‖x‖² = mean‖c_i‖²/5
    (E‖x_{k+1}‖² = (4/9)E‖x_k‖² + mean‖c_i‖²/9). Holds when the measured E‖x‖² (each run's time
    average, averaged over the runs) is within 4 standard errors of it; not applicable with a
    single run (no standard error)."""
    statement = "iid SGD with step 1/3 settles in a noise ball with E‖x‖² = mean‖c_i‖²/5"
    if not stationary.count > 1:
        return not_applicable("noise-ball/sgd-stationary", statement, "one run: no standard error")
    return decide(
        "noise-ball/sgd-stationary",
        statement,
        abs(stationary.value - ball) <= 4 * stationary.se,
        headline=f"E‖x‖² = {stationary.value:.4f} vs {ball:.4f}",
        meaning="a constant step converges only to a noise ball around the solution",
        measured=stationary.value,
        target=ball,
        standard_error=stationary.se,
        relative_error=stationary.value / ball - 1,
        runs=stationary.count,
        steps_averaged=steps_averaged,
        tolerance="|measured − target| ≤ 4 standard errors (runs independent; each run's "
        "time average over the second half of the steps)",
    )


def noise_ball_cyclic_cycle(last: np.ndarray, cycle: np.ndarray) -> Claim:
    """`noise-ball/cyclic-3-cycle`: cyclic order settles on the closed-form 3-cycle, not on the
    solution: the last three iterates are within 1e-10 of the cycle (in the same phase), whose
    points are at least 0.01 apart."""
    err = float(np.abs(last - cycle).max())
    gap = float(min(np.linalg.norm(cycle[i] - cycle[j]) for i in range(3) for j in range(i)))
    return decide(
        "noise-ball/cyclic-3-cycle",
        "cyclic order settles on a 3-cycle (the closed form), not on the solution",
        err <= CYCLE_ROUNDOFF and gap > CYCLE_MIN_GAP,
        headline=f"max error {err:.1g}",
        meaning="without randomness the noise ball collapses to a limit cycle of the three steps",
        cycle=cycle,
        last_iterates=last,
        max_error=err,
        smallest_cycle_gap=gap,
        tolerance=f"last three iterates within {CYCLE_ROUNDOFF:g} of the closed-form cycle, "
        f"its points ≥ {CYCLE_MIN_GAP:g} apart",
    )


def noise_ball_fast_outside_slow_inside(
    outside: Estimate, inside: Estimate, states_outside: int, states_inside: int
) -> Claim:
    """`noise-ball/fast-outside-slow-inside`: the one-step contraction R = E‖x_{k+1}‖²/E‖x_k‖²
    (a ratio of means over the visited states, runs as the independent units) is < 1 where the
    individual gradients agree (μ(x_k) > 0, far from the triangle of the c_i) and closer to 1
    where they disagree (μ < 0): holds when R_out < 1 − Z·se_out and R_in − R_out > Z·se of the
    difference. Theory: E[‖x_{k+1}‖² | x_k] = (4/9)‖x_k‖² + mean‖c‖²/9, so R → 4/9 far away and
    R = 1 in the stationary ball. Not applicable unless both kinds of state were visited."""
    statement = (
        "where the individual gradients agree (μ(x) > 0, far from the triangle) SGD contracts "
        "fast; where they disagree (μ < 0, inside) it contracts slowly"
    )
    if states_outside == 0 or states_inside == 0:
        return not_applicable(
            "noise-ball/fast-outside-slow-inside",
            statement,
            f"states visited with μ > 0: {states_outside}, with μ < 0: {states_inside}: "
            "both kinds are needed",
        )
    diff_se = _se(outside.se, inside.se)
    return decide(
        "noise-ball/fast-outside-slow-inside",
        statement,
        outside.value < 1 - Z * outside.se and inside.value - outside.value > Z * diff_se,
        headline=f"E‖x_(k+1)‖²/E‖x_k‖² = {outside.value:.3f} (μ > 0) vs {inside.value:.3f} (μ < 0)",
        meaning="μ = min_{i≠j}⟨∇f_i, ∇f_j⟩ measures the noise: larger μ, faster convergence",
        ratio_mu_positive=outside.value,
        ratio_mu_positive_se=outside.se,
        ratio_mu_negative=inside.value,
        ratio_mu_negative_se=inside.se,
        far_field_theory=4 / 9,
        stationary_theory=1.0,
        states_mu_positive=states_outside,
        states_mu_negative=states_inside,
        runs=outside.count,
        tolerance=f"R(μ > 0) < 1 − {Z:g} se and R(μ < 0) − R(μ > 0) > {Z:g} se (delta-method "
        "standard errors of ratios of means over independent runs)",
        note="E[‖x_{k+1}‖² | x_k] = 4/9·‖x_k‖² + mean‖c‖²/9: → 4/9 far away, 1 in the stationary ball",
    )


# ---------------------------------------------------------------------------------------
# 2. the 1-D pair

AMPLITUDE_TOLERANCE = 1e-6  # relative, after thousands of exact float64 steps


def pair_amplitude_claim(runs: dict[float, PairRun], step: float) -> Claim:
    """`pair/amplitude`: cyclic SGD on f_{1,2} = ½(x ∓ c)² settles on the 2-cycle ±γc/(2 − γ):
    the measured amplitude matches it to a relative error ≤ 1e-6 for every c."""
    theory = {c: pair_amplitude(c, step) for c in runs}
    rel = {c: runs[c].amplitude / theory[c] - 1 for c in runs}
    return decide(
        "pair/amplitude",
        f"cyclic SGD (step {step:g}) on f_1,2 = ½(x ∓ c)² oscillates around the solution with "
        "amplitude γc/(2 − γ)",
        all(abs(r) <= AMPLITUDE_TOLERANCE for r in rel.values()),
        headline=", ".join(f"c={c:g}: {runs[c].amplitude:.3g} (theory {theory[c]:.3g})" for c in runs),
        meaning="individual gradients ±c at the solution keep a constant step away from it",
        amplitude={f"{c:g}": runs[c].amplitude for c in runs},
        theory={f"{c:g}": theory[c] for c in runs},
        relative_error={f"{c:g}": rel[c] for c in runs},
        tolerance=f"|relative error| ≤ {AMPLITUDE_TOLERANCE:g}",
    )


def pair_small_individual_gradients(runs: dict[float, PairRun], level: float) -> Claim:
    """`pair/small-individual-gradients`: with the smaller individual gradients ±c at the
    solution the loss x² reaches and stays ≤ `level`; with the larger ones it does not (its
    theoretical floor (γc/(2−γ))² lies above the level)."""
    small, big = min(runs), max(runs)
    ratio = runs[big].floor / runs[small].floor if runs[small].floor > 0 else math.inf
    return decide(
        "pair/small-individual-gradients",
        f"with small individual gradients at the solution (±{small:g} instead of ±{big:g}) SGD "
        f"reaches and keeps a small loss (f − f* ≤ {level:g}); with large ones it stalls above it",
        runs[small].first_below is not None and runs[big].first_below is None,
        headline=f"loss floor {runs[big].floor:.2g} vs {runs[small].floor:.2g}",
        meaning="local convergence is fast when the individual functions agree on the minimum",
        loss_floor={f"{c:g}": runs[c].floor for c in runs},
        first_step_below={f"{c:g}": runs[c].first_below for c in runs},
        level=level,
        floor_ratio=ratio,
        floor_ratio_theory=(big / small) ** 2,
    )


# ---------------------------------------------------------------------------------------
# 5. escaping


def escaping_landscape(land: Landscape) -> Claim:
    """`escaping/landscape`, the premise of the example: f(x_L) = f(x_R) (to 1e-12), ∇f(x_L) = 0
    (to 1e-12), every f_i'(x_R) = 0 exactly, and one step on f_4 from x_L lands past the barrier."""
    holds = (
        abs(float(land.grads_left.sum())) <= 1e-12
        and float(np.abs(land.grads_right).max()) == 0.0
        and abs(land.f_left - land.f_right) <= 1e-12
        and land.jump > land.barrier
    )
    return decide(
        "escaping/landscape",
        "the landscape has two global minima of equal depth, the right one individually flat "
        "(every ∇f_i = 0), the left one not; one step on f_4 from x = 0.8 with γ = 0.5 jumps "
        "past the barrier",
        holds,
        headline=f"∇f_4(0.8) = {float(land.grads_left[3]):.2f}, x_1 = {land.jump:.3f} > barrier "
        f"{land.barrier:g}",
        meaning="the premise of the escaping example (the lecture's numbers: −2.77, 2.18)",
        grads_left=land.grads_left,
        grads_right=land.grads_right,
        f_left=land.f_left,
        f_right=land.f_right,
        jump=land.jump,
        barrier=land.barrier,
    )


def escaping_gd_never(escaped: int, runs: int, max_move: float) -> Claim:
    """`escaping/gd-never`: GD (the batch of all 4) never leaves the not individually flat
    minimum: no run escapes and none moves by more than 1e-12."""
    return decide(
        "escaping/gd-never",
        "GD (batch 4 of 4) never leaves the not individually flat minimum",
        escaped == 0 and max_move <= GD_ROUNDOFF,
        headline=f"{escaped} of {runs} escape; max move {max_move:.1g}",
        meaning="∇f(x_L) = 0 stops GD; only the individual gradients can move the iterate",
        escapes=escaped,
        runs=runs,
        max_move=max_move,
        tolerance=f"no escape, max move ≤ {GD_ROUNDOFF:g} (float64 round-off)",
    )


def escape_probability_se(escaped: np.ndarray, runs: int) -> np.ndarray:
    """The binomial standard error √(p̃(1−p̃)/n) of an escape probability, with Laplace's
    p̃ = (k + 1)/(n + 2) so that 0 of n and n of n escapes keep an error of order 1/n."""
    p = (np.asarray(escaped, dtype=np.float64) + 1) / (runs + 2)
    return np.sqrt(p * (1 - p) / runs)


def escaping_batch_size(e: Escapes) -> Claim:
    """`escaping/batch-size`: smaller mini-batches escape more often and sooner. Holds when the
    escape probability does not rise from each batch size K to the next (beyond Z binomial
    standard errors of the difference), single-sample SGD escapes more often than the largest
    mini-batch short of GD (by more than Z se), and the mean escape step does not fall from K
    to the next K with ≥ 2 escapes (beyond Z se)."""
    p, se = e.probability, escape_probability_se(e.escaped, e.runs)
    rises = [
        f"K={a}→{b}"
        for (a, pa, sa), (b, pb, sb) in itertools.pairwise(zip(e.batch_sizes, p, se, strict=True))
        if pb - pa > Z * _se(sa, sb)
    ]
    beats = p[0] - p[-2] > Z * _se(se[0], se[-2])
    timed = [
        (k, t, s)
        for k, t, s, n in zip(e.batch_sizes, e.mean_step, e.step_se, e.escaped, strict=True)
        if n >= 2
    ]
    sooner = [
        f"K={a}→{b}" for (a, ta, sa), (b, tb, sb) in itertools.pairwise(timed) if ta - tb > Z * _se(sa, sb)
    ]
    return decide(
        "escaping/batch-size",
        "smaller mini-batches escape more often and sooner: the escape probability within the "
        "horizon does not rise with the batch size and the mean escape time does not fall",
        not rises and bool(beats) and not sooner,
        headline=", ".join(f"K={k}: {v:.3f}" for k, v in zip(e.batch_sizes, p, strict=True)),
        meaning="larger batches average the individual gradients away: worse at escaping",
        escape_probability=dict(zip(map(str, e.batch_sizes), p, strict=True)),
        escape_probability_se=dict(zip(map(str, e.batch_sizes), se, strict=True)),
        mean_escape_step=dict(zip(map(str, e.batch_sizes), e.mean_step, strict=True)),
        mean_escape_step_se=dict(zip(map(str, e.batch_sizes), e.step_se, strict=True)),
        probability_rises=rises,
        single_beats_largest_minibatch=bool(beats),
        escape_time_falls=sooner,
        runs=e.runs,
        tolerance=f"{Z:g} standard errors of each difference (binomial with Laplace's p̃ for "
        "probabilities, s/√n over the escaped runs for times)",
    )


def escaping_flat_stays(max_move: float, runs: int) -> Claim:
    """`escaping/flat-stays`: single-sample SGD started in the individually flat minimum never
    moves (every f_i' is exactly 0 there)."""
    return decide(
        "escaping/flat-stays",
        "single-sample SGD started in the individually flat minimum never moves",
        max_move == 0.0,
        headline=f"max move {max_move:g} over {runs} runs",
        meaning="∇f_i(x_R) = 0 for every i: a fixed point of SGD at any step size",
        max_move=max_move,
        runs=runs,
    )


# ---------------------------------------------------------------------------------------
# 3. least squares

PINV_TOLERANCE = 1e-6  # ‖x − A⁺b‖/‖A⁺b‖ after linear convergence in float64
INTERPOLATION_GAP = 1e-10  # the gap's fall from its start to "zero loss"
GRADIENT_RATIO = 1e-8  # max ‖∇f_i(x*)‖ over vs under: "0" against "large"
FASTER = 1e6  # over converges ≥ this many times further than under in the same epochs
EXPONENT_CANDIDATES = (0.5, 1.0, 2.0)  # floor ∝ √γ, γ, γ²: the laws the fit must tell apart
EXPONENT_RANGE = (0.75, 1.5)  # the exponents nearer 1 than ½ or 2


def ls_over_interpolates(distance: float, gap_start: float, gap_end: float) -> Claim:
    """`ls/over-interpolates`: over-parameterized least squares, SGD from 0 with a constant step
    converges to the minimum-norm interpolator: ‖x − A⁺b‖/‖A⁺b‖ ≤ 1e-6 and the gap falls to
    ≤ 1e-10 of its start."""
    rel = gap_end / gap_start if gap_start > 0 else math.nan
    return decide(
        "ls/over-interpolates",
        "over-parameterized (200×1000): SGD from 0 with a constant step converges to the "
        "minimum-norm interpolator A⁺b (zero loss)",
        distance <= PINV_TOLERANCE and rel <= INTERPOLATION_GAP,
        headline=f"‖x − A⁺b‖/‖A⁺b‖ = {distance:.1g}, loss {gap_end:.1g}",
        meaning="with ∇f_i(x*) = 0 for every i a constant step converges, here to the minimum norm",
        distance_to_pinv=distance,
        final_loss=gap_end,
        loss_relative_to_start=rel,
        tolerance=f"distance ≤ {PINV_TOLERANCE:g}, loss ≤ {INTERPOLATION_GAP:g} × start",
    )


def ls_individual_gradients(norms_under: np.ndarray, norms_over: np.ndarray) -> Claim:
    """`ls/individual-gradients-at-solution`: at x* the largest ‖∇f_i(x*)‖ of the
    over-parameterized problem is ≤ 1e-8 × that of the under-parameterized one."""
    n_under, n_over = float(np.max(norms_under)), float(np.max(norms_over))
    return decide(
        "ls/individual-gradients-at-solution",
        "at the solution the individual gradients are large in the under-parameterized case "
        "and 0 in the over-parameterized one",
        n_over <= GRADIENT_RATIO * n_under,
        headline=f"max ‖∇f_i(x*)‖ {n_under:.3g} vs {n_over:.1g}",
        meaning="individual functions agree on the minimum only when the model can interpolate",
        max_norm_under=n_under,
        median_norm_under=float(np.median(norms_under)),
        max_norm_over=n_over,
        tolerance=f"max over ≤ {GRADIENT_RATIO:g} × max under",
    )


def ls_over_converges_faster(gap_ratio_under: float, gap_ratio_over: float) -> Claim:
    """`ls/over-converges-faster`: over the same epochs the over-parameterized gap falls
    (end/start) ≥ 1e6× further than the under-parameterized one."""
    return decide(
        "ls/over-converges-faster",
        "SGD converges much faster in the over-parameterized case: its loss gap falls ≥ 1e6× "
        "further than the under-parameterized one over the same epochs",
        gap_ratio_over * FASTER <= gap_ratio_under,
        headline=f"(f − f*) end/start: {gap_ratio_under:.2g} vs {gap_ratio_over:.2g}",
        meaning="local convergence is slow where the individual functions disagree",
        gap_end_over_start={"under": gap_ratio_under, "over": gap_ratio_over},
        tolerance=f"over ≤ under / {FASTER:g}",
    )


def stationarity(f: Floor) -> dict[str, Any]:
    """Whether the runs at one step were stationary over the averaging window: the mean over
    seeds of (second-half mean − first-half mean) is within Z standard errors (across seeds)
    of 0; a run still decaying toward its floor has a clearly negative drift."""
    drift = mean_estimate(f.drift)
    return {"drift": drift.value, "drift_se": drift.se, "stationary": bool(abs(drift.value) <= Z * drift.se)}


def power_law_exponent(steps: np.ndarray, values: np.ndarray, se: np.ndarray) -> tuple[float, float]:
    """The exponent p of values ∝ step^p by least squares of ln(value) on ln(step), and its
    standard error propagated from the values' standard errors (σ_ln = se/value):
    p = Σ u_k ln v_k with u_k = (x_k − x̄)/Σ(x − x̄)², x = ln step, so se_p = √(Σ u_k² σ_k²).

    >>> p, s = power_law_exponent(np.array([1.0, 2.0, 4.0]), np.array([3.0, 6.0, 12.0]), np.zeros(3))
    >>> (round(p, 12), s)
    (1.0, 0.0)
    """
    x = np.log(steps)
    u = (x - x.mean()) / np.sum((x - x.mean()) ** 2)
    return float(np.sum(u * np.log(values))), float(np.sqrt(np.sum((u * se / values) ** 2)))


def ls_floor_scales_with_step(floors: list[Floor], **context: Any) -> Claim:
    """`ls/under-floor-scales-with-step`: under-parameterized least squares, constant-step SGD
    with iid sampling stalls at a loss floor ∝ γ (to first order in γ: the stationary excess
    loss is ½tr(HC) with C ≈ γ·const, see `measure.stationary_excess_loss`).

    Premises (not applicable otherwise): ≥ 3 distinct steps, ≥ 2 seeds per step, and every
    step's runs stationary over the averaging window (`stationarity`). The floor at a step is
    the mean over seeds of each seed's window mean; the exponent p of floor ∝ γ^p is fitted
    by least squares on the log-log points, its standard error se_p propagated from the floors'
    standard errors across seeds. The fit must resolve the candidate laws √γ, γ, γ²:
    Z·se_p < 0.25 (half the gap between ½ and 1), else not applicable. Holds when the
    interval p ± Z·se_p lies in (0.75, 1.5), the exponents nearer 1 than ½ or 2; fails
    otherwise, or when a floor is ≤ 0 (no floor)."""
    cid = "ls/under-floor-scales-with-step"
    statement = (
        "under-parameterized least squares: the loss floor of constant-step SGD (iid sampling, "
        "as in the lecture) scales ∝ γ, not ∝ √γ or γ²"
    )
    steps = np.asarray([f.step for f in floors])
    if len(set(steps.tolist())) < 3:
        return not_applicable(cid, statement, f"{len(set(steps.tolist()))} distinct steps: ≥ 3 are needed")
    if min(len(f.per_seed) for f in floors) < 2:
        return not_applicable(cid, statement, "one seed at some step: no standard error across seeds")
    checks = {f"{f.step:g}": stationarity(f) for f in floors}
    moving = [g for g, c in checks.items() if not c["stationary"]]
    if moving:
        return not_applicable(
            cid,
            statement,
            "not stationary over the averaging window at step "
            + ", ".join(
                f"{g} (drift {checks[g]['drift']:.3g} ± {checks[g]['drift_se']:.2g})" for g in moving
            ),
            stationarity=checks,
            **context,
        )
    stats = [mean_estimate(f.per_seed) for f in floors]
    value, se = np.asarray([e.value for e in stats]), np.asarray([e.se for e in stats])
    evidence: dict[str, Any] = {
        "steps": steps,
        "floor": value,
        "floor_se": se,
        "floor_per_seed": {f"{f.step:g}": f.per_seed for f in floors},
        "floor_theory": {f"{f.step:g}": f.theory for f in floors},
        "stationarity": checks,
        **context,
    }
    if np.any(value <= 0):
        return decide(cid, statement, False, headline="no positive floor", **evidence)
    p, p_se = power_law_exponent(steps, value, se)
    lo, hi = p - Z * p_se, p + Z * p_se
    order = np.argsort(steps)
    local = np.diff(np.log(value[order])) / np.diff(np.log(steps[order]))
    theory = np.asarray([f.theory for f in floors])
    theory_p = power_law_exponent(steps, theory, np.zeros(len(theory)))[0] if np.all(theory > 0) else math.nan
    evidence |= {
        "exponent": p,
        "exponent_se": p_se,
        "exponent_interval": [lo, hi],
        "local_exponents": local,
        "exponent_theory": theory_p,
        "candidates": EXPONENT_CANDIDATES,
        "tolerance": f"p ± {Z:g}·se_p inside {EXPONENT_RANGE} (nearer 1 than ½ or 2); se_p from "
        "the spread of the floors across seeds; decidable when "
        f"{Z:g}·se_p < 0.25",
    }
    headline = (
        f"floor ∝ γ^p, p = {p:.2f} ± {p_se:.2f} over steps {', '.join(f'{g:g}' for g in sorted(steps))}"
    )
    if math.isfinite(theory_p):
        headline += f" (exact stationary theory: {theory_p:.2f})"
    if not Z * p_se < 0.25:
        return not_applicable(
            cid,
            statement,
            f"the fit cannot tell γ from √γ: {Z:g}·se_p = {Z * p_se:.2f} ≥ 0.25",
            headline=headline,
            **evidence,
        )
    return decide(
        cid,
        statement,
        EXPONENT_RANGE[0] < lo and hi < EXPONENT_RANGE[1],
        headline=headline,
        meaning="a constant step converges to a noise ball whose size is set by the step",
        **evidence,
    )


# ---------------------------------------------------------------------------------------
# 4. residual nets

SMALL, BIG = "3x5,2,1", "15x25,2,1"


def regime_problem(under: Net, over: Net) -> str | None:
    """Why the two nets are outside the lecture's regime (None when inside): both completed,
    the under-parameterized one does not interpolate (training error > 0 at the end) and the
    over-parameterized one does (training error 0)."""
    why = [f"{label} {n.status}" for label, n in ((SMALL, under), (BIG, over)) if n.status != "completed"]
    if not under.error > 0:
        why.append(f"{SMALL} interpolates (training error {under.error:.3g})")
    if not over.error == 0:
        why.append(f"{BIG} does not interpolate (training error {over.error:.3g})")
    return "; ".join(why) or None


def nets_regime(under: Net, over: Net, **context: Any) -> Claim:
    """`nets/regime`, the premise of part 4: the 3x5,2,1 net is under-parameterized for the
    data (it does not reach training error 0) and the 15x25,2,1 net over-parameterized (it does)."""
    why = regime_problem(under, over)
    return decide(
        "nets/regime",
        f"premise: the {SMALL} net cannot interpolate the training set (training error > 0 at the "
        f"end) while the {BIG} net does (training error 0)",
        why is None,
        headline=f"training error {under.error:.3g} vs {over.error:.3g}",
        meaning="the lecture's definition: over-parameterized = correct classification (logistic "
        "loss near 0) is reachable; the comparison needs one net on each side",
        final_train_error={SMALL: under.error, BIG: over.error},
        final_loss={SMALL: under.loss, BIG: over.loss},
        status={SMALL: under.status, BIG: over.status},
        **({"reason": why} if why else {}),
        **context,
    )


def _in_regime(cid: str, statement: str, under: Net, over: Net) -> Claim | None:
    """The not-applicable claim when the nets miss the premise (`regime_problem`), else None."""
    why = regime_problem(under, over)
    return None if why is None else not_applicable(cid, statement, f"outside the lecture's regime: {why}")


def nets_final_loss(under: Net, over: Net) -> Claim:
    """`nets/final-loss`: the over-parameterized net ends with a training loss ≥ MUCH (10×)
    smaller (lecture: 0.17 vs 0.00018). Not applicable outside the regime (`nets_regime`)."""
    statement = (
        f"the over-parameterized {BIG} net reaches a much smaller training loss than the {SMALL} "
        f"net (≥ {MUCH:g}× smaller)"
    )
    return _in_regime("nets/final-loss", statement, under, over) or decide(
        "nets/final-loss",
        statement,
        over.loss * MUCH <= under.loss,
        headline=f"final loss {under.loss:.3g} vs {over.loss:.3g} (lecture: 0.17 vs 0.00018)",
        meaning="over-parameterized models give faster SGD convergence",
        final_loss={SMALL: under.loss, BIG: over.loss},
        tolerance=f"≥ {MUCH:g}× smaller",
    )


def nets_best_gradient(under: Net, over: Net) -> Claim:
    """`nets/best-gradient`: the best full-gradient norm so far ends ≥ MUCH (10×) smaller for
    the over-parameterized net. Not applicable outside the regime."""
    statement = "the best full-gradient norm so far ends much smaller for the over-parameterized net"
    return _in_regime("nets/best-gradient", statement, under, over) or decide(
        "nets/best-gradient",
        statement,
        over.best_gradient * MUCH <= under.best_gradient,
        headline=f"min ‖∇f‖ {under.best_gradient:.2g} vs {over.best_gradient:.2g}",
        meaning='the lecture\'s "best gradient" curve',
        best_full_gradient={SMALL: under.best_gradient, BIG: over.best_gradient},
        tolerance=f"≥ {MUCH:g}× smaller",
    )


def nets_individual_gradients(under: Net, over: Net) -> Claim:
    """`nets/individual-gradients`: at the end the max and the median ‖∇f_i‖ over the training
    points are both ≥ MUCH (10×) smaller for the over-parameterized net. Not applicable
    outside the regime."""
    statement = (
        "at the end the individual gradients of the over-parameterized net are much smaller "
        "(max and median over the training points)"
    )
    norm_max = {SMALL: float(under.norms.max()), BIG: float(over.norms.max())}
    norm_med = {SMALL: float(np.median(under.norms)), BIG: float(np.median(over.norms))}
    return _in_regime("nets/individual-gradients", statement, under, over) or decide(
        "nets/individual-gradients",
        statement,
        norm_max[BIG] * MUCH <= norm_max[SMALL] and norm_med[BIG] * MUCH <= norm_med[SMALL],
        headline=f"max ‖∇f_i‖ {norm_max[SMALL]:.2g} vs {norm_max[BIG]:.2g}",
        meaning="individual gradients vanish near an interpolating solution, so a constant step "
        "keeps converging",
        max_norm=norm_max,
        median_norm=norm_med,
        tolerance=f"≥ {MUCH:g}× smaller, both",
    )


def nets_agreement(under: Net, over: Net) -> Claim:
    """`nets/agreement`: μ = min_{i≠j}⟨∇f_i, ∇f_j⟩ of the over-parameterized net is larger at the
    end and in median over the second half of training. Not applicable outside the regime."""
    statement = (
        "the individual gradients of the over-parameterized net agree better: its "
        "μ = min_{i≠j}⟨∇f_i, ∇f_j⟩ is larger at the end and over the second half of training (median)"
    )
    return _in_regime("nets/agreement", statement, under, over) or decide(
        "nets/agreement",
        statement,
        over.mu_end > under.mu_end and over.mu_second_half > under.mu_second_half,
        headline=f"μ at the end {under.mu_end:.2g} vs {over.mu_end:.2g}",
        meaning="the lecture's reason for the faster convergence: individual gradients agree",
        mu_end={SMALL: under.mu_end, BIG: over.mu_end},
        mu_median_second_half={SMALL: under.mu_second_half, BIG: over.mu_second_half},
    )


# ---------------------------------------------------------------------------------------
# 6. step-size rules

LARGE_GRADIENT = 1e3  # "very large" initial full-gradient norm (the lecture: 6.8e5)
TINY_STEP = 1e-2  # a damped first step is < this × γ0
FINAL_FACTOR = 2.0  # "larger final full norm" (the lecture's rule tables differ 40×): at least this


def rules_large_initial_gradients(first_full_norm: float) -> Claim:
    """`rules/large-initial-gradients`, the premise of the step-size tables: the 15x25 net
    starts with a full-gradient norm ≥ 1e3."""
    return decide(
        "rules/large-initial-gradients",
        "the 15x25,2,1 net starts with very large gradients (full-gradient norm ≥ 1e3), the regime "
        "the damped rules are for",
        first_full_norm >= LARGE_GRADIENT,
        headline=f"‖∇f(x_0)‖ = {first_full_norm:.2g} (lecture: 6.8e5)",
        meaning="the premise of the step-size tables",
        full_grad_norm_epoch0=first_full_norm,
    )


def _small_initial_gradient(cid: str, statement: str, first_full_norm: float) -> Claim | None:
    """The not-applicable claim when the premise `rules/large-initial-gradients` fails (the
    15x25 net starts with ‖∇f(x_0)‖ < 1e3: there is nothing to dampen), else None."""
    if first_full_norm >= LARGE_GRADIENT:
        return None
    return not_applicable(
        cid,
        statement,
        f"premise rules/large-initial-gradients fails: ‖∇f(x_0)‖ = {first_full_norm:.2g} < "
        f"{LARGE_GRADIENT:g}",
        full_grad_norm_epoch0=first_full_norm,
    )


def rules_undamped_diverges(undamped: RuleRun, first_full_norm: float) -> Claim:
    """`rules/undamped-diverges`: without damping (α = 0) the run stops with status diverged.
    Not applicable when the initial full-gradient norm is below 1e3
    (`rules_large_initial_gradients`)."""
    cid = "rules/undamped-diverges"
    statement = (
        "without damping (α = 0) the very large first gradients explode: the run stops with status diverged"
    )
    return _small_initial_gradient(cid, statement, first_full_norm) or decide(
        cid,
        statement,
        undamped.status == "diverged",
        headline=f"status {undamped.status} at step {undamped.diverged_at}",
        meaning="a fixed step ignores the gradient's size; diminishing it does not help",
        status=undamped.status,
        diverged_at=undamped.diverged_at,
        full_grad_norm_epoch0=first_full_norm,
    )


def _divergences(runs: dict[str, RuleRun]) -> list[str]:
    return [
        f"run rule-{n} diverged at step {r.diverged_at}" for n, r in runs.items() if r.status == "diverged"
    ]


def rules_damping_survives(damped: dict[str, RuleRun], lr: float, first_full_norm: float) -> Claim:
    """`rules/damping-survives`: every damped rule (name → run) completes, with a first step
    < 1e-2·γ0. Not applicable when the initial full-gradient norm is below 1e3
    (`rules_large_initial_gradients`): γ0/(α‖g‖ + 1) is then not tiny by construction."""
    cid = "rules/damping-survives"
    statement = (
        "the damped rules take tiny first steps (η ≪ γ0) on the very large first gradients and "
        "train without diverging"
    )
    diverged = _divergences(damped)
    return _small_initial_gradient(cid, statement, first_full_norm) or decide(
        cid,
        statement,
        all(r.status == "completed" for r in damped.values())
        and all(r.first_step < TINY_STEP * lr for r in damped.values()),
        headline="; ".join(diverged)
        or ", ".join(f"{n}: η_0 = {r.first_step:.2g}, final loss {r.loss:.2g}" for n, r in damped.items()),
        meaning="γ0/(α‖g‖+1) dampens large initial gradients",
        first_step={n: r.first_step for n, r in damped.items()},
        final_loss={n: r.loss for n, r in damped.items()},
        status={n: r.status for n, r in damped.items()},
        tolerance=f"η_0 < {TINY_STEP:g}·γ0",
        **({"reason": "; ".join(diverged)} if diverged else {}),
    )


def rules_diminishing_smaller_final_gradient(combined: RuleRun, damped: RuleRun) -> Claim:
    """`rules/diminishing-smaller-final-gradient`: the diminishing (combined) rule ends with a
    full-gradient norm ≥ FINAL_FACTOR (2×) smaller than the non-diminishing damped rule (the
    lecture: 0.0003 vs 0.013). Not applicable when either run diverged or did not complete."""
    cid = "rules/diminishing-smaller-final-gradient"
    statement = (
        "the diminishing (combined) rule ends with a clearly smaller full-gradient norm than the "
        f"non-diminishing damped rule (≥ {FINAL_FACTOR:g}× smaller; the lecture: 0.0003 vs 0.013)"
    )
    runs = {"combined": combined, "damped": damped}
    unfinished = _divergences(runs) + [
        f"run rule-{n} {r.status}" for n, r in runs.items() if r.status not in ("completed", "diverged")
    ]
    if unfinished:  # no final gradient norm to compare
        return not_applicable(cid, statement, "; ".join(unfinished))
    return decide(
        cid,
        statement,
        combined.final_gradient * FINAL_FACTOR <= damped.final_gradient,
        headline=f"‖∇f‖ at the end {combined.final_gradient:.2g} (combined) vs "
        f"{damped.final_gradient:.2g} (damped)",
        meaning="a diminishing step gives local convergence; a constant one a larger final norm",
        final_full_grad_norm={n: r.final_gradient for n, r in runs.items()},
        ratio=damped.final_gradient / combined.final_gradient,
        final_step={n: r.final_step for n, r in runs.items()},
        tolerance=f"≥ {FINAL_FACTOR:g}× smaller",
    )


# ---------------------------------------------------------------------------------------
# 7. μ on digits


def mu_batch_size(by_batch: dict[str, dict[str, list[Any]]], **context: Any) -> Claim:
    """`mu/batch-size`: μ_K = min over pairs of sampled K-batches of ⟨g_B, g_B'⟩ is
    non-decreasing in K at every point measured (label → batch sizes and μ_K)."""
    rising = {p: bool(np.all(np.diff(v["mu"]) >= 0)) for p, v in by_batch.items()}
    label, first = next(iter(by_batch.items()))
    return decide(
        "mu/batch-size",
        "a larger mini-batch gives a larger μ (min over pairs of sampled mini-batches of "
        "⟨g_B, g_B'⟩), at the start, midway and at the end of training",
        all(rising.values()),
        headline=f"{label.split(' ')[0]}: μ_{first['batch_size'][0]} = {first['mu'][0]:.3g} → "
        f"μ_{first['batch_size'][-1]} = {first['mu'][-1]:.3g}",
        meaning="larger mini-batches are more alike, the limit being GD; at a higher cost per step",
        mu_by_batch_size={
            p: dict(zip(map(str, v["batch_size"]), v["mu"], strict=True)) for p, v in by_batch.items()
        },
        non_decreasing=rising,
        **context,
    )


def rises_with_distance(distance: np.ndarray, values: np.ndarray) -> tuple[float, float]:
    """Spearman's ρ between ‖θ_k − θ*‖ and a statistic along the path, and the one-sided p-value
    of ρ > 0 (the iterates treated as independent)."""
    result = spearmanr(distance, values, alternative="greater")
    return float(result.statistic), float(result.pvalue)


def mu_distance(distance: np.ndarray, mu: np.ndarray) -> Claim:
    """`mu/distance`: far from the solution the individual gradients agree more: μ(θ_0) > μ(θ*)
    and μ rises with ‖θ_k − θ*‖ along the path (Spearman ρ > 0 with one-sided p ≤ 0.01)."""
    rho, p = rises_with_distance(distance, mu)
    low = int(np.argmin(mu))
    return decide(
        "mu/distance",
        "far from the solution the individual gradients agree more: μ at θ_0 (the farthest "
        "iterate) exceeds μ at θ*, and μ rises with ‖θ_k − θ*‖ along the path (Spearman ρ > 0)",
        bool(mu[0] > mu[-1]) and rho > 0 and p <= SPEARMAN_LEVEL,
        headline=f"μ(θ_0) = {mu[0]:.3g} vs μ(θ*) = {mu[-1]:.3g}; ρ = {rho:.2f}",
        meaning="the lecture's reading of the noise-ball picture, tested on a network",
        mu_at_start=float(mu[0]),
        mu_at_end=float(mu[-1]),
        spearman_mu=rho,
        spearman_p=p,
        lowest_mu=float(mu[low]),
        lowest_mu_distance=float(distance[low]),
        distance_start=float(distance[0]),
        iterates=len(mu),
        tolerance=f"one-sided p ≤ {SPEARMAN_LEVEL:g} (iterates treated as independent)",
        note="iterates are log-spaced in steps, so most sit far from θ*; the lowest μ tells "
        "whether μ is monotone in the distance",
    )


def mu_distance_cosine(distance: np.ndarray, cos: np.ndarray) -> Claim:
    """`mu/distance-cosine`: the same for the mean cosine of the individual gradients."""
    rho, p = rises_with_distance(distance, cos)
    return decide(
        "mu/distance-cosine",
        "far from the solution the individual gradients point more alike: the mean cosine at θ_0 "
        "exceeds that at θ*, and it rises with the distance (Spearman ρ > 0)",
        bool(cos[0] > cos[-1]) and rho > 0 and p <= SPEARMAN_LEVEL,
        headline=f"mean cos {cos[0]:.3g} (θ_0) vs {cos[-1]:.3g} (θ*); ρ = {rho:.2f}",
        meaning="the same statement, free of the gradients' scale",
        cos_at_start=float(cos[0]),
        cos_at_end=float(cos[-1]),
        spearman_cos_mean=rho,
        spearman_p=p,
        tolerance=f"one-sided p ≤ {SPEARMAN_LEVEL:g} (iterates treated as independent)",
    )

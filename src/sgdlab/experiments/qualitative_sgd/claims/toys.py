"""The claims of the simulated parts of `qualitative-sgd` (Giselsson, "Stochastic gradient
descent: qualitative convergence behavior"): the noise ball, the 1-D pair and escaping, each
decided from plain measured numbers (`measure.toys`)."""

from __future__ import annotations

import itertools
import math

import numpy as np

from ....toys import pair_amplitude
from ...base import Claim, decide, not_applicable
from ..measure.estimates import Estimate
from ..measure.toys import Escapes, Landscape, PairRun
from .tolerances import Z, combined_se

GD_ROUNDOFF = 1e-12  # ‖x_1‖/‖x_0‖ of an exact one-step solve in float64
CYCLE_ROUNDOFF = 1e-10  # distance of the last cyclic iterates from the closed-form cycle
CYCLE_MIN_GAP = 0.01  # the cycle's points are distinct: it is not the solution


def noise_ball_gd_one_step_claim(x0: np.ndarray, x1: np.ndarray) -> Claim:
    """Claim `noise-ball/gd-one-step`: GD with step 1/3 on f = Σ ½‖x − c_i‖² (∇f = 3x) reaches the
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


def noise_ball_sgd_stationary_claim(stationary: Estimate, ball: float, steps_averaged: int) -> Claim:
    """Claim `noise-ball/sgd-stationary`: iid SGD at step 1/3 has the stationary E‖x‖² = mean‖c_i‖²/5
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


def noise_ball_cyclic_cycle_claim(last: np.ndarray, cycle: np.ndarray) -> Claim:
    """Claim `noise-ball/cyclic-3-cycle`: cyclic order settles on the closed-form 3-cycle, not on the
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


def noise_ball_fast_outside_slow_inside_claim(
    outside: Estimate, inside: Estimate, states_outside: int, states_inside: int
) -> Claim:
    """Claim `noise-ball/fast-outside-slow-inside`: the one-step contraction R = E‖x_{k+1}‖²/E‖x_k‖²
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
    diff_se = combined_se(outside.se, inside.se)
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


AMPLITUDE_TOLERANCE = 1e-6  # relative, after thousands of exact float64 steps


def pair_amplitude_claim(runs: dict[float, PairRun], step: float) -> Claim:
    """Claim `pair/amplitude`: cyclic SGD on f_{1,2} = ½(x ∓ c)² settles on the 2-cycle ±γc/(2 − γ):
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


def pair_small_individual_gradients_claim(runs: dict[float, PairRun], level: float) -> Claim:
    """Claim `pair/small-individual-gradients`: with the smaller individual gradients ±c at the
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


def escaping_landscape_claim(land: Landscape) -> Claim:
    """Claim `escaping/landscape`, the premise of the example: f(x_L) = f(x_R) (to 1e-12), ∇f(x_L) = 0
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


def escaping_gd_never_claim(escaped: int, runs: int, max_move: float) -> Claim:
    """Claim `escaping/gd-never`: GD (the batch of all 4) never leaves the not individually flat
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


def escaping_batch_size_claim(e: Escapes) -> Claim:
    """Claim `escaping/batch-size`: smaller mini-batches escape more often and sooner. Holds when the
    escape probability does not rise from each batch size K to the next (beyond Z binomial
    standard errors of the difference), single-sample SGD escapes more often than the largest
    mini-batch short of GD (by more than Z se), and the mean escape step does not fall from K
    to the next K with ≥ 2 escapes (beyond Z se)."""
    p, se = e.probability, escape_probability_se(e.escaped, e.runs)
    rises = [
        f"K={a}→{b}"
        for (a, pa, sa), (b, pb, sb) in itertools.pairwise(zip(e.batch_sizes, p, se, strict=True))
        if pb - pa > Z * combined_se(sa, sb)
    ]
    beats = p[0] - p[-2] > Z * combined_se(se[0], se[-2])
    timed = [
        (k, t, s)
        for k, t, s, n in zip(e.batch_sizes, e.mean_step, e.step_se, e.escaped, strict=True)
        if n >= 2
    ]
    sooner = [
        f"K={a}→{b}"
        for (a, ta, sa), (b, tb, sb) in itertools.pairwise(timed)
        if ta - tb > Z * combined_se(sa, sb)
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


def escaping_flat_stays_claim(max_move: float, runs: int) -> Claim:
    """Claim `escaping/flat-stays`: single-sample SGD started in the individually flat minimum never
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

"""The claims of part 3 of `qualitative-sgd` (Giselsson, "Stochastic gradient descent:
qualitative convergence behavior"): under- vs over-parameterized least squares, decided from
plain measured numbers (`measure.least_squares`)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...base import Claim, decide, not_applicable
from ..measure.estimates import mean_estimate
from ..measure.least_squares import Floor
from .tolerances import Z

PINV_TOLERANCE = 1e-6  # ‖x − A⁺b‖/‖A⁺b‖ after linear convergence in float64
INTERPOLATION_GAP = 1e-10  # the gap's fall from its start to "zero loss"
GRADIENT_RATIO = 1e-8  # max ‖∇f_i(x*)‖ over vs under: "0" against "large"
FASTER = 1e6  # over converges ≥ this many times further than under in the same epochs
EXPONENT_CANDIDATES = (0.5, 1.0, 2.0)  # floor ∝ √γ, γ, γ²: the laws the fit must tell apart
EXPONENT_RANGE = (0.75, 1.5)  # the exponents nearer 1 than ½ or 2


def ls_over_interpolates_claim(
    distance: float, gap_start: float, gap_end: float, shape: tuple[int, int] | None = None
) -> Claim:
    """Claim `ls/over-interpolates`: over-parameterized least squares, SGD from 0 with a constant step
    converges to the minimum-norm interpolator: ‖x − A⁺b‖/‖A⁺b‖ ≤ 1e-6 and the gap falls to
    ≤ 1e-10 of its start. `shape` (rows × unknowns) is the problem's, named in the statement."""
    rel = gap_end / gap_start if gap_start > 0 else math.nan
    return decide(
        "ls/over-interpolates",
        f"over-parameterized ({f'{shape[0]}×{shape[1]}' if shape else 'more unknowns than equations'}): "
        "SGD from 0 with a constant step converges to the "
        "minimum-norm interpolator A⁺b (zero loss)",
        distance <= PINV_TOLERANCE and rel <= INTERPOLATION_GAP,
        headline=f"‖x − A⁺b‖/‖A⁺b‖ = {distance:.1g}, loss {gap_end:.1g}",
        meaning="with ∇f_i(x*) = 0 for every i a constant step converges, here to the minimum norm",
        distance_to_pinv=distance,
        final_loss=gap_end,
        loss_relative_to_start=rel,
        tolerance=f"distance ≤ {PINV_TOLERANCE:g}, loss ≤ {INTERPOLATION_GAP:g} × start",
    )


def ls_individual_gradients_claim(norms_under: np.ndarray, norms_over: np.ndarray) -> Claim:
    """Claim `ls/individual-gradients-at-solution`: at x* the largest ‖∇f_i(x*)‖ of the
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


def ls_over_converges_faster_claim(gap_ratio_under: float, gap_ratio_over: float) -> Claim:
    """Claim `ls/over-converges-faster`: over the same epochs the over-parameterized gap falls
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


def ls_floor_scales_with_step_claim(floors: list[Floor], **context: Any) -> Claim:
    """Claim `ls/under-floor-scales-with-step`: under-parameterized least squares, constant-step SGD
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

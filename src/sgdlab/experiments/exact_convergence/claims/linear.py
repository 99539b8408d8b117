"""The linear study's claims, one function each, decided from its measured curves and table
(`measure.linear`): the theory of Soudry et al. 2018, Thm 3, and Nacson et al. 2019, Thm 1:

    L(t)/L(10t) → 10                 (L = O(1/t); the constant is ‖ŵ‖²/(ηt) for GD)
    ‖w(10t)‖ − ‖w(t)‖ → ‖ŵ‖·ln 10     (w(t) = ŵ·ln t + O(1))
    ‖w/‖w‖ − ŵ/‖ŵ‖‖ falls, and ·ln t stays bounded   (O(1/ln t))
    min_n y_n wᵀx_n/‖w‖ rises toward 1/‖ŵ‖
    SGD with a fixed step has no loss floor: its loss keeps falling by a factor per decade.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ....stats import Estimate
from ...base import Claim, decide
from ..measure.linear import Curve, curves, run_keys, select
from ..rates import SIGNIFICANCE, approaches, at, decade_factor, decade_increment, last_decades, log_exponent
from ..settings import LinearSettings


def grouped(claim_id: str, statement: str, groups: dict[str, dict[str, Any]], **context: Any) -> Claim:
    """A claim that holds when every group's "ok" does; the evidence lists each measure as
    {group: value} and names the failing groups."""
    failing = [g for g, v in groups.items() if not v["ok"]]
    measures: dict[str, Any] = {
        m: {g: v[m] for g, v in groups.items()} for m in next(iter(groups.values())) if m != "ok"
    }
    return decide(claim_id, statement, not failing, **context, **measures, failing=failing)


def span(values: list[float], fmt: str = ".3g") -> str:
    """The range of `values` as "lo–hi" (one number when both ends agree to the format)."""
    lo, hi = format(min(values), fmt), format(max(values), fmt)
    return lo if lo == hi else f"{lo}–{hi}"


def decade_points(s: LinearSettings) -> list[float]:
    """The steps the claims read: the ends of the last `window` decades, T/10^window … T."""
    return [s.steps / 10.0**j for j in range(s.window, -1, -1)]


def plain_estimates(estimates: list[Estimate]) -> dict[str, list[float]]:
    """Estimates as evidence: their values and their standard errors."""
    return {"value": [e.value for e in estimates], "stderr": [e.stderr for e in estimates]}


NOISE_NOTE = (
    "SGD: the median over seeds ± its standard error √(π/2)·s/√n; GD: one deterministic run (no "
    f"noise). A difference counts beyond {SIGNIFICANCE:g} standard errors"
)


def loss_rate_claim(cs: list[Curve], s: LinearSettings) -> Claim:
    """Claim `linear-loss-rate` (Soudry et al. 2018, "The implicit bias of gradient
    descent on separable data", Thm 3; Nacson, Srebro & Soudry 2019): the logistic loss
    falls as 1/t, so loss(t)/loss(10t) → 10.

    Per run, the factor per decade is 10^(−slope) of a log-log least-squares fit over each of
    the last `s.window` decades; per group, its median over the runs (`rates.Estimate`). A
    group holds when the factor tends to 10 as far as the run can tell (`rates.approaches`):
    on the last decade it is within noise of 10, or it is nearer to 10 than a decade earlier
    by more than the noise. A floor (factor → 1) or another power law (a constant factor ≠ 10)
    fails. Also reported: loss·η·t/‖ŵ‖², the theory's constant (→ 1 for GD)."""
    groups: dict[str, dict[str, Any]] = {}
    decades = last_decades(s.steps, s.window)
    for c in cs:
        factors = [c.estimate(c.runs["loss"], decade_factor, d) for d in decades]
        groups[c.key] = {
            "factor_per_decade": plain_estimates(factors),
            "loss_eta_t_over_w_hat_sq": at(c.t, c.values["loss"], s.steps) * c.lr * s.steps / c.w_hat_norm**2,
            "ok": approaches(10.0, factors[0], factors[-1]),
        }
    last = [g["factor_per_decade"]["value"][-1] for g in groups.values()]
    return grouped(
        "linear-loss-rate",
        "logistic loss on separable data falls as 1/t: loss(t)/loss(10t) → 10 (GD and SGD, fixed step)",
        groups,
        headline=f"loss(t)/loss(10t) = {span(last)} over the last decade (theory: 10)",
        meaning="Soudry et al. 2018 / Nacson et al. 2019: on separable data the loss "
        "of a fixed-step method goes to 0 like 1/t, with no floor",
        target=10.0,
        decades=decades,
        rule="on the last decade within noise of 10, or nearer to 10 than on the first decade of the "
        "window by more than the noise",
        note="a factor per decade is 10^(−slope) of a log-log least-squares fit over it; "
        + NOISE_NOTE
        + "; loss·η·t/‖ŵ‖² → 1 is the theory's constant",
    )


def norm_growth_claim(cs: list[Curve], s: LinearSettings) -> Claim:
    """Claim `linear-norm-growth` (Soudry et al. 2018, "The implicit bias of gradient
    descent on separable data"): w(t) = ŵ ln t + w̃ + o(1), so ‖w(10t)‖ − ‖w(t)‖ → ‖ŵ‖·ln 10.

    At finite t the same expansion fixes how far below the limit the growth may be: the part
    of w along ŵ grows by ‖ŵ‖ per unit of ln t and the rest stays bounded, so
    d‖w‖/d ln t = ‖ŵ‖·cos θ, θ the angle between w and ŵ, and cos θ = 1 − e²/2 with e the
    direction error ‖w/‖w‖ − ŵ/‖ŵ‖‖. As e falls, the growth over the last decade,
    r = (slope of ‖w‖ against log₁₀ t)/(‖ŵ‖ ln 10), lies in [1 − e₀²/2, 1] with e₀ the
    direction error at the decade's start: the tolerance is the run's own measured direction
    error, not a free number. A group holds when r is in that band within SIGNIFICANCE standard
    errors (SGD: median over seeds). A wrong coefficient (‖w‖ ~ a·ln t, a ≠ ‖ŵ‖) falls out of
    the band once |a/‖ŵ‖ − 1| > e₀²/2."""
    groups: dict[str, dict[str, Any]] = {}
    start = s.steps / 10
    for c in cs:
        target = c.w_hat_norm * np.log(10)
        r = c.estimate(c.runs["w_norm"] / target, decade_increment, start)
        e0 = c.estimate(c.runs["direction_error"], at, start)
        low = 1 - e0.value**2 / 2
        groups[c.key] = {
            "growth_over_w_hat_ln10": r.value,
            "stderr": r.stderr,
            "band": [low, 1.0],
            "direction_error_at_decade_start": e0.value,
            "ok": low - SIGNIFICANCE * r.stderr <= r.value <= 1 + SIGNIFICANCE * r.stderr,
        }
    return grouped(
        "linear-norm-growth",
        "‖w‖ grows like ‖ŵ‖·ln t: ‖w(10t)‖ − ‖w(t)‖ → ‖ŵ‖·ln 10, from below by the factor cos θ "
        "(θ the angle between w and ŵ)",
        groups,
        decade=[start, s.steps],
        headline=f"growth per decade / (‖ŵ‖ ln 10) = "
        f"{span([g['growth_over_w_hat_ln10'] for g in groups.values()], '.4g')} (theory: between 1 − e²/2 "
        f"and 1, e = {span([g['direction_error_at_decade_start'] for g in groups.values()])})",
        meaning="the weights diverge logarithmically, in the direction of the max-margin vector ŵ",
        rule="1 − e₀²/2 ≤ growth/(‖ŵ‖ ln 10) ≤ 1 on the last decade, within the noise, e₀ the "
        "direction error at its start (d‖w‖/d ln t = ‖ŵ‖ cos θ)",
        note=NOISE_NOTE,
    )


def _exponent_holds(exponents: list[Estimate]) -> bool:
    """An error ~ (ln t)^(−a) is O(1/ln t) as far as a finite run can tell: its exponent on the
    last decade is ≥ 1 within the noise. (Not "or tending to 1": a (ln t)^(−1/2) law with
    lower-order terms also drifts toward 1 from below, on its way to 1/2.)"""
    last = exponents[-1]
    return last.value + SIGNIFICANCE * last.stderr >= 1


def direction_claim(cs: list[Curve], s: LinearSettings) -> Claim:
    """Claim `linear-direction` (Soudry et al. 2018, "The implicit bias of gradient
    descent on separable data", Thm 3): the direction error e(t) = ‖w/‖w‖ − ŵ/‖ŵ‖‖ is
    O(1/ln t).

    Per run and each of the last `s.window` decades, the local exponent a of e ≈ c·(ln t)^(−a)
    (a least-squares fit of log e against log ln t; `rates.log_exponent`); O(1/ln t) means a ≥ 1,
    and the theory's 1 is the bound. A group holds when on the last decade a ≥ 1 within the
    noise. A slower law (a = 1/2, or a stalled error, a = 0) fails. (With w = ŵ ln t + w̃,
    e ≈ ‖w̃⊥‖/(‖ŵ‖ ln t + c) and a = 1 + O(−c/ln t) approaches 1 from above when c < 0, as
    for the small steps here; a large step could make c > 0 and fail this at finite t.)"""
    points = decade_points(s)
    decades = last_decades(s.steps, s.window)
    groups: dict[str, dict[str, Any]] = {}
    for c in cs:
        exps = [c.estimate(c.runs["direction_error"], log_exponent, d, 10 * d) for d in decades]
        err = [at(c.t, c.values["direction_error"], p) for p in points]
        groups[c.key] = {
            "exponent_a_per_decade": plain_estimates(exps),
            "error": err,
            "error_times_ln_t": [e * np.log(p) for e, p in zip(err, points, strict=True)],
            "ok": _exponent_holds(exps),
        }
    return grouped(
        "linear-direction",
        "w/‖w‖ → ŵ/‖ŵ‖ with direction error O(1/ln t): its exponent a in error ~ (ln t)^−a is ≥ 1",
        groups,
        decades=decades,
        steps=points,
        headline="error ~ (ln t)^−a over the last decade with a = "
        f"{span([g['exponent_a_per_decade']['value'][-1] for g in groups.values()])} (O(1/ln t) ⇔ a ≥ 1)",
        meaning="the implicit bias: the direction converges to the hard-margin SVM, slowly (as 1/ln t)",
        rule="on the last decade a ≥ 1 within the noise",
        note="a: minus the least-squares slope of log error against log ln t over a decade; " + NOISE_NOTE,
    )


def margin_claim(cs: list[Curve], s: LinearSettings) -> Claim:
    """Claim `linear-margin` (Soudry et al. 2018, "The implicit bias of gradient descent
    on separable data"): the normalized margin γ(t) = min_n y_n wᵀx_n/‖w‖ rises toward the
    max margin 1/‖ŵ‖, with the gap g = 1 − γ‖ŵ‖ = O(1/ln t) (w = ŵ ln t + w̃ + o(1) gives
    g ≈ (the ‖ŵ‖²-weighted mean of x̃ᵀw̃ over the support vectors − its minimum)/ln t ≥ 0).

    Holds for a group when at the last step 0 < γ‖ŵ‖ ≤ 1 (+1e-9, float64 rounding of ŵ: more
    would mean a margin above the maximum, a wrong ŵ) and the gap's local exponent a (as in
    `direction_claim`, g ~ (ln t)^(−a)) is ≥ 1 within the noise on the last decade. A margin
    that stalls below 1/‖ŵ‖ has a → 0 and fails."""
    points = decade_points(s)
    decades = last_decades(s.steps, s.window)
    groups: dict[str, dict[str, Any]] = {}
    for c in cs:
        gap = 1 - c.runs["margin"] * c.w_hat_norm
        exps = [c.estimate(gap, log_exponent, d, 10 * d) for d in decades]
        ratio = [at(c.t, c.values["margin"], p) * c.w_hat_norm for p in points]
        valid = bool(np.all(gap[:, -1] >= -1e-9)) and 0 < ratio[-1]
        groups[c.key] = {
            "margin_times_w_hat_norm": ratio,
            "gap_exponent_a_per_decade": plain_estimates(exps),
            "ok": valid and _exponent_holds(exps),
        }
    return grouped(
        "linear-margin",
        "the normalized margin min_n y_n wᵀx_n/‖w‖ rises toward the max margin 1/‖ŵ‖, its gap O(1/ln t)",
        groups,
        steps=points,
        decades=decades,
        headline=f"margin·‖ŵ‖ at the end = "
        f"{span([g['margin_times_w_hat_norm'][-1] for g in groups.values()])} (limit 1); gap ~ "
        f"(ln t)^−a, a = {span([g['gap_exponent_a_per_decade']['value'][-1] for g in groups.values()])}",
        meaning="the classifier's margin approaches the largest possible one",
        rule="0 < margin·‖ŵ‖ ≤ 1 (+1e-9) at the end, and the gap's exponent a ≥ 1 within the noise on "
        "the last decade",
        note=NOISE_NOTE,
    )


def linear_zero_error_claim(table: dict[str, np.ndarray], s: LinearSettings) -> Claim:
    """Claim `linear-zero-error` (Soudry et al. 2018; Nacson, Srebro & Soudry 2019): every
    run's training error reaches 0 and stays 0. Holds when, for every run, the error is 0 at
    every recorded step of the window the rate claims read (the last `s.window` decades, whose
    laws assume separated data; SGD may misclassify a point again early on)."""
    latest: dict[str, float] = {}
    for dataset, method, lr, seed in run_keys(table):
        rows = select(table, dataset=dataset, method=method, lr=lr, seed=seed)
        err, steps = table["train_error"][rows], table["step"][rows]
        wrong = np.flatnonzero(err != 0)
        if not len(wrong):
            since = float(steps[0])
        elif wrong[-1] + 1 < len(steps):
            since = float(steps[wrong[-1] + 1])
        else:
            since = np.inf
        latest[dataset] = max(latest.get(dataset, 0.0), since)
    window_start = s.steps / 10.0**s.window
    return decide(
        "linear-zero-error",
        "the training error reaches 0 and stays 0 (every run)",
        all(v <= window_start for v in latest.values()),
        headline="0 from step " + ", ".join(f"{v:,.0f} ({k})" for k, v in latest.items()),
        meaning="every fixed-step run separates the data and keeps it separated",
        zero_from_step=latest,
        steps=s.steps,
        runs=len(run_keys(table)),
        rule=f"0 at every recorded step from {window_start:,.0f} on (the last {s.window} decades, "
        "which the rate claims read)",
        note="per dataset, the latest step over its runs from which the training "
        "error is 0 at every recorded step (inf: not 0 at the end)",
    )


# Between a floor (loss factor per decade → 1) and the theory's 1/t (factor 10), the factor
# that is as near one as the other on a log scale: √10.
FLOOR_BOUNDARY = float(np.sqrt(10))


def sgd_floor_claim(table: dict[str, np.ndarray], s: LinearSettings) -> Claim:
    """Claim `linear-sgd-no-floor` (Nacson, Srebro & Soudry 2019, "Stochastic gradient
    descent on separable data: exact convergence with a fixed learning rate"): fixed-step
    SGD has no loss floor.

    For every SGD seed and each of the last `s.window` decades, the loss factor per decade
    (as in `loss_rate_claim`); a floor gives factors → 1, the theory 10. Holds when every
    seed's every factor is nearer 10 than 1 on a log scale, i.e. > √10 (`FLOOR_BOUNDARY`).
    Not applicable without SGD runs."""
    rows = select(table, method="sgd")
    if not rows.any():
        return decide(
            "linear-sgd-no-floor", "SGD with a fixed step has no loss floor", None, reason="no SGD runs"
        )
    worst: dict[str, float] = {}
    for dataset in dict.fromkeys(table["dataset"][rows].tolist()):
        for lr in sorted(set(table["lr"][rows].tolist())):
            group = rows & select(table, dataset=dataset, lr=lr)
            factors = [
                decade_factor(
                    table["step"][group & (table["seed"] == seed)],
                    table["loss"][group & (table["seed"] == seed)],
                    start,
                )
                for seed in np.unique(table["seed"][group])
                for start in last_decades(s.steps, s.window)
            ]
            worst[f"{dataset}/sgd/lr={lr:g}"] = float(np.min(factors))
    return decide(
        "linear-sgd-no-floor",
        "SGD with a fixed step has no loss floor: its loss keeps falling by a factor per decade",
        all(v > FLOOR_BOUNDARY for v in worst.values()),
        headline=f"smallest loss factor per decade over all seeds {min(worst.values()):.3g} "
        f"(a floor gives 1, the theory 10; the boundary is √10 = {FLOOR_BOUNDARY:.3g})",
        meaning="Nacson et al. 2019: constant-step SGD converges exactly, unlike the "
        "classical O(η) floor for non-separable problems",
        min_factor_per_decade=worst,
        decades=last_decades(s.steps, s.window),
        rule=f"every seed's factor > √10 on each of the last {s.window} decades: nearer the "
        "theory's 10 than a floor's 1 on a log scale",
        seeds=len(np.unique(table["seed"][rows])),
    )


def linear_claims(
    table: dict[str, np.ndarray], sets: dict[str, np.ndarray], s: LinearSettings
) -> list[Claim]:
    """The linear study's six claims, in report order: zero training error, the 1/t loss
    rate, ‖w‖ ~ ‖ŵ‖ ln t, the O(1/ln t) direction error, the rising margin and SGD's missing
    loss floor."""
    cs = curves(table, sets)
    return [
        linear_zero_error_claim(table, s),
        loss_rate_claim(cs, s),
        norm_growth_claim(cs, s),
        direction_claim(cs, s),
        margin_claim(cs, s),
        sgd_floor_claim(table, s),
    ]

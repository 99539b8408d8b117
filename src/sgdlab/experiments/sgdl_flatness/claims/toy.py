"""The 2-D part's claims (after Zhang, Liao, Rakhlin, Miranda, Golowich & Poggio 2017, "Theory
of deep learning IIb: optimization properties of SGD", as the report of Osipov et al. 2018
examined them), one function each from plain measured numbers: basin masses under GD and SGDL,
the report's reading of its histogram, the Boltzmann occupancy, and GD on Rosenbrock."""

from __future__ import annotations

import math

import numpy as np

from ....stats import slope
from ....toys import FLAT_SHARP, hessian_at, log_ratio_se
from ...base import Claim, decide, not_applicable
from ..measure.toy import LinearRegime, TallestBar, crossing, histogram, linear_regime, tallest_bar
from ..settings import ToySettings


def _row(runs: dict[str, np.ndarray], label: str) -> dict[str, float]:
    i = list(runs["label"]).index(label)
    return {k: (v[i].item() if hasattr(v[i], "item") else v[i]) for k, v in runs.items()}


def _mass(r: dict) -> dict:
    return {
        "flat": r["flat"],
        "flat_ci95": [r["flat_lo"], r["flat_hi"]],
        "sharp": r["sharp"],
        "sharp_ci95": [r["sharp_lo"], r["sharp_hi"]],
        "plateau": r["plateau"],
        "elsewhere": r["elsewhere"],
        "particles": r["particles"],
        "steps": r["steps"],
    }


def flat_wins(r: dict) -> bool:
    """The flat valley's 95 % mass interval lies wholly above the sharp minimum's."""
    return bool(r["flat_lo"] > r["sharp_hi"])


def gd_mass_claim(gd: dict, hessians: dict[str, list]) -> Claim:
    """Claim `2d/gd-mass` (Zhang et al. 2017: degenerate minima have larger basins): under GD
    the flat valley's 95 % Wilson interval of basin mass lies above the sharp minimum's.
    `gd` is the GD row of tables/toy_runs (masses and interval ends, particles, steps)."""
    return decide(
        "2d/gd-mass",
        "Under GD (γ' = 0) from uniform starts the flat valley collects more basin "
        "mass than the sharp minimum of the same depth",
        flat_wins(gd),
        headline=f"flat {gd['flat']:.1%} vs sharp {gd['sharp']:.1%} of {gd['particles']:,} runs",
        meaning="degenerate minima have larger basins of attraction, as Zhang et al. argue; the "
        "95% intervals do not overlap",
        **_mass(gd),
        hessians=hessians,
        tolerance="95% Wilson intervals of the two masses must not overlap (sampling error only)",
    )


def sgdl_mass_claim(per: dict[str, dict]) -> Claim:
    """Claim `2d/sgdl-mass`: `gd_mass_claim`'s comparison at every noisy setting (label →
    its row of tables/toy_runs); not applicable without noisy settings."""
    statement = (
        "Under SGDL at every noise level (γ' ∈ {1e-3, 1e-2, 1e-1}, decaying "
        "γ'/(1+t) as the report's code did and constant as in the paper) the flat valley collects "
        "more mass than the sharp minimum"
    )
    if not per:
        return not_applicable("2d/sgdl-mass", statement, "no noisy runs")
    wins = {label: flat_wins(r) for label, r in per.items()}
    worst = min(per, key=lambda lb: per[lb]["flat"] / max(per[lb]["sharp"], 1e-12))
    return decide(
        "2d/sgdl-mass",
        statement,
        all(wins.values()),
        headline=f"flat > sharp at {sum(wins.values())}/{len(wins)} settings; smallest margin: "
        f"{worst}: {per[worst]['flat']:.1%} vs {per[worst]['sharp']:.1%}",
        meaning="noise at these levels does not move mass from the flat basin to the sharp one",
        runs={label: _mass(r) for label, r in per.items()},
        flat_wins=wins,
        tolerance="per setting, 95% Wilson intervals of the two masses must not overlap",
    )


def report_sharp_claim(gd: dict, bar: TallestBar) -> Claim:
    """Claim `2d/report-sharp-popular`, the report's conclusion (Osipov et al. 2018) that the
    sharp minimum is more "popular" under SGD: decided by basin mass, holding only when the
    sharp minimum's 95 % interval lies above the flat valley's; the tallest histogram bar, which
    the report read, is reported beside it."""
    return decide(
        "2d/report-sharp-popular",
        "The report's conclusion: the sharp minimum is more “popular” "
        "than the flat one under SGD (it read this off the tallest histogram bar); decided here by "
        "basin mass",
        bool(gd["sharp_lo"] > gd["flat_hi"]),
        headline=f"tallest bar in the {bar.basin} ({bar.count} runs in one bin), but mass "
        f"flat {gd['flat']:.1%} vs sharp {gd['sharp']:.1%}",
        meaning="a point minimum piles its runs into one bin while the valley spreads its larger "
        "share along a line: peak height is not mass",
        tallest_bin_center=list(bar.center),
        tallest_bin_basin=bar.basin,
        tallest_bar_flat=bar.flat,
        tallest_bar_sharp=bar.sharp,
        bins_per_axis=bar.bins,
        flat_mass=gd["flat"],
        flat_ci95=[gd["flat_lo"], gd["flat_hi"]],
        sharp_mass=gd["sharp"],
        sharp_ci95=[gd["sharp_lo"], gd["sharp_hi"]],
        tolerance="holds only when the sharp mass's 95% Wilson interval lies above the flat one's",
    )


def toy_claims(
    runs: dict[str, np.ndarray], occ: dict[str, np.ndarray], final: dict[str, np.ndarray], s: ToySettings
) -> list[Claim]:
    """The flat/sharp claims (after Zhang, Liao, Rakhlin, Miranda, Golowich & Poggio 2017, "Theory
    of deep learning IIb: optimization properties of SGD", as the report of Osipov et al. 2018
    examined them), from basin masses with 95 % Wilson intervals: `gd_mass_claim`,
    `sgdl_mass_claim`, `report_sharp_claim`, then `boltzmann_claim` and
    `boltzmann_paper_levels_claim`."""
    gd = _row(runs, "gd")
    h_flat, h_sharp = hessian_at(FLAT_SHARP, 4.0, 5.0), hessian_at(FLAT_SHARP, 8.0, 5.0)
    hessians = {"flat valley (4, 5)": h_flat.tolist(), "sharp minimum (8, 5)": h_sharp.tolist()}
    noisy = [
        label for label, hot in zip(runs["label"], runs["hot"], strict=True) if label != "gd" and not hot
    ]
    counts, xe, ye = histogram(final, s)
    checks = boltzmann_checks(runs, occ, FLAT_SHARP.curvature)
    hot = {lb: c for lb, c in checks.items() if _row(runs, lb)["hot"]}
    paper = {lb: c for lb, c in checks.items() if not _row(runs, lb)["hot"]}
    return [
        gd_mass_claim(gd, hessians),
        sgdl_mass_claim({label: _row(runs, label) for label in noisy}),
        report_sharp_claim(gd, tallest_bar(counts, xe, ye)),
        boltzmann_claim(hot),
        boltzmann_paper_levels_claim(paper),
    ]


def ratio_check(r: dict, kappa: float) -> dict:
    """Measured flat/sharp occupancy ratio against the Boltzmann ratio, with errors."""
    n = r["particles"]
    measured = r["flat"] / r["sharp"] if r["sharp"] > 0 else math.inf
    predicted = r["boltzmann_flat"] / r["boltzmann_sharp"]
    se = log_ratio_se(r["flat"], r["sharp"], n)
    bias = r["lr"] * kappa / 2  # first-order Euler–Maruyama bias allowance
    rel = measured / predicted - 1 if math.isfinite(measured) else math.inf
    return {
        "temperature": r["temperature"],
        "measured_ratio": measured,
        "measured_log_se": se,
        "boltzmann_ratio": predicted,
        "quadrature_error": r["boltzmann_error"],
        "relative_difference": rel,
        "allowed": 3 * se + bias,
        "discretization_allowance": bias,
        "escape_exponent_dU_over_T": 1 / r["temperature"],  # escape time ∝ e^{ΔU/T}, ΔU = 1
        "steps": r["steps"],
        "lr": r["lr"],
        "noise": r["noise"],
        "matches": bool(abs(math.log(measured / predicted)) <= 3 * se + bias)
        if math.isfinite(measured)
        else False,
    }


def tv_distance(occ: dict[str, np.ndarray], r: dict, label: str) -> tuple[float, float]:
    """Total-variation distance of the occupancy from the Boltzmann masses, first and last record."""
    rows = occ["label"] == label
    steps = occ["step"][rows]
    target = {
        "flat valley": r["boltzmann_flat"],
        "sharp minimum": r["boltzmann_sharp"],
        "plateau": r["boltzmann_plateau"],
        "elsewhere": r["boltzmann_elsewhere"],
    }
    out = []
    for step in (steps.min(), steps.max()):
        sel = rows & (occ["step"] == step)
        out.append(
            0.5
            * sum(abs(f - target[b]) for b, f in zip(occ["basin"][sel], occ["fraction"][sel], strict=True))
        )
    return out[0], out[1]


def boltzmann_checks(
    runs: dict[str, np.ndarray], occ: dict[str, np.ndarray], kappa: float
) -> dict[str, dict]:
    """`ratio_check` and the first and last total-variation distance (`tv_distance`) of every
    constant-noise setting, by label."""
    checks = {}
    for lb, d in zip(runs["label"], runs["decay"], strict=True):
        if d != "none" or lb == "gd":
            continue
        r = _row(runs, lb)
        checks[lb] = ratio_check(r, kappa)
        checks[lb]["tv_start"], checks[lb]["tv_end"] = tv_distance(occ, r, lb)
    return checks


def boltzmann_claim(hot: dict[str, dict]) -> Claim:
    """Claim `2d/boltzmann` (Zhang et al. 2017: SGDL's stationary density is ∝ exp(−f/T),
    T = γ'²/(2η)), from the `boltzmann_checks` of the hot constant-noise runs: at every hot
    temperature the flat/sharp occupancy ratio matches the quadrature ratio,
    |log(measured/predicted)| ≤ 3·SE + ηκ/2 (`ratio_check`), and the total-variation
    distance to the Boltzmann masses is smaller at the end than at the start. Not applicable
    without hot runs."""
    statement = (
        "With constant noise at temperatures where the chain can mix (T = γ'²/2η "
        "comparable to the barrier ΔU = 1), the long-run occupancy approaches the Boltzmann "
        "prediction ∝ ∫_basin exp(−f/T): the flat/sharp ratio matches within 3 standard errors "
        "plus the ηκ/2 discretization allowance, and the distance to it shrinks"
    )
    if not hot:
        return not_applicable("2d/boltzmann", statement, "no constant-noise run at a mixing temperature")
    ok = {lb: bool(c["matches"] and c["tv_end"] < c["tv_start"]) for lb, c in hot.items()}
    parts = [
        f"T={c['temperature']:g}: flat/sharp {c['measured_ratio']:.2f} "
        f"(±{c['measured_log_se'] * c['measured_ratio']:.2f}) vs Boltzmann {c['boltzmann_ratio']:.2f}"
        for c in hot.values()
    ]
    return decide(
        "2d/boltzmann",
        statement,
        all(ok.values()),
        headline="; ".join(parts),
        meaning="SGDL's stationary law is the Boltzmann density (the paper's theoretical claim), "
        "and it prefers the degenerate minimum by its volume",
        checks=hot,
        matches=ok,
    )


def boltzmann_paper_levels_claim(paper: dict[str, dict]) -> Claim:
    """Claim `2d/boltzmann-paper-levels`: `boltzmann_claim`'s ratio test at the paper's constant
    noise levels γ' ≤ 0.1, where leaving a basin takes ∝ e^(ΔU/T) steps. Not applicable without
    such runs."""
    statement = (
        "At the paper's constant noise levels (γ' ≤ 0.1) the occupancy after the budget has reached "
        "the Boltzmann ratio"
    )
    if not paper:
        return not_applicable(
            "2d/boltzmann-paper-levels", statement, "no constant-noise run at the paper's levels"
        )
    hottest = max(paper, key=lambda lb: paper[lb]["temperature"])
    w = paper[hottest]
    return decide(
        "2d/boltzmann-paper-levels",
        statement,
        all(c["matches"] for c in paper.values()),
        headline=f"{hottest} (T={w['temperature']:.2g}): flat/sharp {w['measured_ratio']:.2f} vs "
        f"Boltzmann {w['boltzmann_ratio']:.3g}; escape time ∝ e^(ΔU/T) = "
        f"e^{w['escape_exponent_dU_over_T']:.0f}",
        meaning="at T = γ'²/2η ≪ ΔU the chain never leaves the basin it fell into: the masses "
        "are those of the basins of attraction, not Boltzmann's",
        checks=paper,
    )


def rosenbrock_rate_claim(steps: np.ndarray, median: np.ndarray, theory: LinearRegime, tol: float) -> Claim:
    """Claim `rosenbrock/rate`: GD's median distance to (1, 1) falls geometrically at the rate
    ρ = 1 − ηλ_min the Hessian at the minimum predicts, so the number of steps is set by the
    conditioning (one e-fold per 1/(ηλ_min) ≥ κ/2 steps), not by a budget.

    The log-rate is the least-squares slope of ln(median) against the step over the records
    with `theory.low` ≤ median ≤ `theory.high`; holds when |slope/ln ρ − 1| ≤ `theory.allowance`.
    Not applicable (premise: GD reached the linear regime) with fewer than 3 such records or a
    window spanning less than a factor 10 in distance."""
    statement = (
        "GD on Rosenbrock converges linearly at the rate its Hessian at the minimum predicts: near "
        "(1, 1) the median distance contracts by ρ = 1 − ηλ_min per step"
    )
    predicted = math.log(theory.rate)
    inside = (median >= theory.low) & (median <= theory.high)
    context = {
        "window": [theory.low, theory.high],
        "records_in_window": int(inside.sum()),
        "predicted_rate": theory.rate,
        "predicted_steps_per_e_fold": -1 / predicted,
        "eigenvalues": list(theory.eigenvalues),
        "condition_number": theory.condition_number,
        "lr": theory.lr,
        "steps_to_tol": crossing(steps, median, tol),
        "predicted_steps_to_tol_from_start": math.log(tol / float(median[0])) / predicted,
        "tol": tol,
    }
    if inside.sum() < 3 or median[inside].max() < 10 * median[inside].min():
        return not_applicable(
            "rosenbrock/rate",
            statement,
            f"the median distance spent fewer than 3 records, or less than a factor 10, between "
            f"{theory.low:.2g} and {theory.high:.2g} in {int(steps[-1]):,} steps: GD has not reached "
            f"the linear regime (final median {float(median[-1]):.3g})",
            **context,
        )
    rate = slope(steps[inside].astype(float), np.log(median[inside]))
    error = rate / predicted - 1
    return decide(
        "rosenbrock/rate",
        statement,
        abs(error) <= theory.allowance,
        headline=f"contraction per step {math.exp(rate):.7f} vs 1 − ηλ_min = {theory.rate:.7f} "
        f"(relative error of the log-rate {error:.1e}); one e-fold per {-1 / rate:,.0f} steps, κ = "
        f"{theory.condition_number:.0f}",
        meaning="the report's “bad results” on Rosenbrock are slow linear convergence set by the "
        "conditioning: any fixed budget below ~ln(d₀/tol)/(ηλ_min) steps stops short",
        measured_rate=math.exp(rate),
        measured_log_rate=rate,
        relative_error=error,
        allowance=theory.allowance,
        tolerance=f"|log-rate/ln ρ − 1| ≤ {theory.allowance:.2g}: the relative change of λ_min(H) "
        f"at distance {theory.high:g} from (1, 1) along the slow eigenvector",
        window_steps=[int(steps[inside].min()), int(steps[inside].max())],
        **context,
    )


def rosenbrock_stalls_claim(
    distance: np.ndarray, grad_norm: np.ndarray, theory: LinearRegime, tol: float
) -> Claim:
    """Claim `rosenbrock/no-local-minima`, against the report's explanation (Rosenbrock "has many
    local minima"): no run of GD stops anywhere but (1, 1). A run is stalled when its final
    distance is > `tol` while its gradient norm is < λ_min·tol/2, below anything a point at
    distance ≥ tol from the minimum has in the quadratic regime; a non-finite run also fails it.
    `distance`, `grad_norm`: each run's final values."""
    finite = np.isfinite(distance) & np.isfinite(grad_norm)
    away = finite & (distance > tol)
    threshold = theory.eigenvalues[0] * tol / 2
    stalled = away & (grad_norm < threshold)
    n = len(distance)
    return decide(
        "rosenbrock/no-local-minima",
        "GD on Rosenbrock stops only at its minimum (1, 1): no run ends stationary elsewhere "
        "(against the report's explanation that Rosenbrock “has many local minima”)",
        bool(finite.all() and not stalled.any()),
        headline=f"{int((finite & ~away).sum())}/{n} runs within {tol:g} of (1, 1) at the end, "
        f"{int(stalled.sum())} stalled elsewhere, {int((~finite).sum())} non-finite",
        meaning="Rosenbrock's only stationary point is (1, 1); the slowness is conditioning",
        runs=n,
        at_minimum=int((finite & ~away).sum()),
        away_and_moving=int((away & ~stalled).sum()),
        stalled=int(stalled.sum()),
        non_finite=int((~finite).sum()),
        stall_gradient=threshold,
        smallest_gradient_away=float(grad_norm[away].min()) if away.any() else None,
        largest_final_distance=float(distance[finite].max()) if finite.any() else None,
        tol=tol,
    )


def rosenbrock_claims(
    rosen: dict[str, np.ndarray], final: dict[str, np.ndarray], s: ToySettings
) -> list[Claim]:
    """The Rosenbrock claims (the Osipov et al. 2018 report's observation that SGD "doesn't
    converge" there, and its explanation): `rosenbrock_rate_claim` and `rosenbrock_stalls_claim`."""
    theory = linear_regime(s)
    return [
        rosenbrock_rate_claim(rosen["step"], rosen["median"], theory, s.rosen_tol),
        rosenbrock_stalls_claim(final["distance"], final["grad_norm"], theory, s.rosen_tol),
    ]

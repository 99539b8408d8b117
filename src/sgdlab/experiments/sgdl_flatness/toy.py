"""The 2-D part of `sgdl-flatness`: many SGD / SGDL runs on the flat/sharp landscape (basin
masses with confidence intervals, the report's histogram, occupancy against the Boltzmann
prediction) and GD on Rosenbrock (its linear rate against the Hessian's prediction, and
whether any run stalls away from (1, 1)). Each claim is one function of plain measured numbers.

Tables: toy_runs (one row per noise setting: masses, CIs, Boltzmann masses), toy_occupancy
(one row per setting × recorded step × basin), toy_final (the GD run's final positions, for
the histogram), rosenbrock (distance quantiles per recorded step), rosenbrock_final (each
run's final distance and gradient norm)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ...toys import (
    FLAT_SHARP,
    ROSENBROCK,
    Dynamics,
    boltzmann_masses,
    hessian_at,
    log_ratio_se,
    simulate,
    uniform_starts,
    wilson,
)
from ..base import Claim, decide, not_applicable
from .settings import ToySettings

FLAT, SHARP, PLATEAU = 0, 1, 2


@dataclass(frozen=True)
class Setting:
    """One particle run: a label, its dynamics, its budget and whether it is a Boltzmann check."""

    label: str
    dynamics: Dynamics
    steps: int
    particles: int
    hot: bool = False


def settings(s: ToySettings) -> list[Setting]:
    """The particle runs: GD (γ' = 0), decaying γ'/(1 + t) and constant γ' SGDL at every
    noise level, all at step `s.lr`, and the hot constant-noise runs at temperatures T with
    γ' = √(2ηT) at step `s.hot_lr` (the Boltzmann check)."""
    out = [Setting("gd", Dynamics(s.lr, 0.0, radius=s.radius, center=s.center), s.steps, s.particles)]
    for noise in s.noises:
        if noise == 0:
            continue
        for decay in ("inverse", "none"):
            label = f"{'decaying' if decay == 'inverse' else 'constant'} γ'={noise:g}"
            out.append(Setting(label, Dynamics(s.lr, noise, decay, s.radius, s.center), s.steps, s.particles))
    for t in s.hot_temperatures:
        noise = math.sqrt(2 * s.hot_lr * t)
        out.append(
            Setting(
                f"constant T={t:g}",
                Dynamics(s.hot_lr, noise, "none", s.radius, s.center),
                s.hot_steps,
                s.hot_particles or s.particles,
                hot=True,
            )
        )
    return out


def run_setting(st: Setting, s: ToySettings, index: int):
    """Simulate one setting on the flat/sharp landscape from U(box) starts in float32 (seed
    `s.seed`·1000 + `index`), recording the basin occupancy about `s.records` times."""
    gen = torch.Generator().manual_seed(s.seed * 1000 + index)
    x, y = uniform_starts(st.particles, s.box, gen, torch.float32)
    every = max(1, st.steps // s.records)
    return simulate(FLAT_SHARP, x, y, st.dynamics, st.steps, gen, record_every=every)


def simulate_all(s: ToySettings, log) -> dict[str, dict]:  # noqa: ANN001
    """Run every setting; returns the tables as columns."""
    runs: dict[str, list] = {
        k: []
        for k in (
            "label",
            "noise",
            "decay",
            "lr",
            "temperature",
            "steps",
            "particles",
            "hot",
            "seconds",
            "flat",
            "sharp",
            "plateau",
            "elsewhere",
            "flat_lo",
            "flat_hi",
            "sharp_lo",
            "sharp_hi",
            "boltzmann_flat",
            "boltzmann_sharp",
            "boltzmann_plateau",
            "boltzmann_elsewhere",
            "boltzmann_error",
        )
    }
    occ: dict[str, list] = {"label": [], "step": [], "basin": [], "fraction": []}
    final: dict[str, np.ndarray] = {}
    for i, st in enumerate(settings(s)):
        t0 = time.perf_counter()
        sim = run_setting(st, s, i)
        seconds = time.perf_counter() - t0
        log(f"particles: {st.label}: {st.particles:,} × {st.steps:,} steps in {seconds:.1f} s")
        end = sim.occupancy[-1]
        n = st.particles
        d = st.dynamics
        t = d.temperature if d.decay == "none" and d.noise > 0 else math.nan
        bm = boltzmann_masses(FLAT_SHARP, t, s.center, s.radius, s.quadrature) if t == t else None
        row = {
            "label": st.label,
            "noise": d.noise,
            "decay": d.decay,
            "lr": d.lr,
            "temperature": t,
            "steps": st.steps,
            "particles": n,
            "hot": st.hot,
            "seconds": seconds,
            "flat": end[FLAT],
            "sharp": end[SHARP],
            "plateau": end[PLATEAU],
            "elsewhere": end[3],
            "flat_lo": wilson(end[FLAT], n)[0],
            "flat_hi": wilson(end[FLAT], n)[1],
            "sharp_lo": wilson(end[SHARP], n)[0],
            "sharp_hi": wilson(end[SHARP], n)[1],
        }
        for j, name in enumerate(("flat", "sharp", "plateau", "elsewhere")):
            row[f"boltzmann_{name}"] = bm.masses[j] if bm is not None else math.nan
        row["boltzmann_error"] = float(bm.error.max()) if bm is not None else math.nan
        for k, v in row.items():
            runs[k].append(v)
        for r, step in enumerate(sim.steps):
            for b, name in enumerate(sim.basins):
                occ["label"].append(st.label)
                occ["step"].append(int(step))
                occ["basin"].append(name)
                occ["fraction"].append(float(sim.occupancy[r, b]))
        if st.label == "gd":
            final = {"x": sim.x.numpy(), "y": sim.y.numpy()}
    return {"toy_runs": runs, "toy_occupancy": occ, "toy_final": final}


def rosenbrock_marks(total: int, linear: int) -> list[int]:
    """The recorded steps of the Rosenbrock runs: 40 log-spaced ones (the early, curved phase)
    and `linear` evenly spaced ones (the geometric phase whose rate the claim fits), up to `total`."""
    logs = {int(v) for v in np.geomspace(1, total, 40).astype(int)}
    return sorted(logs | {round(total * k / linear) for k in range(1, linear + 1)})


def simulate_rosenbrock(s: ToySettings) -> dict[str, dict[str, Any]]:
    """GD on Rosenbrock from `s.rosen_particles` uniform starts for `s.rosen_steps` steps in
    float64: tables `rosenbrock` (distance quantiles to (1, 1) at `rosenbrock_marks`) and
    `rosenbrock_final` (each run's final distance and gradient norm)."""
    gen = torch.Generator().manual_seed(s.seed)
    x, y = uniform_starts(s.rosen_particles, s.rosen_box, gen)
    table: dict[str, list] = {"step": [], "median": [], "q10": [], "q90": [], "finite": [], "at_minimum": []}
    done = 0
    dyn = Dynamics(s.rosen_lr, 0.0)
    for mark in [0, *rosenbrock_marks(s.rosen_steps, s.rosen_records)]:
        if mark > done:
            sim = simulate(ROSENBROCK, x, y, dyn, mark - done, gen)
            x, y, done = sim.x, sim.y, mark
        dist = torch.hypot(x - 1, y - 1)
        finite = torch.isfinite(dist)
        d = dist[finite].numpy()
        table["step"].append(mark)
        table["median"].append(float(np.median(d)) if len(d) else math.nan)
        table["q10"].append(float(np.quantile(d, 0.1)) if len(d) else math.nan)
        table["q90"].append(float(np.quantile(d, 0.9)) if len(d) else math.nan)
        table["finite"].append(float(finite.double().mean()))
        table["at_minimum"].append(float((dist < s.rosen_tol).double().mean()))
    gx, gy = ROSENBROCK.gradient(x.clone(), y.clone())
    final = {"distance": torch.hypot(x - 1, y - 1).numpy(), "grad_norm": torch.hypot(gx, gy).numpy()}
    return {"rosenbrock": table, "rosenbrock_final": final}


def histogram(final: dict[str, np.ndarray], s: ToySettings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The report's picture: counts of final positions in bins over the start box."""
    x0, x1, y0, y1 = s.box
    return np.histogram2d(final["x"], final["y"], bins=s.bins, range=[[x0, x1], [y0, y1]])


@dataclass(frozen=True)
class TallestBar:
    """What the report read off its histogram of GD's final positions: the tallest bar's
    centre and basin, and the tallest bar inside each of the two minima's basins."""

    center: tuple[float, float]
    basin: str
    count: int
    flat: float  # tallest bar inside the flat valley's basin
    sharp: float  # tallest bar inside the sharp minimum's basin
    bins: int


def tallest_bar(counts: np.ndarray, xe: np.ndarray, ye: np.ndarray) -> TallestBar:
    """The tallest bar of the histogram `counts` (bin edges `xe`, `ye`) and the tallest bar in
    each minimum's basin, classified at the bin centres."""
    classify = FLAT_SHARP.classify
    if classify is None:
        raise ValueError("the flat/sharp landscape has no basin classifier")
    i, j = np.unravel_index(np.argmax(counts), counts.shape)
    cx, cy = float((xe[i] + xe[i + 1]) / 2), float((ye[j] + ye[j + 1]) / 2)
    gx, gy = np.meshgrid((xe[:-1] + xe[1:]) / 2, (ye[:-1] + ye[1:]) / 2, indexing="ij")
    labels = classify(torch.tensor(gx), torch.tensor(gy)).numpy()
    top = {b: float(counts[labels == b].max()) if (labels == b).any() else 0.0 for b in (FLAT, SHARP)}
    basin = FLAT_SHARP.basins[int(classify(torch.tensor([cx]), torch.tensor([cy]))[0])]
    return TallestBar((cx, cy), basin, int(counts.max()), top[FLAT], top[SHARP], counts.shape[0])


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


@dataclass(frozen=True)
class LinearRegime:
    """GD's theory near Rosenbrock's minimum θ* = (1, 1): with η < 2/λ_max the error along the
    slow eigenvector of H(θ*) contracts by ρ = 1 − ηλ_min per step, the fast one by |1 − ηλ_max|,
    so ‖θ_t − θ*‖ ∝ ρ^t once the fast part has died out. The regime the rate is fitted in:
    distances between `low` (above the float64 floor) and `high` (where H still is H(θ*)), and
    the relative change of λ_min over the ball of radius `high`, the rate's allowance."""

    lr: float
    eigenvalues: tuple[float, float]  # (λ_min, λ_max) of H(θ*)
    low: float
    high: float
    allowance: float

    @property
    def rate(self) -> float:
        """ρ = 1 − ηλ_min, the predicted contraction per step."""
        return 1 - self.lr * self.eigenvalues[0]

    @property
    def condition_number(self) -> float:
        """κ = λ_max/λ_min of H(θ*)."""
        return self.eigenvalues[1] / self.eigenvalues[0]


def linear_regime(s: ToySettings) -> LinearRegime:
    """The `LinearRegime` of GD at step `s.rosen_lr`. The window's top is `s.rosen_linear_radius`;
    its bottom is `s.rosen_floor_margin` × the float64 floor ε·κ (where rounding in ∇f, of size
    ε·λ_max·‖θ*‖, matches the slow gradient λ_min·d). Once the fast part has died out GD moves
    along the slow eigenvector v of H(θ*), so the allowance is the larger relative change of
    λ_min(H) at θ* ± high·v (the first-order change of the rate across the window)."""
    evals, evecs = torch.linalg.eigh(hessian_at(ROSENBROCK, 1.0, 1.0))
    lam_min, lam_max = float(evals[0]), float(evals[1])
    high = s.rosen_linear_radius
    vx, vy = float(evecs[0, 0]), float(evecs[1, 0])
    changes = [
        abs(
            float(
                torch.linalg.eigvalsh(hessian_at(ROSENBROCK, 1 + sign * high * vx, 1 + sign * high * vy))[0]
            )
            / lam_min
            - 1
        )
        for sign in (-1.0, 1.0)
    ]
    low = s.rosen_floor_margin * float(np.finfo(np.float64).eps) * lam_max / lam_min
    return LinearRegime(s.rosen_lr, (lam_min, lam_max), low, high, max(changes))


def crossing(steps: np.ndarray, values: np.ndarray, level: float) -> float:
    """The first step at which the decreasing series `values` falls to `level`, interpolated
    log-linearly between records (nan if it never does)."""
    below = np.flatnonzero(values <= level)
    if not len(below):
        return math.nan
    k = int(below[0])
    if k == 0:
        return float(steps[0])
    a, b = math.log(values[k - 1]), math.log(values[k])
    return float(steps[k - 1] + (steps[k] - steps[k - 1]) * (a - math.log(level)) / (a - b))


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
    slope = float(np.polyfit(steps[inside].astype(float), np.log(median[inside]), 1)[0])
    error = slope / predicted - 1
    return decide(
        "rosenbrock/rate",
        statement,
        abs(error) <= theory.allowance,
        headline=f"contraction per step {math.exp(slope):.7f} vs 1 − ηλ_min = {theory.rate:.7f} "
        f"(relative error of the log-rate {error:.1e}); one e-fold per {-1 / slope:,.0f} steps, κ = "
        f"{theory.condition_number:.0f}",
        meaning="the report's “bad results” on Rosenbrock are slow linear convergence set by the "
        "conditioning: any fixed budget below ~ln(d₀/tol)/(ηλ_min) steps stops short",
        measured_rate=math.exp(slope),
        measured_log_rate=slope,
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

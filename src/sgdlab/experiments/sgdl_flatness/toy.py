"""The 2-D part of `sgdl-flatness`: many SGD / SGDL runs on the flat/sharp landscape (basin
masses with confidence intervals, the report's histogram, occupancy against the Boltzmann
prediction) and on Rosenbrock (distance to (1, 1) after the budget, and why).

Tables: toy_runs (one row per noise setting: masses, CIs, Boltzmann masses), toy_occupancy
(one row per setting × recorded step × basin), toy_final (the GD run's final positions, for
the histogram), rosenbrock (distance quantiles per recorded step)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from ...toys import (
    FLAT_SHARP,
    ROSENBROCK,
    Dynamics,
    boltzmann_masses,
    condition_number,
    hessian_at,
    log_ratio_se,
    simulate,
    uniform_starts,
    wilson,
)
from ..base import Claim, decide
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


def simulate_rosenbrock(s: ToySettings) -> dict[str, list]:
    """GD on Rosenbrock for rosen_factor × the budget, distance quantiles recorded on a log grid."""
    gen = torch.Generator().manual_seed(s.seed)
    x, y = uniform_starts(s.rosen_particles, s.rosen_box, gen)
    total = s.rosen_steps * s.rosen_factor
    marks = sorted(
        {int(v) for v in np.unique(np.geomspace(1, total, 40).astype(int))} | {s.rosen_steps, total}
    )
    table: dict[str, list] = {"step": [], "median": [], "q10": [], "q90": [], "finite": [], "at_minimum": []}
    done = 0
    dyn = Dynamics(s.rosen_lr, 0.0)
    for mark in [0] + marks:
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
    table["final_grad_norm_min"] = [float(torch.hypot(gx, gy)[torch.isfinite(gx)].min())] * len(table["step"])
    return table


def histogram(final: dict[str, np.ndarray], s: ToySettings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The report's picture: counts of final positions in bins over the start box."""
    x0, x1, y0, y1 = s.box
    return np.histogram2d(final["x"], final["y"], bins=s.bins, range=[[x0, x1], [y0, y1]])


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


def toy_claims(
    runs: dict[str, np.ndarray], occ: dict[str, np.ndarray], final: dict[str, np.ndarray], s: ToySettings
) -> list[Claim]:
    """The flat/sharp claims (after Zhang, Liao, Rakhlin, Miranda, Golowich & Poggio 2017, "Theory
    of deep learning IIb: optimization properties of SGD", as the report of Osipov et al. 2018
    examined them), from basin masses with 95 % Wilson intervals:

    - `2d/gd-mass`: under GD the flat valley's mass interval lies above the sharp minimum's.
    - `2d/sgdl-mass`: the same at every noisy (decaying and constant) setting.
    - `2d/report-sharp-popular`: the report's conclusion, sharp mass > flat mass under GD
      (the tallest histogram bar is reported beside it).

    Plus `boltzmann_claims`."""
    claims = []
    gd = _row(runs, "gd")
    kappa = FLAT_SHARP.curvature
    h_flat, h_sharp = hessian_at(FLAT_SHARP, 4.0, 5.0), hessian_at(FLAT_SHARP, 8.0, 5.0)
    hessians = {"flat valley (4, 5)": h_flat.tolist(), "sharp minimum (8, 5)": h_sharp.tolist()}
    claims.append(
        decide(
            "2d/gd-mass",
            "Under GD (γ' = 0) from uniform starts the flat valley collects more basin "
            "mass than the sharp minimum of the same depth",
            gd["flat_lo"] > gd["sharp_hi"],
            headline=f"flat {gd['flat']:.1%} vs sharp {gd['sharp']:.1%} of {gd['particles']:,} runs",
            meaning="degenerate minima have larger basins of attraction, as Zhang et al. argue; the "
            "95% intervals do not overlap",
            **_mass(gd),
            hessians=hessians,
        )
    )

    noisy = [
        label for label, hot in zip(runs["label"], runs["hot"], strict=True) if label != "gd" and not hot
    ]
    per = {label: _mass(_row(runs, label)) for label in noisy}
    wins = {label: m["flat_ci95"][0] > m["sharp_ci95"][1] for label, m in per.items()}
    worst = min(noisy, key=lambda lb: per[lb]["flat"] / max(per[lb]["sharp"], 1e-12)) if noisy else None
    claims.append(
        decide(
            "2d/sgdl-mass",
            "Under SGDL at every noise level (γ' ∈ {1e-3, 1e-2, 1e-1}, decaying "
            "γ'/(1+t) as the report's code did and constant as in the paper) the flat valley collects "
            "more mass than the sharp minimum",
            all(wins.values()) if wins else None,
            headline=(
                f"flat > sharp at {sum(wins.values())}/{len(wins)} settings; smallest margin: "
                f"{worst}: {per[worst]['flat']:.1%} vs {per[worst]['sharp']:.1%}"
            )
            if worst
            else "",
            meaning="noise at these levels does not move mass from the flat basin to the sharp one",
            runs=per,
            flat_wins=wins,
            reason="" if wins else "no noisy runs",
        )
    )

    counts, xe, ye = histogram(final, s)
    i, j = np.unravel_index(np.argmax(counts), counts.shape)
    cx, cy = (xe[i] + xe[i + 1]) / 2, (ye[j] + ye[j + 1]) / 2
    classify = FLAT_SHARP.classify
    if classify is None:
        raise ValueError("the flat/sharp landscape has no basin classifier")
    tallest_in = FLAT_SHARP.basins[int(classify(torch.tensor([cx]), torch.tensor([cy]))[0])]
    labels = classify(
        torch.tensor(np.meshgrid((xe[:-1] + xe[1:]) / 2, (ye[:-1] + ye[1:]) / 2, indexing="ij")[0]),
        torch.tensor(np.meshgrid((xe[:-1] + xe[1:]) / 2, (ye[:-1] + ye[1:]) / 2, indexing="ij")[1]),
    ).numpy()
    top_flat = float(counts[labels == FLAT].max()) if (labels == FLAT).any() else 0.0
    top_sharp = float(counts[labels == SHARP].max()) if (labels == SHARP).any() else 0.0
    claims.append(
        decide(
            "2d/report-sharp-popular",
            "The report's conclusion: the sharp minimum is more “popular” "
            "than the flat one under SGD (it read this off the tallest histogram bar); decided here by "
            "basin mass",
            gd["sharp"] > gd["flat"],
            headline=f"tallest bar in the {tallest_in} ({int(counts.max())} runs in one bin), but mass "
            f"flat {gd['flat']:.1%} vs sharp {gd['sharp']:.1%}",
            meaning="a point minimum piles its runs into one bin while the valley spreads its larger "
            "share along a line: peak height is not mass",
            tallest_bin_center=[cx, cy],
            tallest_bin_basin=tallest_in,
            tallest_bar_flat=top_flat,
            tallest_bar_sharp=top_sharp,
            bins_per_axis=s.bins,
            flat_mass=gd["flat"],
            sharp_mass=gd["sharp"],
        )
    )

    claims += boltzmann_claims(runs, occ, kappa)
    return claims


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


def boltzmann_claims(runs: dict[str, np.ndarray], occ: dict[str, np.ndarray], kappa: float) -> list[Claim]:
    """The Boltzmann claims of the constant-noise runs, whose stationary density is
    ∝ exp(−f/T) with T = γ'²/(2η) (Zhang et al. 2017):

    - `2d/boltzmann` (hot runs): the flat/sharp occupancy ratio matches the quadrature
      ratio, |log(measured/predicted)| ≤ 3·SE + ηκ/2 (`ratio_check`), and the total-variation
      distance to the Boltzmann masses is smaller at the end than at the start.
    - `2d/boltzmann-paper-levels`: the same ratio test at the paper's levels γ' ≤ 0.1,
      where leaving a basin takes ∝ e^(ΔU/T) steps."""
    claims = []
    const = [
        lb
        for lb, d, hot in zip(runs["label"], runs["decay"], runs["hot"], strict=True)
        if d == "none" and lb != "gd"
    ]
    hot = [lb for lb in const if _row(runs, lb)["hot"]]
    paper = [lb for lb in const if not _row(runs, lb)["hot"]]
    checks = {}
    for lb in const:
        r = _row(runs, lb)
        c = ratio_check(r, kappa)
        c["tv_start"], c["tv_end"] = tv_distance(occ, r, lb)
        checks[lb] = c
    if hot:
        ok = all(checks[lb]["matches"] and checks[lb]["tv_end"] < checks[lb]["tv_start"] for lb in hot)
        first = checks[hot[0]]
        claims.append(
            decide(
                "2d/boltzmann",
                "With constant noise at temperatures where the chain can mix (T = γ'²/2η "
                "comparable to the barrier ΔU = 1), the long-run occupancy approaches the Boltzmann "
                "prediction ∝ ∫_basin exp(−f/T): the flat/sharp ratio matches within 3 standard errors "
                "plus the ηκ/2 discretization allowance, and the distance to it shrinks",
                ok,
                headline=f"T={first['temperature']:g}: flat/sharp {first['measured_ratio']:.2f} "
                f"(±{first['measured_log_se'] * first['measured_ratio']:.2f}) vs Boltzmann "
                f"{first['boltzmann_ratio']:.2f}",
                meaning="SGDL's stationary law is the Boltzmann density (the paper's theoretical claim), "
                "and it prefers the degenerate minimum by its volume",
                checks={lb: checks[lb] for lb in hot},
            )
        )
    if paper:
        ok = all(checks[lb]["matches"] for lb in paper)
        hottest = max(paper, key=lambda lb: checks[lb]["temperature"])
        w = checks[hottest]
        claims.append(
            decide(
                "2d/boltzmann-paper-levels",
                "At the paper's constant noise levels (γ' ≤ 0.1) the "
                "occupancy after the budget has reached the Boltzmann ratio",
                ok,
                headline=f"{hottest} (T={w['temperature']:.2g}): flat/sharp {w['measured_ratio']:.2f} vs "
                f"Boltzmann {w['boltzmann_ratio']:.3g}; "
                f"escape time ∝ e^(ΔU/T) = e^{w['escape_exponent_dU_over_T']:.0f}",
                meaning="at T = γ'²/2η ≪ ΔU the chain never leaves the basin it fell into: the masses "
                "are those of the basins of attraction, not Boltzmann's",
                checks={lb: checks[lb] for lb in paper},
            )
        )
    return claims


def rosenbrock_claims(rosen: dict[str, np.ndarray], s: ToySettings) -> list[Claim]:
    """The Rosenbrock claims (the Osipov et al. 2018 report's observation and its
    explanation):

    - `rosenbrock/budget`: GD's median distance to (1, 1) after the budget is ≤ `s.rosen_tol`.
    - `rosenbrock/ill-conditioned`: the Hessian at (1, 1) has condition number > 10³ and
      `s.rosen_factor`× more steps shrink the median distance at least 2×."""
    steps = rosen["step"]
    at = int(np.flatnonzero(steps == s.rosen_steps)[0])
    end = len(steps) - 1
    kappa = condition_number(ROSENBROCK, 1.0, 1.0)
    ev = torch.linalg.eigvalsh(hessian_at(ROSENBROCK, 1.0, 1.0)).tolist()
    contraction = 1 - s.rosen_lr * ev[0]
    predicted = math.log(s.rosen_tol / max(float(rosen["median"][0]), 1e-12)) / math.log(contraction)
    median_budget, median_end = float(rosen["median"][at]), float(rosen["median"][end])
    reached = float(rosen["at_minimum"][at])
    claims = [
        decide(
            "rosenbrock/budget",
            f"GD reaches the minimum (1, 1) of Rosenbrock within the budget of "
            f"{s.rosen_steps:,} steps (median distance ≤ {s.rosen_tol:g})",
            median_budget <= s.rosen_tol,
            headline=f"median distance {median_budget:.3g} after {s.rosen_steps:,} steps; κ = {kappa:.0f}",
            meaning="the report's observation that SGD does not converge on Rosenbrock, measured",
            median_distance=median_budget,
            q10=float(rosen["q10"][at]),
            q90=float(rosen["q90"][at]),
            fraction_within_tol=reached,
            finite_fraction=float(rosen["finite"][at]),
            lr=s.rosen_lr,
            particles=s.rosen_particles,
            hessian_at_minimum=hessian_at(ROSENBROCK, 1.0, 1.0).tolist(),
            condition_number=kappa,
        )
    ]
    shrink = median_budget / median_end if median_end > 0 else math.inf
    claims.append(
        decide(
            "rosenbrock/ill-conditioned",
            "The slow approach is ill-conditioning, not local minima (the "
            "report's explanation): Rosenbrock's only stationary point is (1, 1), its Hessian there has "
            f"condition number > 10³, and {s.rosen_factor}× more steps bring the median distance down "
            "at least 2×",
            kappa > 1e3 and shrink >= 2,
            headline=f"κ = {kappa:.0f}; median distance {median_budget:.3g} → {median_end:.3g} after "
            f"{s.rosen_factor}× the steps",
            meaning=f"with η < 2/λ_max the slow direction contracts by 1 − ηλ_min = {contraction:.6f} "
            f"per step: ~{predicted:,.0f} steps to reach {s.rosen_tol:g} from the starts",
            condition_number=kappa,
            eigenvalues=ev,
            median_at_budget=median_budget,
            median_at_end=median_end,
            shrink_factor=shrink,
            steps_end=int(steps[end]),
            predicted_steps_to_tol=predicted,
            fraction_within_tol_end=float(rosen["at_minimum"][end]),
            smallest_final_gradient_norm=float(rosen["final_grad_norm_min"][0]),
        )
    )
    return claims

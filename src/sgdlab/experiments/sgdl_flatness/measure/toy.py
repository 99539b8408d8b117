"""The 2-D part's measurements: many SGD / SGDL runs on the flat/sharp landscape advanced
together (basin masses with 95 % Wilson intervals, the occupancy over time, the Boltzmann
masses by quadrature, the GD runs' final positions for the report's histogram) and GD on
Rosenbrock (distance quantiles to (1, 1) over time, each run's final distance and gradient
norm), with the theory GD's rate there is checked against (`LinearRegime`).

Tables: toy_runs (one row per noise setting: masses, CIs, Boltzmann masses), toy_occupancy
(one row per setting × recorded step × basin), toy_final (the GD run's final positions, for
the histogram), rosenbrock (distance quantiles per recorded step), rosenbrock_final (each
run's final distance and gradient norm)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from ....toys import (
    FLAT_SHARP,
    ROSENBROCK,
    Dynamics,
    boltzmann_masses,
    hessian_at,
    simulate,
    uniform_starts,
    wilson,
)
from ..settings import ToySettings

FLAT, SHARP, PLATEAU = 0, 1, 2


@dataclass(frozen=True)
class Setting:
    """One particle run: a label, its dynamics, its budget and whether it is a Boltzmann check."""

    label: str
    dynamics: Dynamics
    steps: int
    particles: int
    hot: bool = False


def particle_settings(s: ToySettings) -> list[Setting]:
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


def simulate_all(s: ToySettings, log: Callable[[str], None]) -> dict[str, dict]:
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
    for i, st in enumerate(particle_settings(s)):
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

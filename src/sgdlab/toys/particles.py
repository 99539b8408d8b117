"""Many independent SGD / SGDL runs on a 2-D landscape, advanced together as tensor operations.

Each particle follows SGDL (Zhang, Liao, Rakhlin, Miranda, Golowich & Poggio 2017, eq. (2) of
the student report):

    θ_{t+1} = Π_K( θ_t − η ∇f(θ_t) + γ'_t W_t ),   W_t ~ N(0, I₂),   γ'_t = γ'  or  γ'/(1 + t)

with the exact gradient (the report's code used a finite difference that shifted both
coordinates at once, which is not ∇f), and Π_K the optional projection onto the disc
‖θ − c‖ ≤ R. γ' = 0 is gradient descent (a deterministic landscape has no minibatch noise).
Constant noise is Euler–Maruyama for dθ = −∇f dt + √(2T) dB with dt = η and T = γ'²/(2η),
whose stationary density on K is ∝ exp(−f/T) (see `boltzmann`).

`simulate` records the basin occupancy (fraction of particles in each basin) every
`record_every` steps; `simulate_loop` is the per-particle Python reference it is tested and
benchmarked against (same noise, same arithmetic).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .landscapes import Landscape


@dataclass(frozen=True)
class Dynamics:
    """One SGDL update rule for `simulate`: θ ← Π_K(θ − η∇f(θ) + γ'_t W_t) with η = `lr`,
    γ' = `noise` (constant, or γ'/(1 + t) with `decay="inverse"`) and Π_K the projection onto
    the disc of `radius` around `center` (no projection when `radius` is None)."""

    lr: float = 0.1
    noise: float = 0.0  # γ'
    decay: str = "none"  # none | inverse: γ'_t = γ'/(1 + t)
    radius: float | None = None  # Π_K onto the disc of this radius around `center` (None: off)
    center: tuple[float, float] = (5.0, 5.0)

    def noise_at(self, t: int) -> float:
        """γ'_t, the noise scale of step t: γ' (constant) or γ'/(1 + t) (`inverse`)."""
        return self.noise / (1.0 + t) if self.decay == "inverse" else self.noise

    @property
    def temperature(self) -> float:
        """T = γ'²/(2η) of constant-noise SGDL (the Langevin temperature)."""
        return self.noise**2 / (2 * self.lr)


@dataclass
class Simulation:
    """The result of `simulate`: the particles' final positions and their basin occupancy
    (fraction per basin, in the order of `basins`) at the recorded steps."""

    x: torch.Tensor  # [n] final positions
    y: torch.Tensor
    steps: np.ndarray  # [R] recorded steps
    occupancy: np.ndarray  # [R, B] fraction of particles in each basin
    basins: tuple[str, ...]


def uniform_starts(
    n: int,
    box: tuple[float, float, float, float],
    generator: torch.Generator,
    dtype: torch.dtype = torch.float64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """N starts uniform on [x0, x1] × [y0, y1]."""
    x0, x1, y0, y1 = box
    u = torch.rand(2, n, generator=generator, dtype=dtype)
    return x0 + (x1 - x0) * u[0], y0 + (y1 - y0) * u[1]


def _project(x: torch.Tensor, y: torch.Tensor, center: tuple[float, float], radius: float) -> None:
    """Π_K in place: points farther than `radius` from `center` moved radially onto the circle."""
    cx, cy = center
    dx, dy = x - cx, y - cy
    factor = torch.clamp(radius / torch.sqrt(dx * dx + dy * dy).clamp_min(1e-300), max=1.0)
    x.copy_(cx + dx * factor)
    y.copy_(cy + dy * factor)


# Particles advanced together: temporaries this small stay off mmap (page faults), and below
# torch's intra-op grain size (32768) every op stays on one thread (two threads spin-waiting
# on a shared machine cost far more than they gain on a 2-D problem).
CHUNK = 16384


def counts(landscape: Landscape, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """Number of particles in each basin."""
    if landscape.classify is None:
        raise ValueError(f"landscape {landscape.name!r} has no basin classifier")
    labels = landscape.classify(x, y).long()
    return torch.bincount(labels.reshape(-1), minlength=len(landscape.basins)).numpy()


def occupancy(landscape: Landscape, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """Fraction of particles in each basin."""
    return counts(landscape, x, y) / x.numel()


def record_steps(steps: int, record_every: int) -> list[int]:
    """0, every `record_every` steps (0: none between), and the last step."""
    between = list(range(record_every, steps, record_every)) if record_every else []
    return [0] + between + [steps]


@torch.no_grad()
def simulate(
    landscape: Landscape,
    x: torch.Tensor,
    y: torch.Tensor,
    dynamics: Dynamics,
    steps: int,
    generator: torch.Generator,
    record_every: int = 0,
    chunk: int = CHUNK,
) -> Simulation:
    """Advance all particles (x, y) by `steps` SGDL steps (on copies); the basin occupancy is
    recorded at `record_steps(steps, record_every)`. Particles go `chunk` at a time, each chunk
    through all its steps (the noise is drawn per chunk and step, [2, chunk] from `generator`,
    so results depend on the seed and the chunk size, not on anything else)."""
    x, y = x.clone(), y.clone()
    when = record_steps(steps, record_every)
    total = np.zeros((len(when), len(landscape.basins)), dtype=np.int64)
    for lo in range(0, x.numel(), chunk):
        cx, cy = x[lo : lo + chunk], y[lo : lo + chunk]  # views: updated in place
        noise = torch.empty(2, cx.numel(), dtype=x.dtype)
        r = 0
        for t in range(steps + 1):
            if t == when[r]:
                total[r] += counts(landscape, cx, cy)
                r += 1
            if t == steps:
                break
            gx, gy = landscape.gradient(cx, cy)
            cx.sub_(gx, alpha=dynamics.lr)
            cy.sub_(gy, alpha=dynamics.lr)
            s = dynamics.noise_at(t)
            if s:
                noise.normal_(generator=generator)
                cx.add_(noise[0], alpha=s)
                cy.add_(noise[1], alpha=s)
            if dynamics.radius is not None:
                _project(cx, cy, dynamics.center, dynamics.radius)
    return Simulation(x, y, np.array(when), total / max(x.numel(), 1), landscape.basins)


def simulate_loop(
    landscape: Landscape,
    x: torch.Tensor,
    y: torch.Tensor,
    dynamics: Dynamics,
    steps: int,
    generator: torch.Generator,
    chunk: int = CHUNK,
) -> tuple[list[float], list[float]]:
    """The per-particle reference: each particle advanced alone by a Python loop over its
    steps with scalar arithmetic, on the same noise numbers as `simulate` (drawn in the same
    order), and the landscape's gradient called on one particle at a time."""
    xs, ys = [float(v) for v in x], [float(v) for v in y]
    n = len(xs)
    cx0, cy0 = dynamics.center
    for lo in range(0, n, chunk):
        width = min(chunk, n - lo)
        noise = torch.empty(2, width, dtype=x.dtype)
        draws: list[list[list[float]] | None] = []
        for t in range(steps):
            if dynamics.noise_at(t):
                noise.normal_(generator=generator)
                draws.append(noise.tolist())
            else:
                draws.append(None)
        for i in range(lo, lo + width):
            px, py = xs[i], ys[i]
            for t in range(steps):
                gx, gy = landscape.gradient(torch.tensor(px, dtype=x.dtype), torch.tensor(py, dtype=x.dtype))
                px, py = px - dynamics.lr * float(gx), py - dynamics.lr * float(gy)
                drawn = draws[t]
                if drawn is not None:
                    s = dynamics.noise_at(t)
                    px, py = px + s * drawn[0][i - lo], py + s * drawn[1][i - lo]
                if dynamics.radius is not None:
                    r = math.hypot(px - cx0, py - cy0)
                    if r > dynamics.radius:
                        px = cx0 + (px - cx0) * dynamics.radius / r
                        py = cy0 + (py - cy0) * dynamics.radius / r
            xs[i], ys[i] = px, py
    return xs, ys


def wilson(fraction: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a binomial fraction (95 % by default)."""
    if n == 0:
        return (math.nan, math.nan)
    denom = 1 + z * z / n
    mid = (fraction + z * z / (2 * n)) / denom
    half = z * math.sqrt(fraction * (1 - fraction) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, mid - half), min(1.0, mid + half))


def log_ratio_se(p1: float, p2: float, n: int) -> float:
    """Standard error of log(p1/p2) for two fractions of one multinomial sample of size n
    (delta method: (1 − p1)/(n p1) + (1 − p2)/(n p2) + 2/n)."""
    if p1 <= 0 or p2 <= 0:
        return math.inf
    return math.sqrt((1 - p1) / (n * p1) + (1 - p2) / (n * p2) + 2 / n)

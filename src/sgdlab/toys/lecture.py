"""The small examples of Giselsson's lecture "Stochastic gradient descent: qualitative convergence
behavior", simulated exactly (float64, many runs advanced together); the qualitative-sgd
reproduction decides its toy claims from them:

noise ball   f = Σ_{i=1}^3 f_i, f_i(x) = ½‖x − c_i‖², c_1 + c_2 + c_3 = 0, step γ = 1/3.
             GD (x ← x − γ∇f = x − γ·3x) reaches 0 in one step; SGD x ← x − γ(x − c_i) =
             (2/3)x + c_i/3 with i uniform has E‖x_{k+1}‖² = (4/9)E‖x_k‖² + (1/9)·mean‖c_i‖², so
             the stationary noise ball has E‖x‖² = mean‖c_i‖²/5; the cyclic order 1, 2, 3, 1, …
             settles on the 3-cycle p_0 = (9/19)((4/9)c_1 + (2/3)c_2 + c_3), p_{j+1} = (2/3)p_j + c_{j+1}/3.
pair         f_{1,2}(x) = ½(x ∓ c)², ∇f_{1,2}(0) = ∓c, cyclic order, step γ: the iterates settle on
             the 2-cycle ±γc/(2−γ), so f − f* = x² stalls at (γc/(2−γ))².
escaping     f = Σ_{i=1}^4 f_i on the line, f_i = p + s_i φ with the double well
             p(x) = a (x − x_L)²(x − x_R)² (two global minima of equal depth, barrier at
             (x_L + x_R)/2), a bump φ(x) = (x − x_L)(1 − ((x − x_L)/w)²)² on |x − x_L| < w (0
             elsewhere; φ(x_L) = 0, φ'(x_L) = 1) and Σ s_i = 0: f = 4p, the right minimum is
             individually flat (every f_i' = p' = 0 there) and the left is not (f_i'(x_L) = s_i).
             With x_L = 0.8, s_4 = −2.77, γ = 0.5: one step on f_4 from x_L lands at 2.185, past
             the barrier (the lecture's example). Mini-batches are uniform K-subsets; K = 4 is GD.

Each simulation runs on one torch thread by default (`threads=1`): its tensors are tiny, and
two threads spin-waiting on a shared machine cost far more than they gain (pass `threads=None`
to keep torch's setting).

>>> from sgdlab.toys import NoiseBall, simulate_noise_ball
>>> sim = simulate_noise_ball(NoiseBall(), runs=2000, steps=40, seed=0)
>>> float((sim["gd"][1] ** 2).sum())  # GD at step 1/3 reaches the solution in one step
0.0
>>> mean_sq = (sim["iid"][-1] ** 2).sum(axis=-1).mean()  # iid SGD: the noise ball
>>> bool(abs(mean_sq / NoiseBall().ball - 1) < 0.1)  # E‖x‖² = mean‖c_i‖²/5
True
"""

from __future__ import annotations

import itertools
import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

F64 = torch.float64


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """The intra-op thread count of torch set to `n` inside the block (None: left as it is)."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ---------------------------------------------------------------------------------------
# noise ball


@dataclass(frozen=True)
class NoiseBall:
    """The noise ball f = Σ_{i=1}^3 ½‖x − c_i‖² with c_3 = −c_1 − c_2 (so the solution is 0),
    its start x_0 and step γ = 1/3."""

    centers: tuple[tuple[float, float], ...] = ((1.0, 0.2), (-0.6, 0.9))  # c_3 = −c_1 − c_2
    x0: tuple[float, float] = (6.0, 4.0)
    step: float = 1.0 / 3.0

    @property
    def c(self) -> torch.Tensor:
        """The three centers c_1, c_2, c_3 = −c_1 − c_2 as a [3, 2] float64 tensor."""
        c12 = torch.tensor(self.centers, dtype=F64)
        return torch.cat([c12, -c12.sum(dim=0, keepdim=True)])

    @property
    def ball(self) -> float:
        """mean‖c_i‖²/5: the stationary E‖x‖² of iid SGD at step 1/3."""
        return float((self.c**2).sum(dim=1).mean()) / 5

    def cycle(self) -> torch.Tensor:
        """The 3-cycle of the cyclic order [3, 2], p_0 the iterate before f_1's step."""
        c = self.c
        p0 = (9 / 19) * ((4 / 9) * c[0] + (2 / 3) * c[1] + c[2])
        p1 = (2 / 3) * p0 + c[0] / 3
        p2 = (2 / 3) * p1 + c[1] / 3
        return torch.stack([p0, p1, p2])

    def mu(self, x: torch.Tensor) -> torch.Tensor:
        """μ(x) = min_{i≠j} ⟨x − c_i, x − c_j⟩ for points x [..., 2]."""
        g = x[..., None, :] - self.c  # [..., 3, 2]
        inner = g @ g.transpose(-1, -2)
        off = ~torch.eye(3, dtype=torch.bool)
        return inner[..., off].min(dim=-1).values


def simulate_noise_ball(
    nb: NoiseBall, runs: int, steps: int, seed: int, threads: int | None = 1
) -> dict[str, np.ndarray]:
    """Iid SGD (`runs` runs), cyclic SGD and GD from x0: iterates [steps+1, runs, 2] etc."""
    with torch_threads(threads):
        return _noise_ball(nb, runs, steps, seed)


def _noise_ball(nb: NoiseBall, runs: int, steps: int, seed: int) -> dict[str, np.ndarray]:
    gen = torch.Generator().manual_seed(seed)
    c, g = nb.c, nb.step
    x = torch.tensor(nb.x0, dtype=F64).expand(runs, 2).clone()
    iid = [x.clone()]
    for _ in range(steps):
        i = torch.randint(0, 3, (runs,), generator=gen)
        x = x - g * (x - c[i])
        iid.append(x.clone())
    y = torch.tensor(nb.x0, dtype=F64)
    cyclic = [y.clone()]
    for k in range(steps):
        y = y - g * (y - c[k % 3])
        cyclic.append(y.clone())
    x0 = torch.tensor(nb.x0, dtype=F64)
    gd = torch.stack([x0, x0 - g * (3 * x0 - c.sum(dim=0))])
    return {"iid": torch.stack(iid).numpy(), "cyclic": torch.stack(cyclic).numpy(), "gd": gd.numpy()}


# ---------------------------------------------------------------------------------------
# 1-D pair


def simulate_pair(c: float, step: float, x0: float, steps: int) -> np.ndarray:
    """Cyclic SGD on f_{1,2} = ½(x ∓ c)²: x_0 … x_steps."""
    xs = [x0]
    x = x0
    for k in range(steps):
        x = x - step * (x - (c if k % 2 == 0 else -c))
        xs.append(x)
    return np.asarray(xs)


def pair_amplitude(c: float, step: float) -> float:
    """γc/(2 − γ): the amplitude of the 2-cycle ±γc/(2 − γ) that cyclic SGD on
    f_{1,2} = ½(x ∓ c)² settles on at step γ.

    >>> round(pair_amplitude(0.83, 0.07), 6)
    0.030104
    """
    return step * c / (2 - step)


# ---------------------------------------------------------------------------------------
# escaping


@dataclass(frozen=True)
class Escape:
    """The escaping landscape f = Σ_{i=1}^4 f_i, f_i = p + s_i φ on the line: the double well
    p(x) = a (x − x_L)²(x − x_R)² and the bump φ around x_L of half-width w, with s_4 chosen
    so that Σ s_i = 0; SGD step γ = `step`."""

    x_left: float = 0.8
    x_right: float = 3.0
    a: float = 0.1
    width: float = 1.0
    s123: tuple[float, float, float] = (1.5, 0.8, 0.47)  # s_4 = −(s_1 + s_2 + s_3) = −2.77
    step: float = 0.5

    @property
    def s(self) -> torch.Tensor:
        """The weights s_1, s_2, s_3 and s_4 = −(s_1 + s_2 + s_3) as a float64 tensor."""
        s = torch.tensor(self.s123, dtype=F64)
        return torch.cat([s, -s.sum(dim=0, keepdim=True)])

    @property
    def barrier(self) -> float:
        """(x_L + x_R)/2: the top of the double well between the two minima."""
        return (self.x_left + self.x_right) / 2

    def p(self, x: torch.Tensor) -> torch.Tensor:
        """The double well a (x − x_L)²(x − x_R)², zero at both minima."""
        return self.a * (x - self.x_left) ** 2 * (x - self.x_right) ** 2

    def dp(self, x: torch.Tensor) -> torch.Tensor:
        """p'(x) = 2a (x − x_L)(x − x_R)(2x − x_L − x_R)."""
        u, v = x - self.x_left, x - self.x_right
        return 2 * self.a * u * v * (u + v)

    def phi(self, x: torch.Tensor) -> torch.Tensor:
        """The bump φ(x) = w·u(1 − u²)² with u = (x − x_L)/w on |u| < 1, 0 elsewhere."""
        u = (x - self.x_left) / self.width
        return torch.where(u.abs() < 1, self.width * u * (1 - u**2) ** 2, torch.zeros_like(x))

    def dphi(self, x: torch.Tensor) -> torch.Tensor:
        """φ'(x) = (1 − u²)(1 − 5u²) on |u| < 1, 0 elsewhere (u = (x − x_L)/w)."""
        u = (x - self.x_left) / self.width
        return torch.where(u.abs() < 1, (1 - u**2) * (1 - 5 * u**2), torch.zeros_like(x))

    def f_i(self, x: torch.Tensor) -> torch.Tensor:
        """[..., 4]: the four summands at x."""
        return self.p(x)[..., None] + self.s * self.phi(x)[..., None]

    def grads(self, x: torch.Tensor) -> torch.Tensor:
        """[..., 4]: f_i'(x)."""
        return self.dp(x)[..., None] + self.s * self.dphi(x)[..., None]


def subset_masks(k: int, n: int = 4) -> torch.Tensor:
    """All k-subsets of n indices as 0/1 rows [C(n, k), n]."""
    rows = [[1.0 if i in c else 0.0 for i in range(n)] for c in itertools.combinations(range(n), k)]
    return torch.tensor(rows, dtype=F64)


def simulate_escape(
    e: Escape,
    batch_sizes: tuple[int, ...],
    runs: int,
    steps: int,
    seed: int,
    start: float | None = None,
    threads: int | None = 1,
) -> dict[str, np.ndarray]:
    """Mini-batch SGD from `start` (default x_L) for every batch size at once: each run draws a
    uniform K-subset of {1…4} per step. Returns the first step with x > barrier (−1: never),
    the final iterates and the largest distance from the start, per batch size × run."""
    with torch_threads(threads):
        return _escape(e, batch_sizes, runs, steps, seed, start)


def _escape(
    e: Escape, batch_sizes: tuple[int, ...], runs: int, steps: int, seed: int, start: float | None
) -> dict[str, np.ndarray]:
    gen = torch.Generator().manual_seed(seed)
    x0 = e.x_left if start is None else start
    out: dict[str, list[np.ndarray]] = {"first_escape": [], "final": [], "max_move": []}
    for k in batch_sizes:
        masks = subset_masks(k) / k
        x = torch.full((runs,), x0, dtype=F64)
        first = torch.full((runs,), -1, dtype=torch.long)
        far = torch.zeros(runs, dtype=F64)
        for step in range(steps):
            pick = masks[torch.randint(0, len(masks), (runs,), generator=gen)]
            x = x - e.step * (pick * e.grads(x)).sum(dim=-1)
            first[(x > e.barrier) & (first < 0)] = step + 1
            far = torch.maximum(far, (x - x0).abs())
        for key, value in (("first_escape", first), ("final", x), ("max_move", far)):
            out[key].append(value.numpy())
    return {key: np.stack(v) for key, v in out.items()}


def escape_summary(first: np.ndarray, batch_sizes: tuple[int, ...]) -> dict[str, list[float]]:
    """Per batch size: the escape probability (fraction of runs with a first escape step)
    and the mean first escape step over the runs that escaped (NaN if none did)."""
    prob = [(first[i] > 0).mean() for i in range(len(batch_sizes))]
    time = [
        float(first[i][first[i] > 0].mean()) if (first[i] > 0).any() else math.nan
        for i in range(len(batch_sizes))
    ]
    return {
        "batch_size": list(batch_sizes),
        "escape_probability": [float(p) for p in prob],
        "mean_escape_step": time,
    }

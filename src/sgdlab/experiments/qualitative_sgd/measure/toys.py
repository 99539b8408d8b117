"""What `qualitative-sgd` measures in its simulated parts (`sgdlab.toys`' lecture examples):
the noise ball, the 1-D pair and escaping, as plain numbers the claims are decided from."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ....toys import Escape, NoiseBall, escape_summary
from .estimates import Estimate, mean_estimate, ratio_of_means


@dataclass(frozen=True)
class NoiseBallMeasures:
    """What the noise-ball simulation measured.

    gd_x1            GD's first iterate x_1 from x_0 (step 1/3)
    stationary       iid SGD's E‖x‖²: each run's time average over the second half of its
                     steps, averaged over the runs (the runs are the independent units)
    cyclic_last      the last three cyclic iterates, and `cycle` the closed-form 3-cycle in the
                     same phase
    outside, inside  the one-step contraction E‖x_{k+1}‖²/E‖x_k‖² as a ratio of means over the
                     iid states x_k with μ(x_k) > 0 (outside) and μ(x_k) < 0 (inside), runs as units
    """

    x0: np.ndarray
    gd_x1: np.ndarray
    stationary: Estimate
    ball: float
    steps_averaged: int
    cyclic_last: np.ndarray
    cycle: np.ndarray
    outside: Estimate
    inside: Estimate
    states_outside: int
    states_inside: int


def contraction(iid: np.ndarray, mask: np.ndarray) -> Estimate:
    """E‖x_{k+1}‖²/E‖x_k‖² over the states x_k [steps, runs, 2] selected by `mask`
    [steps, runs], as the ratio of each run's sums (`ratio_of_means`; runs with no selected
    state contribute 0 to both sums)."""
    now, nxt = (iid[:-1] ** 2).sum(-1), (iid[1:] ** 2).sum(-1)
    if not mask.any():
        return Estimate(math.nan, math.nan, 0)
    return ratio_of_means((nxt * mask).sum(axis=0), (now * mask).sum(axis=0))


def noise_ball(nb: NoiseBall, sim: dict[str, np.ndarray]) -> NoiseBallMeasures:
    """The noise-ball measurements from `toys.simulate_noise_ball`'s iterates."""
    iid, cyclic = sim["iid"], sim["cyclic"]
    sq = (iid**2).sum(axis=-1)  # [steps+1, runs]
    burn = len(sq) // 2
    mu = np.stack([nb.mu(torch.from_numpy(x)).numpy() for x in iid[:-1]])  # [steps, runs]
    k0 = (len(cyclic) - 3) % 3  # which cycle point x_{T−2} is
    return NoiseBallMeasures(
        x0=np.asarray(nb.x0),
        gd_x1=sim["gd"][1],
        stationary=mean_estimate(sq[burn:].mean(axis=0)),
        ball=nb.ball,
        steps_averaged=len(sq) - burn,
        cyclic_last=cyclic[-3:],
        cycle=np.roll(nb.cycle().numpy(), -k0, axis=0),
        outside=contraction(iid, mu > 0),
        inside=contraction(iid, mu < 0),
        states_outside=int((mu > 0).sum()),
        states_inside=int((mu < 0).sum()),
    )


def stays_below(values: np.ndarray, level: float) -> int | None:
    """The first index from which `values` stay ≤ level (None: not by the end)."""
    above = np.flatnonzero(values > level)
    if not len(above):
        return 0
    return int(above[-1] + 1) if above[-1] + 1 < len(values) else None


@dataclass(frozen=True)
class PairRun:
    """One cyclic run of the 1-D pair: the amplitude max|x| and the loss floor mean x² over
    its last `tail` iterates, and the first step from which x² stays ≤ the claim's level."""

    amplitude: float
    floor: float
    first_below: int | None


def pair_run(x: np.ndarray, level: float, tail: int = 20) -> PairRun:
    """`PairRun` of the iterates `x` (f − f* = x²)."""
    return PairRun(float(np.abs(x[-tail:]).max()), float((x[-tail:] ** 2).mean()), stays_below(x**2, level))


@dataclass(frozen=True)
class Landscape:
    """The escaping landscape at its two minima: every f_i' at x_L and x_R, f at both, where one
    step on f_4 from x_L lands, and the barrier between the minima."""

    grads_left: np.ndarray
    grads_right: np.ndarray
    f_left: float
    f_right: float
    jump: float
    barrier: float


def landscape(e: Escape) -> Landscape:
    """`Landscape` of `e`, in float64."""
    xl, xr = torch.tensor(e.x_left, dtype=torch.float64), torch.tensor(e.x_right, dtype=torch.float64)
    g_l, g_r = e.grads(xl), e.grads(xr)
    return Landscape(
        grads_left=g_l.numpy(),
        grads_right=g_r.numpy(),
        f_left=float(e.f_i(xl).sum()),
        f_right=float(e.f_i(xr).sum()),
        jump=e.x_left - e.step * float(g_l[3]),
        barrier=e.barrier,
    )


@dataclass(frozen=True)
class Escapes:
    """Escapes per batch size K: runs that crossed the barrier within the horizon (of `runs`),
    the mean first escape step over them and its standard error."""

    batch_sizes: tuple[int, ...]
    escaped: np.ndarray
    runs: int
    mean_step: np.ndarray
    step_se: np.ndarray

    @property
    def probability(self) -> np.ndarray:
        """The escape probability per batch size, escaped/runs."""
        return self.escaped / self.runs


def escapes(first: np.ndarray, batch_sizes: tuple[int, ...]) -> Escapes:
    """`Escapes` from the first escape steps [batch sizes, runs] (−1: never)."""
    summary = escape_summary(first, batch_sizes)
    return Escapes(
        batch_sizes=tuple(batch_sizes),
        escaped=np.asarray(summary["escaped"]),
        runs=first.shape[1],
        mean_step=np.asarray(summary["mean_escape_step"]),
        step_se=np.asarray(summary["escape_step_se"]),
    )

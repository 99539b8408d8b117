"""What `qualitative-sgd` measures, as plain numbers the claims (`claims.py`) are decided from:
from the simulations of `toys.py` (noise ball, 1-D pair, escaping) and from the trained runs
(least squares, residual nets, step-size rules, μ on digits).

Each measurement is a small frozen dataclass of floats and arrays, so a claim can be decided
(and unit-tested) from synthetic numbers as well as from a reproduction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator, cg

from ...gradients import gram_stats, minibatch_agreement, per_sample_gram
from ...params import set_flat_params
from ...store import Run, RunDir
from .toys import Escape, NoiseBall, escape_summary

if TYPE_CHECKING:
    from ...engine import Parts


@dataclass(frozen=True)
class Estimate:
    """A measured value with its standard error over `count` independent units (runs, seeds)."""

    value: float
    se: float
    count: int


def mean_estimate(values: np.ndarray) -> Estimate:
    """The mean of independent `values` with its standard error s/√n (NaN for one value)."""
    v = np.asarray(values, dtype=np.float64)
    se = float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else math.nan
    return Estimate(float(v.mean()), se, len(v))


def ratio_of_means(num: np.ndarray, den: np.ndarray) -> Estimate:
    """R = Σ_r num_r / Σ_r den_r over independent units r, with the delta-method standard error
    se = √(n/(n−1)·Σ_r (num_r − R·den_r)²) / Σ_r den_r (Cochran, "Sampling techniques", the
    ratio estimator). Unlike the mean of the ratios num_r/den_r it is not dominated by the
    units whose denominator is near 0.

    >>> e = ratio_of_means(np.array([2.0, 4.0]), np.array([1.0, 2.0]))
    >>> (e.value, e.se)
    (2.0, 0.0)
    """
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    n = len(num)
    ratio = float(num.sum() / den.sum())
    spread = float(np.sqrt(n / max(n - 1, 1) * np.sum((num - ratio * den) ** 2)))
    return Estimate(ratio, spread / float(den.sum()), n)


# ---------------------------------------------------------------------------------------
# 1. noise ball


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


# ---------------------------------------------------------------------------------------
# 2. the 1-D pair


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


# ---------------------------------------------------------------------------------------
# 5. escaping


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


# ---------------------------------------------------------------------------------------
# 3. least squares


@dataclass(frozen=True)
class LeastSquaresRun:
    """One least-squares run: its exact solution x* (A⁺b when over-parameterized), final
    iterate, f(x*), the per-epoch gap f(x_k) − f* and ‖∇f_i(x*)‖ of every point."""

    x_star: torch.Tensor
    theta: torch.Tensor
    f_star: float
    epochs: np.ndarray
    gap: np.ndarray
    norms: np.ndarray


def exact_solution(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The least-squares solution in float64: the unique one when A has full column rank,
    otherwise the minimum-norm A⁺b (the point SGD from 0 reaches: it stays in A's row space)."""
    if a.shape[0] >= a.shape[1]:
        return torch.linalg.lstsq(a, b[:, None], driver="gelsd").solution[:, 0]
    return torch.linalg.pinv(a) @ b


def problem(run: Run) -> tuple[torch.Tensor, torch.Tensor, Parts]:
    """(A, b, parts) of a least-squares run, A and b in float64."""
    from ... import prepare

    parts = prepare(run.config)
    return parts.data.train.x.double(), parts.data.train.y.double(), parts


def gradient_norms_at(parts: Parts, x_star: torch.Tensor) -> np.ndarray:
    """‖∇f_i(x*)‖ of every training point (sgdlab.gradients), the model's parameters set to `x_star`."""
    set_flat_params(parts.model, x_star.to(next(parts.model.parameters()).dtype))
    x, y = parts.data.train.x, parts.data.train.y
    return per_sample_gram(parts.model, parts.loss, x, y).norms.numpy()


def least_squares_run(run: Run) -> LeastSquaresRun:
    """`LeastSquaresRun` of a trained run (the gap is the recorded mean training loss − f*; f* = 0
    when over-parameterized, where A⁺b interpolates: its computed loss is round-off)."""
    a, b, parts = problem(run)
    x_star = exact_solution(a, b)
    f_star = float((0.5 * (a @ x_star - b) ** 2).mean()) if a.shape[0] >= a.shape[1] else 0.0
    theta = torch.cat([v.reshape(-1) for v in run.checkpoint("final.pt").values()]).double()
    epochs, loss = run.epochs("train_loss")
    return LeastSquaresRun(x_star, theta, f_star, epochs, loss - f_star, gradient_norms_at(parts, x_star))


@dataclass(frozen=True)
class Floor:
    """The loss floor of the under-parameterized problem at one step: per seed, the mean gap
    f(x_k) − f* over the first and over the second half of the averaging window, and the
    exact stationary E f(x) − f* of iid SGD at this step (`stationary_excess_loss`; NaN if
    not computed)."""

    step: float
    first_half: np.ndarray
    second_half: np.ndarray
    theory: float = math.nan

    @property
    def per_seed(self) -> np.ndarray:
        """Each seed's floor: its mean gap over the whole window."""
        return (self.first_half + self.second_half) / 2

    @property
    def drift(self) -> np.ndarray:
        """Each seed's second-half minus first-half mean: ≈ 0 once the run is stationary."""
        return self.second_half - self.first_half


def window_halves(gap: np.ndarray, window: int) -> tuple[float, float]:
    """The mean of `gap` over the first and over the second half of its last `window` values."""
    tail = gap[-window:]
    half = len(tail) // 2
    return float(tail[:half].mean()), float(tail[half:].mean())


def stationary_excess_loss(a: np.ndarray, b: np.ndarray, step: float) -> float:
    """E f(x) − f* in the stationary distribution of single-sample SGD with iid uniform
    indices on f(x) = (1/N) Σ_i ½(a_iᵀx − b_i)², solved exactly.

    With e = x − x*, r_i = b_i − a_iᵀx* (so Σ_i r_i a_i = 0), H = AᵀA/N and Σ = Σ_i r_i² a_i a_iᵀ/N,
    one step is e ← (I − γ a_i a_iᵀ) e + γ r_i a_i; the mean of e is 0 in the stationary
    distribution and its covariance C solves the linear equation
        H C + C H − γ (1/N) Σ_i (a_iᵀ C a_i) a_i a_iᵀ = γ Σ,
    solved here by conjugate gradients over symmetric C (the operator is positive definite for
    a stable step); then E f − f* = ½ tr(H C). For small γ, C ≈ (γ/2)·H⁻¹-weighted Σ: the
    excess is ∝ γ to first order."""
    n, d = a.shape
    x_star = np.linalg.lstsq(a, b, rcond=None)[0]
    r = b - a @ x_star
    h = a.T @ a / n
    sigma = (a * (r**2)[:, None]).T @ a / n

    def apply(v: np.ndarray) -> np.ndarray:
        c = v.reshape(d, d)
        q = ((a @ c) * a).sum(axis=1)
        return (h @ c + c @ h - step * (a * q[:, None]).T @ a / n).ravel()

    operator = LinearOperator((d * d, d * d), matvec=apply, dtype=np.float64)
    solution, info = cg(operator, step * sigma.ravel(), rtol=1e-10, maxiter=20 * d * d)
    if info != 0:
        return math.nan
    return float(0.5 * np.trace(h @ solution.reshape(d, d)))


def floor(step: float, gaps: list[np.ndarray], window: int, theory: float = math.nan) -> Floor:
    """`Floor` of one step from the per-epoch gaps f(x_k) − f* of its runs (one per seed): the
    halves of each gap's last `window` recorded epochs."""
    first, second = zip(*(window_halves(gap, window) for gap in gaps), strict=True)
    return Floor(step, np.asarray(first), np.asarray(second), theory)


# ---------------------------------------------------------------------------------------
# 4. residual nets


def series(run: Run, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(epochs, values) of metric `name`, empty when the run did not record it."""
    if name not in run.metrics.column_names:
        return np.array([]), np.array([])
    return run.epochs(name)


def last(run: Run, name: str) -> float:
    """The last recorded value of metric `name` (NaN if none)."""
    _, v = series(run, name)
    return float(v[-1]) if len(v) else math.nan


def final_norms(run: Run) -> np.ndarray:
    """‖∇f_i‖ of every training point at the final iterate (sgdlab.gradients on final.pt)."""
    from ... import prepare

    parts = prepare(run.config)
    parts.model.load_state_dict(run.checkpoint("final.pt"))
    x, y = parts.data.train.x, parts.data.train.y
    return per_sample_gram(parts.model, parts.loss, x, y).norms.numpy()


@dataclass(frozen=True)
class Net:
    """One trained net of part 4: status, final training loss and error, the best full-gradient
    norm so far at the end, ‖∇f_i‖ of every training point at the end, μ at the end and its
    median over the second half of training."""

    status: str
    loss: float
    error: float
    best_gradient: float
    norms: np.ndarray
    mu_end: float
    mu_second_half: float


def net(run: Run) -> Net:
    """`Net` of a trained run."""
    _, mu = series(run, "grad_mu")
    return Net(
        status=run.status,
        loss=float(run.final.get("train_loss", math.nan)),
        error=float(run.final.get("train_error", math.nan)),
        best_gradient=last(run, "grad_full_norm_best"),
        norms=final_norms(run),
        mu_end=float(mu[-1]) if len(mu) else math.nan,
        mu_second_half=float(np.median(mu[len(mu) // 2 :])) if len(mu) else math.nan,
    )


# ---------------------------------------------------------------------------------------
# 6. step-size rules


def rule_table(run: Run, epochs: tuple[int, ...]) -> list[dict[str, Any]]:
    """The lecture's table: epoch, step size η, batch-gradient norm ‖∇f_i(x_k)‖ at the epoch's
    first step, full-gradient norm; NaN past a divergence. At the final epoch (no step follows)
    η and the batch norm are the last recorded ones (the first step of the previous epoch)."""
    rows = []
    cols = {k: dict(zip(*series(run, k), strict=True)) for k in ("lr", "update_norm", "grad_full_norm")}
    final_epoch = run.summary.get("epochs")
    for e in epochs:
        row: dict[str, float] = {"epoch": e}
        for k, v in cols.items():
            value = v.get(float(e), math.nan)
            if math.isnan(value) and run.status == "completed" and e == final_epoch and v:
                value = v[max(v)]  # no step after the last epoch: its last recorded step's value
            row[k] = float(value)
        rows.append(row)
    return rows


@dataclass(frozen=True)
class RuleRun:
    """One run of part 6: status, the step where it diverged (None if it did not), the first
    and the last step size of its table, the final training loss and the last recorded
    full-gradient norm."""

    status: str
    diverged_at: int | None
    first_step: float
    loss: float
    final_gradient: float
    final_step: float = math.nan


def rule_run(run: Run, table: list[dict[str, Any]]) -> RuleRun:
    """`RuleRun` of a trained run and its `rule_table`."""
    return RuleRun(
        status=run.status,
        diverged_at=run.summary.get("diverged_at"),
        first_step=float(table[0]["lr"]),
        loss=float(run.final.get("train_loss", math.nan)),
        final_gradient=last(run, "grad_full_norm"),
        final_step=float(table[-1]["lr"]),
    )


# ---------------------------------------------------------------------------------------
# 7. μ on digits


@dataclass(frozen=True)
class AgreementPath:
    """Along the μ run's saved iterates θ_k: the step, ‖θ_k − θ*‖ (θ* the final iterate), μ, the
    mean inner product, the mean cosine and the mean norm of the individual gradients; and μ_K
    against the mini-batch size K at θ_0, midway and at θ* (label → (batch sizes, μ_K))."""

    rows: dict[str, np.ndarray]
    by_batch: dict[str, dict[str, list[Any]]]


def agreement_path(run: Run, batch_sizes: tuple[int, ...], pairs_of: int) -> AgreementPath:
    """`AgreementPath` of the μ run: the per-sample Gram matrix of the training points at every
    saved iterate (sgdlab.gradients), μ_K from `pairs_of` sampled K-batches at three of them."""
    from ... import prepare

    parts = prepare(run.config)
    x, y = parts.data.train.x, parts.data.train.y
    store = RunDir(run.path)
    thetas = {step: store.load(str(p.relative_to(store.checkpoints))) for step, p in store.iterates()}
    steps = sorted(thetas)
    theta_star = thetas[steps[-1]]
    keys = ("mu", "inner_mean", "cos_mean", "norm_mean")
    rows: dict[str, list] = {"step": [], "distance": [], **{k: [] for k in keys}}
    grams: dict[int, torch.Tensor] = {}
    for step in steps:
        set_flat_params(parts.model, thetas[step])
        grams[step] = per_sample_gram(parts.model, parts.loss, x, y).gram
        stats = gram_stats(grams[step], ())
        rows["step"].append(step)
        rows["distance"].append(float((thetas[step] - theta_star).norm()))
        for key in keys:
            rows[key].append(stats[f"grad_{key}"])
    gen = torch.Generator().manual_seed(0)
    points = {"θ_0": steps[0], "middle": steps[len(steps) // 2], "θ*": steps[-1]}
    by_batch: dict[str, dict[str, list[Any]]] = {}
    for label, step in points.items():
        values = [minibatch_agreement(grams[step], k, pairs_of, gen) for k in batch_sizes]
        by_batch[f"{label} (step {step})"] = {
            "batch_size": list(batch_sizes),
            "mu": [v["mu"] for v in values],
            "cos_mean": [v["cos_mean"] for v in values],
        }
    return AgreementPath({k: np.asarray(v) for k, v in rows.items()}, by_batch)

"""Parts 1, 2 and 5 of `qualitative-sgd` — the noise ball, the 1-D pair and escaping — as
simulations: tables saved through the Lab, claims decided from them, figures drawn from them."""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch

from ..base import Claim, Lab, decide, one_thread
from . import figures
from .settings import ToySettings
from .toys import (
    Escape,
    NoiseBall,
    escape_summary,
    pair_amplitude,
    simulate_escape,
    simulate_noise_ball,
    simulate_pair,
)

PAIR_C = (0.83, 0.02)  # the lecture's individual gradients at the solution
PAIR_STEP = 0.07
PAIR_X0 = 1.0
PAIR_LOSS = 1e-5  # "reaches a small loss": f − f* ≤ this
BATCH_SIZES = (1, 2, 3, 4)


# ---------------------------------------------------------------------------------------
# 1. noise ball


def noise_ball_part(lab: Lab, s: ToySettings) -> list[Claim]:
    """Part 1 (Giselsson, "Stochastic gradient descent: qualitative convergence behavior"):
    the noise ball f = Σ_{i=1}^3 ½‖x − c_i‖², step 1/3; table, figure and four claims:

    - `noise-ball/gd-one-step`: ‖x_1‖ ≤ 1e-12·‖x_0‖ for GD.
    - `noise-ball/sgd-stationary`: iid SGD's E‖x‖² (each run's time average over the second
      half, averaged over runs) is within 4 standard errors of mean‖c_i‖²/5.
    - `noise-ball/cyclic-3-cycle`: the last three cyclic iterates are within 1e-10 of the
      closed-form 3-cycle.
    - `noise-ball/fast-outside-slow-inside`: the mean one-step ratio ‖x_{k+1}‖²/‖x_k‖² is
      < 1 where μ(x_k) > 0 and ≥ 1 where μ(x_k) < 0."""
    nb = NoiseBall()
    with one_thread():
        sim = simulate_noise_ball(nb, s.noise_runs, s.noise_steps, s.seed)
    iid, cyclic, gd = sim["iid"], sim["cyclic"], sim["gd"]
    sq = (iid**2).sum(axis=-1)  # [steps+1, runs]
    lab.save_table(
        "noise_ball",
        {
            "step": np.arange(len(sq)),
            "mean_sq_dist": sq.mean(axis=1),
            "cyclic_sq_dist": (cyclic**2).sum(axis=-1),
        },
    )
    figures.noise_ball(lab.figure("noise-ball"), nb, sim)
    claims = []
    x0 = np.asarray(nb.x0)
    gd_dist = float(np.linalg.norm(gd[1]))
    claims.append(
        decide(
            "noise-ball/gd-one-step",
            "GD with step 1/3 on f = Σ ½‖x − c_i‖² reaches the solution 0 in one step",
            bool(gd_dist <= 1e-12 * np.linalg.norm(x0)),
            headline=f"‖x_1‖ = {gd_dist:.1g}",
            meaning="the full gradient 3x points straight at the solution: no noise, no ball",
            x0=nb.x0,
            x1=gd[1],
            tolerance="‖x_1‖ ≤ 1e-12·‖x_0‖",
        )
    )

    burn = len(sq) // 2
    per_run = sq[burn:].mean(axis=0)
    measured, se = float(per_run.mean()), float(per_run.std(ddof=1) / math.sqrt(len(per_run)))
    target = nb.ball
    claims.append(
        decide(
            "noise-ball/sgd-stationary",
            "iid SGD with step 1/3 settles in a noise ball with E‖x‖² = mean‖c_i‖²/5",
            abs(measured - target) <= 4 * se,
            headline=f"E‖x‖² = {measured:.4f} vs {target:.4f}",
            meaning="a constant step converges only to a noise ball around the solution",
            measured=measured,
            target=target,
            standard_error=se,
            relative_error=measured / target - 1,
            runs=s.noise_runs,
            steps_averaged=len(sq) - burn,
            tolerance="|measured − target| ≤ 4 standard errors (runs independent; each run's "
            "time average over the second half of the steps)",
        )
    )

    cycle = nb.cycle().numpy()
    last = cyclic[-3:]
    k0 = (len(cyclic) - 3) % 3  # which cycle point x_{T−2} should be
    expected = np.roll(cycle, -k0, axis=0)
    err = float(np.abs(last - expected).max())
    spread = float(min(np.linalg.norm(cycle[i] - cycle[j]) for i in range(3) for j in range(i)))
    claims.append(
        decide(
            "noise-ball/cyclic-3-cycle",
            "cyclic order settles on a 3-cycle (the closed form), not on the solution",
            err <= 1e-10 and spread > 0.01,
            headline=f"max error {err:.1g}",
            meaning="without randomness the noise ball collapses to a limit cycle of the three steps",
            cycle=cycle,
            last_iterates=last,
            max_error=err,
            smallest_cycle_gap=spread,
            tolerance="last three iterates within 1e-10 of the closed-form cycle",
        )
    )

    # Fast outside the triangle, slow inside: one-step ratio E‖x_{k+1}‖²/‖x_k‖² by the sign of μ(x_k).
    x = torch.from_numpy(iid[:-1].reshape(-1, 2))
    nxt = iid[1:].reshape(-1, 2)
    ratio = (nxt**2).sum(-1) / np.maximum((x.numpy() ** 2).sum(-1), 1e-300)
    mu = nb.mu(x).numpy()
    out_ratio, in_ratio = float(ratio[mu > 0].mean()), float(ratio[mu < 0].mean())
    claims.append(
        decide(
            "noise-ball/fast-outside-slow-inside",
            "where the individual gradients agree (μ(x) > 0, "
            "far from the triangle) SGD contracts; where they disagree (μ < 0, inside) it makes no "
            "progress on average",
            out_ratio < 1 <= in_ratio,
            headline=f"E‖x_(k+1)‖²/‖x_k‖² = {out_ratio:.2f} (μ > 0) vs {in_ratio:.2f} (μ < 0)",
            meaning="μ = min_{i≠j}⟨∇f_i, ∇f_j⟩ measures the noise: larger μ, faster convergence",
            ratio_mu_positive=out_ratio,
            ratio_mu_negative=in_ratio,
            far_field_theory=4 / 9,
            states_mu_positive=int((mu > 0).sum()),
            states_mu_negative=int((mu < 0).sum()),
            note="E[‖x_{k+1}‖² | x_k] = 4/9·‖x_k‖² + mean‖c‖²/9: → 4/9 far away",
        )
    )
    return claims


# ---------------------------------------------------------------------------------------
# 2. the 1-D pair


def stays_below(values: np.ndarray, level: float) -> int | None:
    """The first index from which `values` stay ≤ level (None: not by the end)."""
    above = np.flatnonzero(values > level)
    if not len(above):
        return 0
    return int(above[-1] + 1) if above[-1] + 1 < len(values) else None


def pair_part(lab: Lab, s: ToySettings) -> list[Claim]:
    """Part 2 (Giselsson, "Stochastic gradient descent: qualitative convergence behavior"):
    cyclic SGD on f_{1,2} = ½(x ∓ c)² at step 0.07 for c = 0.83 and 0.02; table, figure and
    two claims:

    - `pair/amplitude`: the amplitude over the last 20 iterates matches γc/(2 − γ) to a
      relative error ≤ 1e-6.
    - `pair/small-individual-gradients`: with c = 0.02 the loss x² reaches and stays
      ≤ PAIR_LOSS (1e-5); with c = 0.83 it does not."""
    paths = {c: simulate_pair(c, PAIR_STEP, PAIR_X0, s.pair_steps) for c in PAIR_C}
    lab.save_table(
        "pair", {"step": np.arange(s.pair_steps + 1), **{f"x_c{c:g}": x for c, x in paths.items()}}
    )
    figures.pair(lab.figure("pair"), paths, PAIR_STEP)
    amp = {c: float(np.abs(x[-20:]).max()) for c, x in paths.items()}
    theory = {c: pair_amplitude(c, PAIR_STEP) for c in PAIR_C}
    rel = {c: amp[c] / theory[c] - 1 for c in PAIR_C}
    claims = [
        decide(
            "pair/amplitude",
            f"cyclic SGD (step {PAIR_STEP}) on f_1,2 = ½(x ∓ c)² oscillates around "
            "the solution with amplitude γc/(2 − γ)",
            all(abs(r) <= 1e-6 for r in rel.values()),
            headline=", ".join(f"c={c:g}: {amp[c]:.3g} (theory {theory[c]:.3g})" for c in PAIR_C),
            meaning="individual gradients ±c at the solution keep a constant step away from it",
            amplitude={f"{c:g}": amp[c] for c in PAIR_C},
            theory={f"{c:g}": theory[c] for c in PAIR_C},
            relative_error={f"{c:g}": rel[c] for c in PAIR_C},
            tolerance="|relative error| ≤ 1e-6",
        )
    ]
    floors = {c: float((paths[c][-20:] ** 2).mean()) for c in PAIR_C}
    reach = {c: stays_below(paths[c] ** 2, PAIR_LOSS) for c in PAIR_C}
    big, small = PAIR_C
    ratio = floors[big] / floors[small]
    claims.append(
        decide(
            "pair/small-individual-gradients",
            f"with small individual gradients at the solution "
            f"(±{small:g} instead of ±{big:g}) SGD reaches and keeps a small loss (f − f* ≤ {PAIR_LOSS:g}); "
            "with large ones it stalls above it",
            reach[small] is not None and reach[big] is None,
            headline=f"loss floor {floors[big]:.2g} vs {floors[small]:.2g}",
            meaning="local convergence is fast when the individual functions agree on the minimum",
            loss_floor={f"{c:g}": floors[c] for c in PAIR_C},
            first_step_below={f"{c:g}": reach[c] for c in PAIR_C},
            floor_ratio=ratio,
            floor_ratio_theory=(big / small) ** 2,
        )
    )
    return claims


# ---------------------------------------------------------------------------------------
# 5. escaping


def escaping_part(lab: Lab, s: ToySettings) -> list[Claim]:
    """Part 5 (Giselsson, "Stochastic gradient descent: qualitative convergence behavior"):
    mini-batch SGD from the not individually flat minimum x_L = 0.8 for K = 1…4 (and
    single-sample SGD from the flat one); tables, figure and four claims:

    - `escaping/landscape`: the premise — f(x_L) = f(x_R), ∇f(x_L) = 0, every f_i'(x_R) = 0,
      and x_L − γ f_4'(x_L) lands past the barrier.
    - `escaping/gd-never`: no GD run (K = 4) escapes or moves by more than 1e-12.
    - `escaping/batch-size`: the escape probability does not rise with K (and K = 1 beats
      K = 3), and the mean escape step does not fall with K.
    - `escaping/flat-stays`: SGD started at x_R never moves."""
    e = Escape()
    with one_thread():
        sim = simulate_escape(e, BATCH_SIZES, s.escape_runs, s.escape_steps, s.seed)
        flat = simulate_escape(e, (1,), s.escape_runs, s.escape_steps, s.seed + 1, start=e.x_right)
    first = sim["first_escape"]
    summary = escape_summary(first, BATCH_SIZES)
    steps = np.arange(s.escape_steps + 1)
    lab.save_table(
        "escaping",
        {
            "step": steps,
            **{
                f"not_escaped_b{k}": ((first[i] < 0)[None, :] | (first[i][None, :] > steps[:, None])).mean(
                    axis=1
                )
                for i, k in enumerate(BATCH_SIZES)
            },
        },
    )
    lab.save_table("escaping_summary", summary)
    figures.escaping(lab.figure("escaping"), e, summary, lab.load_table("escaping"), BATCH_SIZES)

    xl, xr = torch.tensor(e.x_left, dtype=torch.float64), torch.tensor(e.x_right, dtype=torch.float64)
    g_l, g_r = e.grads(xl), e.grads(xr)
    jump = e.x_left - e.step * float(g_l[3])
    f_l, f_r = float(e.f_i(xl).sum()), float(e.f_i(xr).sum())
    premise = (
        abs(float(g_l.sum())) <= 1e-12
        and float(g_r.abs().max()) == 0.0
        and abs(f_l - f_r) <= 1e-12
        and jump > e.barrier
    )
    claims = [
        decide(
            "escaping/landscape",
            "the landscape has two global minima of equal depth, the right one "
            "individually flat (every ∇f_i = 0), the left one not; one step on f_4 from x = 0.8 with "
            "γ = 0.5 jumps past the barrier",
            premise,
            headline=f"∇f_4(0.8) = {float(g_l[3]):.2f}, x_1 = {jump:.3f} > barrier {e.barrier:g}",
            meaning="the premise of the escaping example (the lecture's numbers: −2.77, 2.18)",
            grads_left=g_l.tolist(),
            grads_right=g_r.tolist(),
            f_left=f_l,
            f_right=f_r,
            barrier=e.barrier,
        )
    ]
    prob, time_ = summary["escape_probability"], summary["mean_escape_step"]
    gd = BATCH_SIZES.index(4)
    gd_move = float(sim["max_move"][gd].max())
    claims.append(
        decide(
            "escaping/gd-never",
            "GD (batch 4 of 4) never leaves the not individually flat minimum",
            prob[gd] == 0 and gd_move <= 1e-12,
            headline=f"0 of {s.escape_runs} escape; max move {gd_move:.1g}",
            meaning="∇f(x_L) = 0 stops GD; only the individual gradients can move the iterate",
            escapes=int((first[gd] > 0).sum()),
            max_move=gd_move,
        )
    )
    order = all(prob[i] >= prob[i + 1] for i in range(len(prob) - 1)) and prob[0] > prob[-2]
    times = [t for t in time_ if not math.isnan(t)]
    claims.append(
        decide(
            "escaping/batch-size",
            f"smaller mini-batches escape more often and sooner: the escape "
            f"probability within {s.escape_steps} steps does not rise with the batch size and the mean "
            "escape time does not fall",
            order and all(a <= b for a, b in itertools.pairwise(times)),
            headline=", ".join(f"K={k}: {p:.3f}" for k, p in zip(BATCH_SIZES, prob, strict=True)),
            meaning="larger batches average the individual gradients away: worse at escaping",
            escape_probability=dict(zip(map(str, BATCH_SIZES), prob, strict=True)),
            mean_escape_step=dict(zip(map(str, BATCH_SIZES), time_, strict=True)),
            runs=s.escape_runs,
        )
    )
    flat_move = float(flat["max_move"].max())
    claims.append(
        decide(
            "escaping/flat-stays",
            "single-sample SGD started in the individually flat minimum never moves",
            flat_move == 0.0,
            headline=f"max move {flat_move:g} over {s.escape_runs} runs",
            meaning="∇f_i(x_R) = 0 for every i: a fixed point of SGD at any step size",
            max_move=flat_move,
        )
    )
    return claims

"""The claims of parts 4 and 6 of `qualitative-sgd` (Giselsson, "Stochastic gradient descent:
qualitative convergence behavior"): the under- vs over-parameterized residual nets and the
lecture's step-size rules, decided from plain measured numbers (`measure.nets`)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...base import Claim, decide, not_applicable
from ..measure.nets import Net, RuleRun
from .tolerances import MUCH

SMALL, BIG = "3x5,2,1", "15x25,2,1"


def regime_problem(under: Net, over: Net) -> str | None:
    """Why the two nets are outside the lecture's regime (None when inside): both completed,
    the under-parameterized one does not interpolate (training error > 0 at the end) and the
    over-parameterized one does (training error 0)."""
    why = [f"{label} {n.status}" for label, n in ((SMALL, under), (BIG, over)) if n.status != "completed"]
    if not under.error > 0:
        why.append(f"{SMALL} interpolates (training error {under.error:.3g})")
    if not over.error == 0:
        why.append(f"{BIG} does not interpolate (training error {over.error:.3g})")
    return "; ".join(why) or None


def nets_regime_claim(under: Net, over: Net, **context: Any) -> Claim:
    """Claim `nets/regime`, the premise of part 4: the 3x5,2,1 net is under-parameterized for the
    data (it does not reach training error 0) and the 15x25,2,1 net over-parameterized (it does)."""
    why = regime_problem(under, over)
    return decide(
        "nets/regime",
        f"premise: the {SMALL} net cannot interpolate the training set (training error > 0 at the "
        f"end) while the {BIG} net does (training error 0)",
        why is None,
        headline=f"training error {under.error:.3g} vs {over.error:.3g}",
        meaning="the lecture's definition: over-parameterized = correct classification (logistic "
        "loss near 0) is reachable; the comparison needs one net on each side",
        final_train_error={SMALL: under.error, BIG: over.error},
        final_loss={SMALL: under.loss, BIG: over.loss},
        status={SMALL: under.status, BIG: over.status},
        **({"reason": why} if why else {}),
        **context,
    )


def _in_regime(cid: str, statement: str, under: Net, over: Net) -> Claim | None:
    """The not-applicable claim when the nets miss the premise (`regime_problem`), else None."""
    why = regime_problem(under, over)
    return None if why is None else not_applicable(cid, statement, f"outside the lecture's regime: {why}")


def nets_final_loss_claim(under: Net, over: Net) -> Claim:
    """Claim `nets/final-loss`: the over-parameterized net ends with a training loss ≥ MUCH (10×)
    smaller (lecture: 0.17 vs 0.00018). Not applicable outside the regime (`nets_regime`)."""
    statement = (
        f"the over-parameterized {BIG} net reaches a much smaller training loss than the {SMALL} "
        f"net (≥ {MUCH:g}× smaller)"
    )
    return _in_regime("nets/final-loss", statement, under, over) or decide(
        "nets/final-loss",
        statement,
        over.loss * MUCH <= under.loss,
        headline=f"final loss {under.loss:.3g} vs {over.loss:.3g} (lecture: 0.17 vs 0.00018)",
        meaning="over-parameterized models give faster SGD convergence",
        final_loss={SMALL: under.loss, BIG: over.loss},
        tolerance=f"≥ {MUCH:g}× smaller",
    )


def nets_best_gradient_claim(under: Net, over: Net) -> Claim:
    """Claim `nets/best-gradient`: the best full-gradient norm so far ends ≥ MUCH (10×) smaller for
    the over-parameterized net. Not applicable outside the regime."""
    statement = "the best full-gradient norm so far ends much smaller for the over-parameterized net"
    return _in_regime("nets/best-gradient", statement, under, over) or decide(
        "nets/best-gradient",
        statement,
        over.best_gradient * MUCH <= under.best_gradient,
        headline=f"min ‖∇f‖ {under.best_gradient:.2g} vs {over.best_gradient:.2g}",
        meaning='the lecture\'s "best gradient" curve',
        best_full_gradient={SMALL: under.best_gradient, BIG: over.best_gradient},
        tolerance=f"≥ {MUCH:g}× smaller",
    )


def nets_individual_gradients_claim(under: Net, over: Net) -> Claim:
    """Claim `nets/individual-gradients`: at the end the max and the median ‖∇f_i‖ over the training
    points are both ≥ MUCH (10×) smaller for the over-parameterized net. Not applicable
    outside the regime."""
    statement = (
        "at the end the individual gradients of the over-parameterized net are much smaller "
        "(max and median over the training points)"
    )
    norm_max = {SMALL: float(under.norms.max()), BIG: float(over.norms.max())}
    norm_med = {SMALL: float(np.median(under.norms)), BIG: float(np.median(over.norms))}
    return _in_regime("nets/individual-gradients", statement, under, over) or decide(
        "nets/individual-gradients",
        statement,
        norm_max[BIG] * MUCH <= norm_max[SMALL] and norm_med[BIG] * MUCH <= norm_med[SMALL],
        headline=f"max ‖∇f_i‖ {norm_max[SMALL]:.2g} vs {norm_max[BIG]:.2g}",
        meaning="individual gradients vanish near an interpolating solution, so a constant step "
        "keeps converging",
        max_norm=norm_max,
        median_norm=norm_med,
        tolerance=f"≥ {MUCH:g}× smaller, both",
    )


def nets_agreement_claim(under: Net, over: Net) -> Claim:
    """Claim `nets/agreement`: μ = min_{i≠j}⟨∇f_i, ∇f_j⟩ of the over-parameterized net is larger at the
    end and in median over the second half of training. Not applicable outside the regime."""
    statement = (
        "the individual gradients of the over-parameterized net agree better: its "
        "μ = min_{i≠j}⟨∇f_i, ∇f_j⟩ is larger at the end and over the second half of training (median)"
    )
    return _in_regime("nets/agreement", statement, under, over) or decide(
        "nets/agreement",
        statement,
        over.mu_end > under.mu_end and over.mu_second_half > under.mu_second_half,
        headline=f"μ at the end {under.mu_end:.2g} vs {over.mu_end:.2g}",
        meaning="the lecture's reason for the faster convergence: individual gradients agree",
        mu_end={SMALL: under.mu_end, BIG: over.mu_end},
        mu_median_second_half={SMALL: under.mu_second_half, BIG: over.mu_second_half},
    )


LARGE_GRADIENT = 1e3  # "very large" initial full-gradient norm (the lecture: 6.8e5)
TINY_STEP = 1e-2  # a damped first step is < this × γ0: what α‖g‖ + 1 gives at ‖g‖ ≈ 1e3, α = 0.1
FINAL_FACTOR = 2.0  # "larger final full norm" (the lecture's rule tables differ 40×): at least this


def rules_large_initial_gradients_claim(first_full_norm: float) -> Claim:
    """Claim `rules/large-initial-gradients`, the premise of the step-size tables: the 15x25 net
    starts with a full-gradient norm ‖∇f(x_0)‖ ≥ 1e3 (the lecture: 6.8e5). Not applicable when
    it was not measured (NaN).

    The premise is the full gradient at x_0, not the first batch gradient the rules divide by:
    given a batch gradient ≥ 1e3, the damped first step γ0/(α‖g_0‖ + 1) < 1e-2·γ0 would follow
    from the rule's formula alone, while given a large full gradient it is a measurement (the
    batch gradients the rule sees are large too, as in the lecture's tables)."""
    cid = "rules/large-initial-gradients"
    statement = (
        "the 15x25,2,1 net starts with very large gradients (full-gradient norm ≥ 1e3), the regime "
        "the damped rules are for"
    )
    if math.isnan(first_full_norm):
        return not_applicable(cid, statement, "‖∇f(x_0)‖ not measured (no full-gradient norm at epoch 0)")
    return decide(
        cid,
        statement,
        first_full_norm >= LARGE_GRADIENT,
        headline=f"‖∇f(x_0)‖ = {first_full_norm:.2g} (lecture: 6.8e5)",
        meaning="the premise of the step-size tables",
        full_grad_norm_epoch0=first_full_norm,
    )


def _small_initial_gradient(
    cid: str, statement: str, first_full_norm: float, runs: dict[str, RuleRun]
) -> Claim | None:
    """The not-applicable claim when the premise `rules/large-initial-gradients` fails (the
    15x25 net starts with ‖∇f(x_0)‖ < 1e3: there is nothing to dampen) or was not measured,
    else None; its evidence keeps the status of the claim's `runs`."""
    if first_full_norm >= LARGE_GRADIENT:
        return None
    why = (
        "not measured"
        if math.isnan(first_full_norm)
        else f"fails: ‖∇f(x_0)‖ = {first_full_norm:.2g} < {LARGE_GRADIENT:g}"
    )
    return not_applicable(
        cid,
        statement,
        f"premise rules/large-initial-gradients {why}",
        full_grad_norm_epoch0=first_full_norm,
        status={n: r.status for n, r in runs.items()},
        diverged_at={n: r.diverged_at for n, r in runs.items()},
    )


def rules_undamped_diverges_claim(undamped: RuleRun, first_full_norm: float) -> Claim:
    """Claim `rules/undamped-diverges`: without damping (α = 0) the run stops with status diverged.
    Not applicable when the initial full-gradient norm is below 1e3 or not measured
    (`rules_large_initial_gradients_claim`)."""
    cid = "rules/undamped-diverges"
    statement = (
        "without damping (α = 0) the very large first gradients explode: the run stops with status diverged"
    )
    return _small_initial_gradient(cid, statement, first_full_norm, {"undamped": undamped}) or decide(
        cid,
        statement,
        undamped.status == "diverged",
        headline=f"status {undamped.status} at step {undamped.diverged_at}",
        meaning="a fixed step ignores the gradient's size; diminishing it does not help",
        status=undamped.status,
        diverged_at=undamped.diverged_at,
        full_grad_norm_epoch0=first_full_norm,
    )


def _divergences(runs: dict[str, RuleRun]) -> list[str]:
    return [
        f"run rule-{n} diverged at step {r.diverged_at}" for n, r in runs.items() if r.status == "diverged"
    ]


def rules_damping_survives_claim(damped: dict[str, RuleRun], lr: float, first_full_norm: float) -> Claim:
    """Claim `rules/damping-survives`: every damped rule (name → run) completes, with a first step
    < 1e-2·γ0. Not applicable when the initial full-gradient norm is below 1e3 or not measured
    (`rules_large_initial_gradients_claim`): there is then nothing to dampen."""
    cid = "rules/damping-survives"
    statement = (
        "the damped rules take tiny first steps (η ≪ γ0) on the very large first gradients and "
        "train without diverging"
    )
    diverged = _divergences(damped)
    return _small_initial_gradient(cid, statement, first_full_norm, damped) or decide(
        cid,
        statement,
        all(r.status == "completed" for r in damped.values())
        and all(r.first_step < TINY_STEP * lr for r in damped.values()),
        headline="; ".join(diverged)
        or ", ".join(f"{n}: η_0 = {r.first_step:.2g}, final loss {r.loss:.2g}" for n, r in damped.items()),
        meaning="γ0/(α‖g‖+1) dampens large initial gradients",
        first_step={n: r.first_step for n, r in damped.items()},
        final_loss={n: r.loss for n, r in damped.items()},
        status={n: r.status for n, r in damped.items()},
        tolerance=f"η_0 < {TINY_STEP:g}·γ0",
        **({"reason": "; ".join(diverged)} if diverged else {}),
    )


def rules_diminishing_smaller_final_gradient_claim(combined: RuleRun, damped: RuleRun) -> Claim:
    """Claim `rules/diminishing-smaller-final-gradient`: the diminishing (combined) rule ends with a
    full-gradient norm ≥ FINAL_FACTOR (2×) smaller than the non-diminishing damped rule (the
    lecture: 0.0003 vs 0.013). Not applicable when either run diverged or did not complete."""
    cid = "rules/diminishing-smaller-final-gradient"
    statement = (
        "the diminishing (combined) rule ends with a clearly smaller full-gradient norm than the "
        f"non-diminishing damped rule (≥ {FINAL_FACTOR:g}× smaller; the lecture: 0.0003 vs 0.013)"
    )
    runs = {"combined": combined, "damped": damped}
    unfinished = _divergences(runs) + [
        f"run rule-{n} {r.status}" for n, r in runs.items() if r.status not in ("completed", "diverged")
    ]
    if unfinished:  # no final gradient norm to compare
        return not_applicable(cid, statement, "; ".join(unfinished))
    return decide(
        cid,
        statement,
        combined.final_gradient * FINAL_FACTOR <= damped.final_gradient,
        headline=f"‖∇f‖ at the end {combined.final_gradient:.2g} (combined) vs "
        f"{damped.final_gradient:.2g} (damped)",
        meaning="a diminishing step gives local convergence; a constant one a larger final norm",
        final_full_grad_norm={n: r.final_gradient for n, r in runs.items()},
        ratio=damped.final_gradient / combined.final_gradient,
        final_step={n: r.final_step for n, r in runs.items()},
        tolerance=f"≥ {FINAL_FACTOR:g}× smaller",
    )

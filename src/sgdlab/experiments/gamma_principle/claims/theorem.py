"""Theorem 1 of "An optimization principle of deep learning?" (anonymous, 2019, ICLR 2020
submission) over the runs of an ablation that meet the premise, one function per claim: the
principle itself (`principle_claim`), 1.1 the non-increasing distance (`distance_claim`) and 1.3
the rate bound on every stretch where the principle holds (`rate_claim`)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ....probes.gamma_theorem import RATE_RTOL, RateCheck
from ...base import Claim, decide, not_applicable
from .scope import MEANINGS, Scope

# The normalized distance comes from float32 parameters: increases within 8 float32 ulps of
# ‖θ_0 − θ*‖ are rounding.
DIST_TOL = 8 * float(np.finfo(np.float32).eps)
# Theorem 1.3 speaks for a path only where its premise (the principle) holds; the rate claim
# speaks for the runs only when that is at least nine tenths of their steps.
RATE_MIN_COVERAGE = 0.9


def percent(share: float) -> str:
    """`share` as a percentage to one decimal, ">99.9%" for a share below 1 that would round to
    100.0% (so that a headline says "100.0%" only when it is all).

    >>> percent(0.25), percent(0.9997), percent(1.0)
    ('25.0%', '>99.9%', '100.0%')
    """
    return ">99.9%" if 0.999 < share < 1 and f"{share:.1%}" == "100.0%" else f"{share:.1%}"


def principle_claim(
    scope: Scope,
    positive_fraction: Mapping[str, float],
    defined_steps: Mapping[str, int],
    steps: Mapping[str, int],
) -> Claim:
    """Claim `<ablation>/principle` ("An optimization principle of deep learning?", anonymous, 2019,
    ICLR 2020 submission, Definition 1): in every run that meets the premise,

        γ_k = (⟨θ_k − θ*, U_k⟩ − (η/2)‖U_k‖²) / (‖θ_0 − θ*‖²·(ℓ(θ_k; B_k) − ℓ(θ*; B_k))) > 0

    on every step where it is defined (the loss gap above the instrument's tolerance): the
    definition asks it for all k, so the theoretical share is 1. The headline gives the worst
    run's share and, when some steps have no γ, how many of the steps have none. Not
    applicable when no run meets the premise or a run has no defined step."""
    statement = (
        f"{scope.title}: every run that meets the premise has γ_k > 0 on every step where γ_k is defined"
    )
    if none := scope.no_runs("principle", statement):
        return none
    empty = [label for label in scope.runs if not defined_steps[label]]
    per_run = {
        label: {
            "positive_fraction": positive_fraction[label],
            "defined_steps": defined_steps[label],
            "undefined_steps": steps[label] - defined_steps[label],
        }
        for label in scope.runs
    }
    if empty:
        reason = f"γ is undefined on every step of {', '.join(empty)} (loss gap ≤ its tolerance)"
        return scope.not_applicable("principle", statement, reason, per_run=per_run)
    worst = min(scope.runs, key=lambda label: positive_fraction[label])
    nonpositive = {
        label: round((1 - positive_fraction[label]) * defined_steps[label]) for label in scope.runs
    }
    total = sum(steps[x] for x in scope.runs)
    undefined = total - sum(defined_steps[x] for x in scope.runs)
    defined_share = (total - undefined) / max(1, total)
    headline = f"γ > 0 on {positive_fraction[worst]:.2%} of the defined steps in the worst run ({worst})"
    if undefined:  # a count, not a share: a share would read 100.0% for a few steps in thousands
        headline += f"; γ undefined on {undefined:,} of the {total:,} steps"
    return decide(
        scope.id("principle"),
        statement,
        all(n == 0 for n in nonpositive.values()),
        headline=headline,
        meaning=MEANINGS["principle"],
        **scope.evidence(),
        nonpositive_steps=nonpositive,
        defined_share=defined_share,
        per_run=per_run,
    )


def distance_claim(
    scope: Scope,
    largest_increase: Mapping[str, float],
    increases: Mapping[str, int],
    final: Mapping[str, float],
) -> Claim:
    """Claim `<ablation>/distance` (Theorem 1.1 of "An optimization principle of deep learning?"):
    ‖θ_k − θ*‖/‖θ_0 − θ*‖ never increases by more than DIST_TOL (rounding) in any run that
    meets the premise. Not applicable when no run meets it."""
    statement = (
        f"{scope.title}: ‖θ_k − θ*‖ is non-increasing in every run that meets the premise "
        f"(Theorem 1.1; increases below {DIST_TOL:g} of ‖θ_0 − θ*‖ count as rounding)"
    )
    if none := scope.no_runs("distance", statement):
        return none
    biggest = max(scope.runs, key=lambda label: largest_increase[label])
    return decide(
        scope.id("distance"),
        statement,
        all(largest_increase[label] <= DIST_TOL for label in scope.runs),
        headline=f"largest increase {largest_increase[biggest]:.2g} ({biggest})",
        meaning=MEANINGS["distance"],
        **scope.evidence(),
        tolerance=DIST_TOL,
        per_run={
            label: {
                "largest_increase": largest_increase[label],
                "increases": increases[label],
                "final": final[label],
            }
            for label in scope.runs
        },
    )


def rate_claim(scope: Scope, checks: Mapping[str, RateCheck]) -> Claim:
    """Claim `<ablation>/rate` (Theorem 1.3 of "An optimization principle of deep learning?"): on
    every maximal stretch a … b of steps where the principle holds, in every run that meets the
    premise, Σ_{k=a}^{b} gap_k ≤ ‖θ_a − θ*‖²/(2‖θ_0 − θ*‖²·min_k η_kγ_k) (the theorem's
    1/(2ηγ_min) restarted at θ_a; `probes.gamma_theorem.rate_check`), up to RATE_RTOL of the bound.

    Fails on any stretch over its bound; otherwise not applicable when the stretches cover less
    than RATE_MIN_COVERAGE of the runs' steps (the theorem then speaks for too little of the
    path), or when no run meets the premise. The headline gives the covered share."""
    statement = (
        f"{scope.title}: on every stretch where the principle holds, in every run that meets the "
        "premise, Σ_k gap_k ≤ ‖θ_a − θ*‖²/(2η γ_min ‖θ_0 − θ*‖²) (Theorem 1.3 from the stretch's "
        f"first step a), on at least {RATE_MIN_COVERAGE:.0%} of the steps"
    )
    if none := scope.no_runs("rate", statement):
        return none
    stretches = sum(len(checks[label].stretches) for label in scope.runs)
    covered = sum(checks[label].covered_steps for label in scope.runs)
    steps = sum(checks[label].steps for label in scope.runs)
    share = covered / steps if steps else 0.0
    violations = {
        label: [[s.first, s.last, s.gap_sum, s.bound] for s in checks[label].violations]
        for label in scope.runs
        if checks[label].violations
    }
    lowest = min(scope.runs, key=lambda label: np.nan_to_num(checks[label].covered_fraction))
    evidence = dict(
        scope.evidence(),
        covered_fraction=share,
        min_coverage=RATE_MIN_COVERAGE,
        rounding_rtol=RATE_RTOL,
        violations=violations,
        per_run={
            label: {
                "steps": checks[label].steps,
                "stretches": len(checks[label].stretches),
                "covered_fraction": checks[label].covered_fraction,
                "worst_usage": checks[label].worst_usage,
                "longest_stretch": max((s.steps for s in checks[label].stretches), default=0),
            }
            for label in scope.runs
        },
    )
    coverage = (
        f"{stretches} stretches covering {percent(share)} of the steps "
        f"(lowest: {lowest} {percent(checks[lowest].covered_fraction)})"
    )
    if violations:
        n = sum(len(v) for v in violations.values())
        headline = f"{n} stretch(es) over the bound ({', '.join(violations)}); {coverage}"
        return decide(
            scope.id("rate"), statement, False, headline=headline, meaning=MEANINGS["rate"], **evidence
        )
    if share < RATE_MIN_COVERAGE:
        reason = f"the principle holds on {share:.1%} of the steps, below {RATE_MIN_COVERAGE:.0%}"
        return not_applicable(
            scope.id("rate"), statement, reason, headline=coverage, meaning=MEANINGS["rate"], **evidence
        )
    usage = max(checks[label].worst_usage for label in scope.runs)
    headline = f"bound met on all {coverage}; Σ gap uses ≤ {usage:.2g} of it"
    return decide(scope.id("rate"), statement, True, headline=headline, meaning=MEANINGS["rate"], **evidence)

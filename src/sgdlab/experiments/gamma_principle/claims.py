"""The claims of one γ-principle ablation, each decided by one function from plain measured
numbers (so each can be tested on synthetic ones), and `ablation_claims`, which measures a set of
runs and calls them.

Every run first faces the premise (trained to an approximate global minimum: final training
loss ≤ L and training error 0). The Theorem-1 claims and the γ-vs-speed claim are computed over
the runs that meet it; the others are named in the premise claim and in each claim's evidence.
The paper's ordering of speeds is decided over every trained run: a run that never reaches the
common level is the slowest by definition.

Speed and γ describe the same stretch of each path: the *common level* is the premise threshold
L, which every premise-satisfying run reaches. Speed is the number of epochs a run takes to first
reach L (interpolated in log loss between the two epochs around the crossing; ∞ if it never
does); γ is summarized (median, fraction > 0) over the steps before that point.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ...probes.gamma import RATE_RTOL, RateCheck, rate_check_of, theorem_checks
from ...store import Run
from ..base import Claim, decide, missing_runs, not_applicable
from ..premise import Premise, premise_claim
from .settings import Ablation

# The normalized distance comes from float32 parameters: increases within 8 float32 ulps of
# ‖θ_0 − θ*‖ are rounding.
DIST_TOL = 8 * float(np.finfo(np.float32).eps)
# Theorem 1.3 speaks for a path only where its premise (the principle) holds; the rate claim
# speaks for the runs only when that is at least nine tenths of their steps.
RATE_MIN_COVERAGE = 0.9

MEANINGS = {
    "principle": "the paper's central claim: along the path every update points toward θ* by "
    "at least γ·‖θ_0 − θ*‖² times the loss gap, with γ > 0",
    "distance": "Theorem 1.1: under the principle the distance to the minimizer never grows. By γ's "
    "definition the distance grows exactly at the steps where γ_k < 0 (or, where γ is undefined, "
    "where the update moves away from θ*), so this claim reads the principle's steps from the "
    "distance's side",
    "rate": "Theorem 1.3: the summed loss gap stays below 1/(2ηγ_min), an O(1/(γK)) rate. Since "
    "γ_k is defined so that ‖θ_{k+1} − θ*‖² = ‖θ_k − θ*‖² − 2ηγ_k‖θ_0 − θ*‖²·gap_k exactly, "
    "the bound holds on every stretch where γ > 0 unless the measurements disagree with each "
    "other; the measured news is how much of the path that covers",
    "gamma-vs-speed": "Theorem 1.3 read across runs: the run with the larger γ should reach the "
    "common loss level in fewer epochs",
    "paper-order": "the paper's ranking of the training techniques by how fast they train",
}


@dataclass(frozen=True)
class Scope:
    """What one claim speaks for: its ablation (id and title) and the runs it is decided over
    (those meeting the premise), with the runs left out for missing it."""

    ablation: str
    title: str
    runs: tuple[str, ...]
    left_out: tuple[str, ...] = ()

    def id(self, kind: str) -> str:
        """The claim id `<ablation>/<kind>`."""
        return f"{self.ablation}/{kind}"

    def evidence(self) -> dict[str, Any]:
        """The runs a claim is over and those left out, for its evidence."""
        return {"runs": list(self.runs), "left_out_missing_premise": list(self.left_out)}

    def not_applicable(self, kind: str, statement: str, reason: str, **kw: Any) -> Claim:
        """Claim `kind` as not applicable, with `reason`, its meaning and the scope."""
        return not_applicable(
            self.id(kind), statement, reason, meaning=MEANINGS[kind], **self.evidence(), **kw
        )

    def no_runs(self, kind: str, statement: str) -> Claim | None:
        """Claim `kind` as not applicable when no run meets the premise, else None."""
        if self.runs:
            return None
        return self.not_applicable(kind, statement, "no run of this ablation meets the premise")


@dataclass(frozen=True)
class SeedSpread:
    """The seed-to-seed baseline of speed: epochs to the common level of one variant trained with
    two seeds (`variant` None when the scale trains no second seed). Two runs count as differing
    in speed only when their epochs differ by more than this spread."""

    variant: str | None
    epochs: tuple[float, float]

    @property
    def tie(self) -> float:
        """|e_0 − e_1| / max(e_0, e_1): the relative speed difference the seed alone made (NaN
        when either run is missing or never reached the level)."""
        a, b = self.epochs
        if not (math.isfinite(a) and math.isfinite(b)) or max(a, b) <= 0:
            return math.nan
        return abs(a - b) / max(a, b)

    def evidence(self) -> dict[str, Any]:
        """The baseline as evidence: the variant, its two epochs and the relative spread."""
        return {
            "variant": self.variant,
            "epochs_seed_0_and_1": list(self.epochs),
            "relative_spread": self.tie,
        }

    def missing(self) -> str:
        """Why there is no tie (for a not-applicable reason)."""
        if self.variant is None:
            return "this scale trains no second seed, so speed differences have no baseline"
        return (
            f"no seed-to-seed baseline: {self.variant} did not reach the level at both seeds "
            "(or was not trained here)"
        )


# --- measurements -------------------------------------------------------------------------------


def epochs_to_level(run: Run, level: float) -> float:
    """Epochs until the full training loss first reaches `level`, interpolated linearly in
    log10(loss) between the last recorded epoch above it and the first at or below (inf if
    never)."""
    epochs, loss = run.epochs("train_loss")
    hit = np.flatnonzero(loss <= level)
    if not len(hit):
        return math.inf
    i = int(hit[0])
    if i == 0:
        return float(epochs[0])
    lo, hi = math.log10(max(loss[i - 1], 1e-300)), math.log10(max(loss[i], 1e-300))
    frac = (lo - math.log10(level)) / (lo - hi) if lo > hi else 1.0
    return float(epochs[i - 1] + frac * (epochs[i] - epochs[i - 1]))


def gamma_before(run: Run, epoch: float) -> dict[str, float]:
    """Median γ and the fraction of defined steps with γ > 0, over the steps before `epoch`."""
    table = run.metrics
    if "gamma" not in table.column_names:
        return {"gamma_median": math.nan, "gamma_positive_fraction": math.nan, "gamma_steps": 0}
    e = table["epoch"].to_numpy()
    gamma = table["gamma"].to_numpy(zero_copy_only=False)
    defined = (
        table["gamma_defined"].to_numpy(zero_copy_only=False)
        if "gamma_defined" in table.column_names
        else np.ones(len(e))
    )
    keep = (e < epoch) & np.isfinite(gamma) & (np.nan_to_num(defined) > 0)
    g = gamma[keep]
    return {
        "gamma_median": float(np.median(g)) if len(g) else math.nan,
        "gamma_positive_fraction": float((g > 0).mean()) if len(g) else math.nan,
        "gamma_steps": int(len(g)),
    }


def kendall_tau(a: list[float], b: list[float]) -> float:
    """Rank agreement of two score lists, −1 … 1 (1: same order)."""
    n, s = len(a), 0.0
    for i in range(n):
        for j in range(i + 1, n):
            s += np.sign(a[i] - a[j]) * np.sign(b[i] - b[j])
    return float(s / (n * (n - 1) / 2)) if n > 1 else math.nan


def faster_beyond(epochs_fast: float, epochs_slow: float, tie: float) -> bool | None:
    """Whether a run reaching the level after `epochs_fast` is faster than one after
    `epochs_slow` by more than `tie` (a share of the slower's epochs): True or False, None when
    it cannot be told (both never reach it, or no tie for two finite speeds). A run that never
    reaches the level (∞) is slower than any run that does."""
    if math.isinf(epochs_fast) and math.isinf(epochs_slow):
        return None
    if math.isinf(epochs_slow) or math.isinf(epochs_fast):
        return math.isinf(epochs_slow)
    if math.isnan(tie):
        return None
    return epochs_slow - epochs_fast > tie * epochs_slow


def decisive_pairs(epochs: Mapping[str, float], tie: float) -> list[tuple[str, str]]:
    """Pairs (faster, slower) whose epochs to the level differ by more than `tie` × the slower
    one's: the pairs whose speed order counts."""
    labels, out = list(epochs), []
    for i, a in enumerate(labels):
        for b in labels[i + 1 :]:
            fast, slow = (a, b) if epochs[a] <= epochs[b] else (b, a)
            if faster_beyond(epochs[fast], epochs[slow], tie):
                out.append((fast, slow))
    return out


def tier_pairs(tiers: tuple[tuple[str, ...], ...]) -> list[tuple[str, str]]:
    """Every (faster, slower) pair the paper's tiers order: each run of a tier against each run
    of every later tier."""
    return [
        (fast, slow)
        for i, tier in enumerate(tiers)
        for later in tiers[i + 1 :]
        for fast in tier
        for slow in later
    ]


def present_tiers(tiers: tuple[tuple[str, ...], ...], labels) -> tuple[tuple[str, ...], ...]:
    """`tiers` restricted to `labels`, empty tiers dropped."""
    return tuple(t for t in (tuple(x for x in tier if x in labels) for tier in tiers) if t)


# --- one function per claim ---------------------------------------------------------------------


def principle_claim(
    scope: Scope,
    positive_fraction: Mapping[str, float],
    defined_steps: Mapping[str, int],
    steps: Mapping[str, int],
) -> Claim:
    """`<ablation>/principle` ("An optimization principle of deep learning?", anonymous, 2019,
    ICLR 2020 submission, Definition 1): in every run that meets the premise,

        γ_k = (⟨θ_k − θ*, U_k⟩ − (η/2)‖U_k‖²) / (‖θ_0 − θ*‖²·(ℓ(θ_k; B_k) − ℓ(θ*; B_k))) > 0

    on every step where it is defined (the loss gap above the instrument's tolerance): the
    definition asks it for all k, so the theoretical share is 1. The headline gives the worst
    run's share and, when some steps have no γ, the share of steps that are defined. Not
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
    defined_share = sum(defined_steps[x] for x in scope.runs) / max(1, sum(steps[x] for x in scope.runs))
    headline = f"γ > 0 on {positive_fraction[worst]:.2%} of the defined steps in the worst run ({worst})"
    if defined_share < 1:
        headline += f"; γ defined on {defined_share:.1%} of the steps"
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
    """`<ablation>/distance` (Theorem 1.1 of "An optimization principle of deep learning?"):
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
    """`<ablation>/rate` (Theorem 1.3 of "An optimization principle of deep learning?"): on
    every maximal stretch a … b of steps where the principle holds, in every run that meets the
    premise, Σ_{k=a}^{b} gap_k ≤ ‖θ_a − θ*‖²/(2‖θ_0 − θ*‖²·min_k η_kγ_k) (the theorem's
    1/(2ηγ_min) restarted at θ_a; `probes.gamma.rate_check`), up to RATE_RTOL of the bound.

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
        f"{stretches} stretches covering {share:.1%} of the steps "
        f"(lowest: {lowest} {checks[lowest].covered_fraction:.1%})"
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


def gamma_vs_speed_claim(
    scope: Scope,
    level: float,
    epochs: Mapping[str, float],
    median_gamma: Mapping[str, float],
    spread: SeedSpread,
) -> Claim:
    """`<ablation>/gamma-vs-speed` (Theorem 1.3 of "An optimization principle of deep learning?"
    read across runs): over the runs that meet the premise, a larger median γ before the common
    loss level goes with fewer epochs to reach it. Only pairs whose epochs differ by more than
    the measured seed-to-seed spread (`spread.tie`, a share of the slower run's) count: fails
    when one of them has its γ medians the other way round, holds otherwise. Kendall τ between
    median γ and speed is reported. Not applicable with fewer than two runs, a run with no γ
    before the level, no baseline, or no pair of runs that differ in speed beyond it."""
    statement = (
        f"{scope.title}: a larger median γ (over the steps before the common loss level "
        f"{level:g}) goes with reaching that level in fewer epochs"
    )
    labels = list(scope.runs)
    tie = spread.tie
    evidence = dict(
        scope.evidence(),
        level=level,
        seed_spread=spread.evidence(),
        epochs_to_level={x: epochs[x] for x in labels},
        median_gamma_before_level={x: median_gamma[x] for x in labels},
    )
    no_gamma = [x for x in labels if math.isnan(median_gamma[x])]
    decisive = decisive_pairs({x: epochs[x] for x in labels}, tie)
    reason = None
    if len(labels) < 2:
        reason = f"fewer than two runs meet the premise (left out: {', '.join(scope.left_out) or 'none'})"
    elif no_gamma:
        reason = f"no defined γ before the level in {', '.join(no_gamma)}"
    elif math.isnan(tie):
        reason = spread.missing()
    elif not decisive:
        reason = f"no two runs differ in speed by more than the seed-to-seed spread ({tie:.1%})"
    if reason:
        return not_applicable(
            scope.id("gamma-vs-speed"), statement, reason, meaning=MEANINGS["gamma-vs-speed"], **evidence
        )
    discordant = [[fast, slow] for fast, slow in decisive if not median_gamma[fast] > median_gamma[slow]]
    tau = kendall_tau([median_gamma[x] for x in labels], [-epochs[x] for x in labels])
    ordered = len(decisive) - len(discordant)
    headline = f"Kendall τ = {tau:+.2f}; {ordered}/{len(decisive)} decisive pairs ordered by γ"
    return decide(
        scope.id("gamma-vs-speed"),
        statement,
        not discordant,
        headline=headline,
        meaning=MEANINGS["gamma-vs-speed"],
        kendall_tau=tau,
        by_gamma=sorted(labels, key=lambda x: -median_gamma[x]),
        by_speed=sorted(labels, key=lambda x: epochs[x]),
        decisive_pairs=[list(p) for p in decisive],
        discordant_pairs=discordant,
        **evidence,
    )


def paper_order_claim(
    ablation: str,
    statement: str,
    tiers: tuple[tuple[str, ...], ...],
    level: float,
    epochs: Mapping[str, float],
    spread: SeedSpread,
) -> Claim:
    """`<ablation>/paper-order`: the paper's tiers (fastest first) hold over every trained run —
    each run of an earlier tier reaches the common loss `level` in fewer epochs than each run of a
    later one, by more than the seed-to-seed spread (`spread.tie`; the paper reports clear
    differences: "much slower", "significantly faster"). A run that never reaches the level
    (epochs ∞: stopped at its cap, diverged) is the slowest by definition.

    Fails on a pair the wrong way round or within the spread; not applicable when a pair cannot
    be told apart (neither run reaches the level, or there is no baseline for two finite
    speeds) and none fails, or when the runs sit in fewer than two tiers."""
    present = present_tiers(tiers, epochs)
    by_speed = sorted(epochs, key=lambda x: epochs[x])
    order_text = " < ".join(
        f"{x} {epochs[x]:.3g}" if math.isfinite(epochs[x]) else f"{x} ∞" for x in by_speed
    )
    evidence = dict(
        epochs_to_level=dict(epochs),
        level=level,
        by_speed=by_speed,
        tiers=[list(t) for t in present],
        never_reached=[x for x in by_speed if math.isinf(epochs[x])],
        seed_spread=spread.evidence(),
    )
    claim_id, meaning = f"{ablation}/paper-order", MEANINGS["paper-order"]
    if len(present) < 2:
        reason = "the runs all sit in one of the paper's tiers, which it does not order"
        return not_applicable(claim_id, statement, reason, headline=order_text, meaning=meaning, **evidence)
    verdicts = {(a, b): faster_beyond(epochs[a], epochs[b], spread.tie) for a, b in tier_pairs(present)}
    wrong = [[a, b] for (a, b), ok in verdicts.items() if ok is False]
    undecided = [[a, b] for (a, b), ok in verdicts.items() if ok is None]
    headline = f"epochs to {level:g}: {order_text}"
    if not math.isnan(spread.tie):
        headline += f" (seed spread {spread.tie:.1%})"
    if wrong:
        return decide(
            claim_id, statement, False, headline=headline, meaning=meaning, not_faster=wrong, **evidence
        )
    if undecided:
        reason = (
            "cannot tell apart "
            + "; ".join(f"{a} and {b}" for a, b in undecided)
            + (
                f": neither reaches {level:g}"
                if all(math.isinf(epochs[a]) for a, _ in undecided)
                else f" ({spread.missing()})"
            )
        )
        return not_applicable(
            claim_id, statement, reason, headline=headline, meaning=meaning, undecided=undecided, **evidence
        )
    return decide(claim_id, statement, True, headline=headline, meaning=meaning, **evidence)


# --- one ablation -------------------------------------------------------------------------------


def ablation_claims(
    ab: Ablation, runs: dict[str, Run], premise: Premise, spread: SeedSpread
) -> tuple[list[Claim], dict[str, dict]]:
    """The premise, Theorem-1 and ordering claims of one ablation (speed differences within
    `spread`, the measured seed-to-seed baseline, count as ties); and one summary row per run."""
    absent = missing_runs(list(ab.variants), runs)
    claim, meets = premise_claim(f"{ab.id}/premise", ab.title, premise, runs, ab.exceptions)
    if absent:
        claim = decide(
            claim.id,
            claim.statement,
            None,
            reason=f"not trained here (--only): {', '.join(absent)}",
            headline=claim.headline,
            meaning=claim.meaning,
            **claim.evidence,
        )
    level = premise.max_loss
    scope = Scope(ab.id, ab.title, tuple(meets), tuple(label for label in runs if label not in meets))
    checks = {label: theorem_checks(runs[label].metrics) for label in meets}
    rates = {label: rate_check_of(runs[label].metrics) for label in meets}
    speed = {label: epochs_to_level(run, level) for label, run in runs.items()}
    before = {label: gamma_before(runs[label], speed[label]) for label in meets}
    order_statement = f"{ab.title}: {ab.paper_statement} (epochs to the common loss level {level:g})"

    def each(key: str) -> dict[str, Any]:
        return {label: c[key] for label, c in checks.items()}

    claims = [
        claim,
        principle_claim(scope, each("positive_fraction"), each("defined_steps"), each("steps")),
        distance_claim(scope, each("dist_max_increase"), each("dist_increases"), each("dist_final")),
        rate_claim(scope, rates),
    ]
    if absent:
        reason = f"needs every run of the ablation; not trained here (--only): {', '.join(absent)}"
        claims += [
            scope.not_applicable(
                "gamma-vs-speed", f"{ab.title}: a larger median γ goes with faster training", reason
            ),
            not_applicable(f"{ab.id}/paper-order", order_statement, reason, meaning=MEANINGS["paper-order"]),
        ]
    else:
        medians = {label: before[label]["gamma_median"] for label in meets}
        claims += [
            gamma_vs_speed_claim(scope, level, {x: speed[x] for x in meets}, medians, spread),
            paper_order_claim(ab.id, order_statement, ab.paper_tiers, level, speed, spread),
        ]

    if ab.why_not_paper:
        claims = [
            replace(c, evidence={**c.evidence, "departure_from_paper": ab.why_not_paper}) for c in claims
        ]
    per_run = {}
    for label, run in runs.items():
        row = premise.check(run)
        row = {
            "final_train_loss": row["final_train_loss"],
            "final_train_error": row["final_train_error"],
            "meets_premise": row["meets"],
            "status": run.status,
            "epochs": run.summary.get("epochs"),
            "epochs_to_level": speed[label],
        }
        if label in checks:
            row |= {**checks[label], **before[label]}
        per_run[label] = row
    return claims, per_run

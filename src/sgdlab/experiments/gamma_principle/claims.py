"""The claims of one γ-principle ablation, decided from its runs' metrics.

Every run first faces the premise (trained to an approximate global minimum: final training
loss ≤ L and training error 0). The Theorem-1 claims and the orderings are computed over the runs
that meet it; the others are named in the premise claim and in each claim's evidence.

Speed and γ describe the same stretch of each path: the *common level* is the premise threshold
L, which every premise-satisfying run reaches. Speed is the number of epochs a run takes to first
reach L (interpolated in log loss between the two epochs around the crossing); γ is summarized
(median, fraction > 0) over the steps before that point.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...probes.gamma import theorem_checks
from ...store import Run
from ..base import Claim, decide, missing_runs, not_applicable
from ..premise import Premise, premise_claim
from .settings import Ablation

POSITIVE_FRACTION = 0.95  # "the principle holds": γ > 0 on at least this share of defined steps
DIST_TOL = 1e-6  # increases of the normalized distance below this are rounding
SPEED_TIE = 0.10  # runs whose epochs-to-level differ by less than 10 % are equally fast

MEANINGS = {
    "principle": "the paper's central claim: along the path every update points toward θ* by "
    "at least γ·‖θ_0 − θ*‖² times the loss gap, with γ > 0",
    "distance": "Theorem 1.1: under the principle the distance to the minimizer never grows",
    "rate": "Theorem 1.3: the summed loss gap stays below 1/(2ηγ_min), an O(1/(γK)) rate",
    "gamma-vs-speed": "Theorem 1.3 read across runs: the run with the larger γ should reach the "
    "common loss level in fewer epochs",
    "paper-order": "the paper's ranking of the training techniques by how fast they train",
}


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


def decisive_discordant(gamma: dict[str, float], epochs: dict[str, float]) -> list[list[str]]:
    """Pairs (faster, slower) whose speeds differ by ≥ SPEED_TIE but whose γ medians are ordered
    the other way (the slower run has the larger γ)."""
    labels, out = list(gamma), []
    for i, a in enumerate(labels):
        for b in labels[i + 1 :]:
            fast, slow = (a, b) if epochs[a] <= epochs[b] else (b, a)
            if epochs[slow] - epochs[fast] < SPEED_TIE * epochs[slow]:
                continue
            if not gamma[fast] > gamma[slow]:
                out.append([fast, slow])
    return out


def tiers_hold(epochs: dict[str, float], tiers: tuple[tuple[str, ...], ...]) -> bool:
    """Every run of an earlier tier reaches the level in fewer epochs than every later one."""
    return all(
        epochs[fast] < epochs[slow]
        for i, tier in enumerate(tiers)
        for later in tiers[i + 1 :]
        for fast in tier
        for slow in later
    )


def ablation_claims(
    ab: Ablation, runs: dict[str, Run], premise: Premise
) -> tuple[list[Claim], dict[str, dict]]:
    """The premise, Theorem-1 and ordering claims of one ablation; and one summary row per run."""
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
    claims = [claim]
    left_out = [label for label in runs if label not in meets]
    level = premise.max_loss
    ok = {label: runs[label] for label in meets}
    checks = {label: theorem_checks(run.metrics) for label, run in ok.items()}
    speed = {label: epochs_to_level(run, level) for label, run in ok.items()}
    before = {label: gamma_before(run, speed[label]) for label, run in ok.items()}
    over = {"runs": list(ok), "left_out_missing_premise": left_out}
    claims += theorem_claims(ab, checks, over)
    claims += ordering_claims(ab, speed, before, over, absent, level)

    per_run = {}
    for label, run in runs.items():
        row = premise.check(run)
        row = {
            "final_train_loss": row["final_train_loss"],
            "final_train_error": row["final_train_error"],
            "meets_premise": row["meets"],
            "status": run.status,
            "epochs": run.summary.get("epochs"),
        }
        if label in ok:
            row |= {**checks[label], "epochs_to_level": speed[label], **before[label]}
        per_run[label] = row
    return claims, per_run


def theorem_claims(ab: Ablation, checks: dict[str, dict], over: dict[str, Any]) -> list[Claim]:
    """The three Theorem-1 claims of "An optimization principle of deep learning?"
    (anonymous, 2019, ICLR 2020 submission) over the runs that meet the premise, from each
    run's `probes.gamma.theorem_checks`:

    - `<ablation>/principle`: γ_k = (⟨θ_k − θ*, U_k⟩ − (η/2)‖U_k‖²) / (‖θ_0 − θ*‖²·(ℓ(θ_k; B_k)
      − ℓ(θ*; B_k))) > 0 on ≥ POSITIVE_FRACTION (95 %) of the defined steps, in every run.
    - `<ablation>/distance` (Theorem 1.1): ‖θ_k − θ*‖/‖θ_0 − θ*‖ never increases by more
      than DIST_TOL (1e-6).
    - `<ablation>/rate` (Theorem 1.3): Σ_k (ℓ(θ_k; B_k) − ℓ(θ*; B_k)) ≤ 1/(2ηγ_min) over the
      prefix where the principle holds, in every run.

    All three are not applicable when no run meets the premise."""
    principle = (
        f"{ab.title}: every run that meets the premise obeys the γ-principle (γ_k > 0 on "
        f"≥ {POSITIVE_FRACTION:.0%} of the defined steps)"
    )
    distance = (
        f"{ab.title}: ‖θ_k − θ*‖ is non-increasing in every run that meets the premise "
        f"(Theorem 1.1; increases below {DIST_TOL:g} of ‖θ_0 − θ*‖ count as rounding)"
    )
    rate = (
        f"{ab.title}: Σ_k gap_k ≤ 1/(2η γ_min) on the prefix where the principle holds, in "
        "every run that meets the premise (Theorem 1.3)"
    )
    if not checks:
        reason = "no run of this ablation meets the premise"
        return [
            not_applicable(f"{ab.id}/{kind}", text, reason, meaning=MEANINGS[kind], **over)
            for kind, text in (("principle", principle), ("distance", distance), ("rate", rate))
        ]
    fractions = {label: c["positive_fraction"] for label, c in checks.items()}
    worst = min(fractions, key=lambda x: fractions[x] if not math.isnan(fractions[x]) else -1)
    increases = {label: c["dist_max_increase"] for label, c in checks.items()}
    biggest = max(increases, key=lambda label: increases[label])
    used = {
        label: c["gap_sum_prefix"] / c["rate_bound"] if c["rate_bound"] not in (0, math.inf) else 0.0
        for label, c in checks.items()
    }
    return [
        decide(
            f"{ab.id}/principle",
            principle,
            all(f >= POSITIVE_FRACTION for f in fractions.values()),
            headline=f"γ > 0 on {fractions[worst]:.1%} of steps in the worst run ({worst})",
            meaning=MEANINGS["principle"],
            **over,
            per_run={
                label: {
                    "positive_fraction": c["positive_fraction"],
                    "defined_steps": c["defined_steps"],
                    "undefined_steps": c["steps"] - c["defined_steps"],
                    "gamma_median": c["gamma_median"],
                }
                for label, c in checks.items()
            },
        ),
        decide(
            f"{ab.id}/distance",
            distance,
            all(v <= DIST_TOL for v in increases.values()),
            headline=f"largest increase {increases[biggest]:.2g} ({biggest})",
            meaning=MEANINGS["distance"],
            **over,
            per_run={
                label: {
                    "largest_increase": c["dist_max_increase"],
                    "increases": c["dist_increases"],
                    "final": c["dist_final"],
                }
                for label, c in checks.items()
            },
        ),
        decide(
            f"{ab.id}/rate",
            rate,
            all(c["rate_bound_holds"] for c in checks.values()),
            headline=f"Σ gap uses ≤ {max(used.values()):.2g} of the bound",
            meaning=MEANINGS["rate"],
            **over,
            per_run={
                label: {
                    "gap_sum": c["gap_sum_prefix"],
                    "bound": c["rate_bound"],
                    "prefix_steps": c["principle_prefix_steps"],
                }
                for label, c in checks.items()
            },
        ),
    ]


def ordering_claims(
    ab: Ablation,
    speed: dict[str, float],
    before: dict[str, dict],
    over: dict[str, Any],
    absent: list[str],
    level: float,
) -> list[Claim]:
    """The two speed claims of one ablation (after "An optimization principle of deep
    learning?", anonymous, 2019, ICLR 2020 submission), over the runs that meet the premise:

    - `<ablation>/gamma-vs-speed`: a larger median γ before the common loss level goes with
      fewer epochs to reach it; holds when no pair of runs whose epochs differ by
      ≥ SPEED_TIE (10 %) has its γ medians the other way round (Kendall τ between median γ
      and speed is reported).
    - `<ablation>/paper-order`: the paper's tiers (`ab.paper_tiers`, fastest first) hold —
      every run of an earlier tier reaches the level in fewer epochs than every run of a
      later one.

    Not applicable when a run of the ablation was not trained here, when fewer than two runs
    meet the premise, or (paper-order) when those runs all sit in one tier."""
    by_gamma_stmt = (
        f"{ab.title}: a larger median γ (over the steps before the common loss level "
        f"{level:g}) goes with reaching that level in fewer epochs"
    )
    order_stmt = f"{ab.title}: {ab.paper_statement} (epochs to the common loss level {level:g})"
    reason = None
    if absent:
        reason = f"needs every run of the ablation; not trained here (--only): {', '.join(absent)}"
    elif len(speed) < 2:
        reason = (
            f"fewer than two runs meet the premise (left out: "
            f"{', '.join(over['left_out_missing_premise']) or 'none'})"
        )
    if reason:
        return [
            not_applicable(
                f"{ab.id}/gamma-vs-speed", by_gamma_stmt, reason, meaning=MEANINGS["gamma-vs-speed"], **over
            ),
            not_applicable(
                f"{ab.id}/paper-order", order_stmt, reason, meaning=MEANINGS["paper-order"], **over
            ),
        ]
    labels = list(speed)
    medians = {x: before[x]["gamma_median"] for x in labels}
    tau = kendall_tau([medians[x] for x in labels], [-speed[x] for x in labels])
    discordant = decisive_discordant(medians, speed)
    by_speed = sorted(labels, key=lambda x: speed[x])
    evidence = dict(
        over,
        epochs_to_level=speed,
        level=level,
        by_speed=by_speed,
        median_gamma_before_level=medians,
        gamma_positive_fraction_before_level={x: before[x]["gamma_positive_fraction"] for x in labels},
    )
    claims = [
        decide(
            f"{ab.id}/gamma-vs-speed",
            by_gamma_stmt,
            None if any(math.isnan(v) for v in medians.values()) else not discordant,
            headline=f"Kendall τ = {tau:+.2f}"
            + (f"; {len(discordant)} pair(s) out of order" if discordant else ""),
            meaning=MEANINGS["gamma-vs-speed"],
            kendall_tau=tau,
            by_gamma=sorted(labels, key=lambda x: -medians[x]),
            discordant_pairs=discordant,
            speed_tie=SPEED_TIE,
            **evidence,
        )
    ]
    tiers = tuple(t for t in (tuple(x for x in tier if x in speed) for tier in ab.paper_tiers) if t)
    order_text = " < ".join(f"{x} {speed[x]:.3g}" for x in by_speed)
    if len(tiers) < 2:
        claims.append(
            not_applicable(
                f"{ab.id}/paper-order",
                order_stmt,
                "the runs that meet the premise all sit in one of the paper's tiers, which it does not order",
                headline=order_text,
                meaning=MEANINGS["paper-order"],
                tiers=[list(t) for t in tiers],
                **evidence,
            )
        )
    else:
        claims.append(
            decide(
                f"{ab.id}/paper-order",
                order_stmt,
                tiers_hold(speed, tiers),
                headline=f"epochs: {order_text}",
                meaning=MEANINGS["paper-order"],
                tiers=[list(t) for t in tiers],
                **evidence,
            )
        )
    return claims

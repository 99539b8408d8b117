"""The speed claims of a γ-principle ablation: larger γ goes with faster training
(`gamma_vs_speed_claim`, over the runs that meet the premise) and the paper's ordering of the
techniques by speed (`paper_order_claim`, over every trained run: a run that never reaches the
common level is the slowest by definition). Speed differences within the measured seed-to-seed
spread count as ties."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from ...base import Claim, decide, not_applicable
from ..configs import present_tiers
from ..measure import SeedSpread
from .scope import MEANINGS, Scope


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


def gamma_vs_speed_claim(
    scope: Scope,
    level: float,
    epochs: Mapping[str, float],
    median_gamma: Mapping[str, float],
    spread: SeedSpread,
) -> Claim:
    """Claim `<ablation>/gamma-vs-speed` (Theorem 1.3 of "An optimization principle of deep learning?"
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


def speed_order_text(by_speed: list[str], epochs: Mapping[str, float]) -> str:
    """The runs fastest first with their epochs, "<" between them, or "≈" where the printed
    values are the same (a "169 < 169" would claim an order the digits do not show)."""
    shown = [f"{epochs[x]:.3g}" if math.isfinite(epochs[x]) else "∞" for x in by_speed]
    text = f"{by_speed[0]} {shown[0]}"
    for i in range(1, len(by_speed)):
        text += f" {'≈' if shown[i] == shown[i - 1] else '<'} {by_speed[i]} {shown[i]}"
    return text


def paper_order_claim(
    ablation: str,
    statement: str,
    tiers: tuple[tuple[str, ...], ...],
    level: float,
    epochs: Mapping[str, float],
    spread: SeedSpread,
) -> Claim:
    """Claim `<ablation>/paper-order`: the paper's tiers (fastest first) hold over every trained run —
    each run of an earlier tier reaches the common loss `level` in fewer epochs than each run of a
    later one, by more than the seed-to-seed spread (`spread.tie`; the paper reports clear
    differences: "much slower", "significantly faster"). A run that never reaches the level
    (epochs ∞: stopped at its cap, diverged) is the slowest by definition.

    Fails on a pair the wrong way round or within the spread; not applicable when a pair cannot
    be told apart (neither run reaches the level, or there is no baseline for two finite
    speeds) and none fails, or when the runs sit in fewer than two tiers."""
    present = present_tiers(tiers, epochs)
    by_speed = sorted(epochs, key=lambda x: epochs[x])
    order_text = speed_order_text(by_speed, epochs)
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

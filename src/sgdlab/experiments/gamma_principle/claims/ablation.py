"""All the claims of one γ-principle ablation, from its premise claim and its measured numbers.

Every run first faces the premise (trained to an approximate global minimum: final training
loss ≤ L and training error 0). The Theorem-1 claims and the γ-vs-speed claim are computed over
the runs that meet it; the others are named in the premise claim and in each claim's evidence.
The paper's ordering of speeds is decided over every trained run.
"""

from __future__ import annotations

from dataclasses import replace

from ...base import Claim, decide, not_applicable
from ..configs import Ablation
from ..measure import AblationMeasures, SeedSpread
from .scope import MEANINGS, Scope
from .speed import gamma_vs_speed_claim, paper_order_claim
from .theorem import distance_claim, principle_claim, rate_claim


def untrained_premise(claim: Claim, absent: list[str]) -> Claim:
    """The premise claim of an ablation some of whose runs `--only` left out (`absent`): not
    applicable, with what the trained runs showed kept in its evidence."""
    return decide(
        claim.id,
        claim.statement,
        None,
        reason=f"not trained here (--only): {', '.join(absent)}",
        headline=claim.headline,
        meaning=claim.meaning,
        **claim.evidence,
    )


def ablation_claims(
    ab: Ablation,
    premise: Claim,
    meets: list[str],
    absent: list[str],
    m: AblationMeasures,
    spread: SeedSpread,
) -> list[Claim]:
    """The claims of ablation `ab`: its `premise` claim (`experiments.premise.premise_claim`,
    met by the runs `meets`), then the principle, distance and rate claims over those runs, and the
    γ-vs-speed and paper-order claims (speed differences within `spread`, the measured
    seed-to-seed baseline, count as ties), from the measured numbers `m` of the runs trained
    here. The runs named in `absent` (left out by --only) make the premise and the claims that
    need every run not applicable. Each claim's evidence records where the scale leaves the
    paper's settings (`ab.why_not_paper`)."""
    level = m.level
    scope = Scope(ab.id, ab.title, tuple(meets), tuple(label for label in m.speed if label not in meets))
    order_statement = f"{ab.title}: {ab.paper_statement} (epochs to the common loss level {level:g})"
    claims = [
        untrained_premise(premise, absent) if absent else premise,
        principle_claim(scope, m.each("positive_fraction"), m.each("defined_steps"), m.each("steps")),
        distance_claim(scope, m.each("dist_max_increase"), m.each("dist_increases"), m.each("dist_final")),
        rate_claim(scope, m.rates),
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
        medians = {label: m.before[label]["gamma_median"] for label in meets}
        claims += [
            gamma_vs_speed_claim(scope, level, {x: m.speed[x] for x in meets}, medians, spread),
            paper_order_claim(ab.id, order_statement, ab.paper_tiers, level, m.speed, spread),
        ]
    if ab.why_not_paper:
        claims = [
            replace(c, evidence={**c.evidence, "departure_from_paper": ab.why_not_paper}) for c in claims
        ]
    return claims

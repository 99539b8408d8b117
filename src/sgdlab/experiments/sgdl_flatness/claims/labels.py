"""The label comparison's claims. Natural vs random labels (Zhang et al. 2017, §5 of Theory
IIb): the report's MLP trained by SGD to zero training error on the same images with their
labels and with uniformly random labels (data.label_noise = 1), three seeds each, then compared
by four flatness measures at the minimizers (`measure.labels`):

  λ_max      top Hessian eigenvalue of the training loss (the `hessian` probe, Lanczos)
  trace      Hutchinson's estimate of tr H, with its standard error
  sharpness  mean loss increase under random filter-normalized perturbations of relative size r
             (Li et al. 2018's normalization, each filter moved by r·‖filter‖)
  simplex    the three-point interpolation w_λ = λ1w1 + λ2w2 + λ3w3 between the three seeds'
             minimizers: the mean loss over the simplex (λ ≥ 0) above the mean loss at its
             corners λ = e_1, e_2, e_3 (the minimizers themselves)

Runs that miss zero training error are named in the premise claim and left out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ....store import Run
from ...base import Claim, decide, not_applicable
from ...premise import Premise, premise_claim
from ..configs import KINDS
from ..settings import LabelSettings


def premise(s: LabelSettings) -> Premise:
    """Zero training error at a training loss ≤ `s.stop_loss`: the minimizers compared."""
    return Premise(max_loss=s.stop_loss, max_error=0.0)


MEASURES = (
    ("lambda_max", "top Hessian eigenvalue λ_max"),
    ("trace", "Hessian trace (Hutchinson)"),
    ("sharpness", "mean loss increase under filter-normalized perturbations"),
)
MEANING = (
    "Zhang et al.: minimizers that generalize (natural labels) sit in flatter regions than those that "
    "memorize (random labels)"
)

MEANING = (
    "Zhang et al.: minimizers that generalize (natural labels) sit in flatter regions than those that "
    "memorize (random labels)"
)


@dataclass(frozen=True)
class Measured:
    """One flatness measure at the minimizers of one label kind: a value per seed and its
    estimator's standard error (0 where the estimate is exact to its tolerance)."""

    values: tuple[float, ...]
    se: tuple[float, ...]
    seeds: int  # seeds trained, whether or not they reached zero training error


def separation_claim(key: str, statement: str, natural: Measured, random: Measured) -> Claim:
    """Claim `labels/<key>`: every natural-label minimizer's measure is below every random-label
    one's, beyond 3 standard errors of each estimate (max(v + 3·se) over natural seeds <
    min(v − 3·se) over random seeds). Not applicable (premise: minimizers at zero training
    error) without a measured seed of each kind."""
    if not natural.values or not random.values:
        return not_applicable(
            f"labels/{key}",
            statement,
            "needs runs of both label kinds at zero training error",
            natural=list(natural.values),
            random=list(random.values),
        )
    nat, rnd = np.array(natural.values), np.array(random.values)
    upper = nat + 3 * np.array(natural.se)
    lower = rnd - 3 * np.array(random.se)
    mean_n, mean_r = float(nat.mean()), float(rnd.mean())
    ratio = f" (×{mean_r / mean_n:.2g})" if mean_n > 0 else ""
    return decide(
        f"labels/{key}",
        statement,
        bool(upper.max() < lower.min()),
        headline=f"natural {mean_n:.3g} vs random {mean_r:.3g}{ratio}; seeds at zero training error: "
        f"natural {len(nat)}/{natural.seeds}, random {len(rnd)}/{random.seeds}",
        meaning=MEANING,
        natural=nat.tolist(),
        random=rnd.tolist(),
        natural_se=list(natural.se),
        random_se=list(random.se),
        natural_mean=mean_n,
        random_mean=mean_r,
        flatter_by_mean="natural" if mean_n < mean_r else "random",
        tolerance="every natural value + 3 SE below every random value − 3 SE (SE: the estimator's "
        "standard error: Hutchinson probes, perturbation directions; 0 for Lanczos λ_max)",
    )


def simplex_claim(natural: dict[str, Any] | None, random: dict[str, Any] | None) -> Claim:
    """Claim `labels/simplex_excess`: on the three-point interpolation surfaces
    (`surface_summary`), the natural-label simplex's mean loss above its corners is below the
    random-label one's, and so is each edge's: every natural edge excess below every random one
    (the three edges, one per pair of minimizers, give the spread a single surface hides). Not
    applicable (premise) unless both label kinds have three minimizers at zero training error."""
    statement = (
        "Natural-label minimizers are flatter than random-label ones by the mean loss over the "
        "three-point simplex above its corners (the three minimizers), and along each of its "
        "edges (one surface per label kind, through its three seeds' minimizers)"
    )
    if natural is None or random is None:
        return not_applicable(
            "labels/simplex_excess",
            statement,
            "the interpolation needs three minimizers of each label kind at zero training error",
        )
    n, r = natural["simplex_excess"], random["simplex_excess"]
    edges = max(natural["edge_excess"]) < min(random["edge_excess"])
    return decide(
        "labels/simplex_excess",
        statement,
        n < r and edges,
        headline=f"natural {n:.3g} vs random {r:.3g} above the corners' loss "
        f"({natural['corner_mean']:.3g} and {random['corner_mean']:.3g}); edges "
        f"{min(natural['edge_excess']):.3g}–{max(natural['edge_excess']):.3g} vs "
        f"{min(random['edge_excess']):.3g}–{max(random['edge_excess']):.3g}",
        meaning=MEANING,
        natural=natural,
        random=random,
        edges_separate=edges,
        flatter_by_mean="natural" if n < r else "random",
        tolerance="every natural edge excess below every random one (the spread over pairs of minimizers)",
    )


def measures_agree_claim(directions: dict[str, str]) -> Claim:
    """Claim `labels/measures-agree`: the measures decided (measure → the label kind flatter by
    its mean) all name the same kind. Not applicable with fewer than two measures decided."""
    statement = "The flatness measures agree on which label kind gives the flatter minimizers"
    if len(directions) < 2:
        return not_applicable("labels/measures-agree", statement, "fewer than two measures decided")
    return decide(
        "labels/measures-agree",
        statement,
        len(set(directions.values())) == 1,
        headline=", ".join(f"{k}: {v}" for k, v in directions.items()),
        meaning="curvature (λ_max, trace), random-direction sharpness and the simplex surface "
        "are different summaries; agreement makes the flatness verdict robust",
        flatter_by_mean=directions,
    )


def label_claims(
    runs: dict[str, Run],
    s: LabelSettings,
    measured: dict[str, dict[str, float]],
    surfaces: dict[str, dict[str, Any]],
) -> list[Claim]:
    """The label-comparison claims (after Zhang, Liao, Rakhlin, Miranda, Golowich & Poggio 2017,
    "Theory of deep learning IIb: optimization properties of SGD", §5):

    - `labels/zero-train-error`: the premise, every run reaching zero training error.
    - `labels/lambda_max`, `labels/trace`, `labels/sharpness`: `separation_claim` of λ_max,
      Hutchinson tr H and the mean loss increase under filter-normalized perturbations of
      relative size r = `s.radii[0]`, over the runs that meet the premise.
    - `labels/simplex_excess`: `simplex_claim`.
    - `labels/measures-agree`: `measures_agree_claim` over the measures decided."""
    claim, meets = premise_claim("labels/zero-train-error", "natural and random labels", premise(s), runs)
    claims = [claim]
    r0 = f"{s.radii[0]:g}"
    for key, title in MEASURES:
        field, se = (
            (f"sharpness_mean_{r0}", f"sharpness_se_{r0}") if key == "sharpness" else (key, f"{key}_se")
        )
        statement = (
            f"Natural-label minimizers are flatter than random-label ones by the {title}"
            + (f" (r = {r0})" if key == "sharpness" else "")
            + " (every natural seed below every random one)"
        )
        groups = {}
        for kind in KINDS:
            names = [lb for lb in meets if lb.startswith(f"labels-{kind}-")]
            groups[kind] = Measured(
                tuple(float(measured[lb][field]) for lb in names),
                tuple(float(measured[lb].get(se, 0.0)) for lb in names),
                len(s.seeds),
            )
        claims.append(separation_claim(key, statement, groups["natural"], groups["random"]))
    claims.append(simplex_claim(surfaces.get("natural"), surfaces.get("random")))
    directions = {
        c.id.split("/")[1]: c.evidence["flatter_by_mean"] for c in claims[1:] if c.verdict != "not-applicable"
    }
    claims.append(measures_agree_claim(directions))
    return claims

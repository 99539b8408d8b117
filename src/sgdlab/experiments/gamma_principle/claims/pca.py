"""The PCA-view claim of the optimizer ablation (Appendix D.2 of "An optimization principle of
deep learning?", after Li et al. 2018): SGD's own direction at points of the momentum and Adam
paths points elsewhere than those paths go."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ...base import Claim, decide, not_applicable

ANGLE = 45.0  # degrees: halfway between the same direction and a perpendicular one
CLAIM_ID = "optimizer/pca-directions"
STATEMENT = (
    f"in the PCA plane of the momentum and Adam paths, the SGD update directions differ "
    f"from the paths' own directions (median angle > {ANGLE:g}°; the paper's Appendix D.2)"
)
MEANING = (
    "the paper's picture: SGD's own direction at points of the momentum/Adam "
    "paths points elsewhere than those paths go"
)


def pca_directions_claim(median_angle: Mapping[str, float], evidence: dict[str, Any]) -> Claim:
    """Claim `optimizer/pca-directions` (Appendix D.2 of "An optimization principle of deep
    learning?", after Li et al. 2018's PCA view): in every run (momentum, Adam), the median angle
    between the SGD direction and the path's own step in the PCA plane exceeds ANGLE (45°,
    halfway between the same direction and a perpendicular one). Not applicable when a run has no
    angle (its path does not move in the plane). `evidence` holds the PCA numbers per run."""
    missing = [label for label, angle in median_angle.items() if math.isnan(angle)]
    if missing:
        reason = f"no step of the path of {', '.join(missing)} moves in its PCA plane"
        return not_applicable(CLAIM_ID, STATEMENT, reason, meaning=MEANING, **evidence)
    return decide(
        CLAIM_ID,
        STATEMENT,
        all(angle > ANGLE for angle in median_angle.values()),
        headline=", ".join(f"{k} {v:.0f}°" for k, v in median_angle.items()),
        meaning=MEANING,
        **evidence,
    )


def pca_untrained_claim(reason: str) -> Claim:
    """Claim `optimizer/pca-directions` when it cannot be measured: not applicable for `reason`
    (the momentum or Adam run not trained here, or diverged)."""
    return not_applicable(CLAIM_ID, STATEMENT, reason)

"""What every claim of a γ-principle ablation shares: what each claim kind means (`MEANINGS`) and
its `Scope` (the ablation and the runs the claim speaks for)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...base import Claim, not_applicable

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

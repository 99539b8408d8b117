"""The premise every group of `which-minimizer` claims shares: its runs were trained to the loss
threshold with zero training error (`premise`)."""

from __future__ import annotations

from ...base import Claim
from ...premise import Premise, premise_claim
from ..measure.table import Table


class _Row:
    """A measured run in the shape `premise_claim` reads (status, final, summary)."""

    def __init__(self, t: Table, i: int):
        self.status = t["status"][i]
        self.final = {
            "train_loss": float(t["final_train_loss"][i]),
            "train_error": float(t["final_train_error"][i]),
        }
        self.summary = {"epochs": int(t["steps"][i]), "stop_reason": t["stop_reason"][i]}


def premise(id: str, title: str, t: Table, rows: list[int]) -> Claim:
    """Claim `<group>/premise`: every run reached the loss threshold with zero training error (the
    paper trains until it does); the claims of the group use only the runs that did."""
    runs = {t["name"][i]: _Row(t, i) for i in rows}
    claim, _ = premise_claim(id, title, Premise(max_loss=t.stop_loss, max_error=0.0), runs)
    return claim

"""Premises: the regime a paper's statement assumes, checked on each run before any claim that
needs it is decided. A run that misses the premise is named in the premise claim and left out
of the claims that assume it, never silently dropped."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from .base import Claim, decide


class Trained(Protocol):
    """What a premise reads of a run: a `store.Run`, or anything shaped like one (a row of a
    measured table)."""

    @property
    def status(self) -> str:
        """The run's status: completed, diverged, …"""
        ...

    @property
    def final(self) -> Mapping[str, float]:
        """The final measurements (train_loss, train_error, …)."""
        ...

    @property
    def summary(self) -> Mapping[str, Any]:
        """The run summary (epochs, stop_reason, diverged_at, …)."""
        ...


@dataclass(frozen=True)
class Premise:
    """The premise "trained to an approximate global minimum": the run completed (or stopped at
    its loss threshold) with final training loss ≤ `max_loss` and training error ≤ `max_error`."""

    max_loss: float
    max_error: float = 0.0

    def describe(self) -> str:
        """The premise in words, for claim statements ("final training loss ≤ 1e-05 and
        training error 0")."""
        error = "0" if self.max_error == 0 else f"≤ {self.max_error:g}"
        return f"final training loss ≤ {self.max_loss:g} and training error {error}"

    def check(self, run: Trained) -> dict[str, Any]:
        """The run's final loss and error and whether they meet the premise (with why not)."""
        final = run.final
        loss, error = final.get("train_loss"), final.get("train_error")
        loss = math.nan if loss is None else float(loss)
        error = math.nan if error is None else float(error)
        why = []
        if run.status == "diverged":  # its final numbers are NaN: the divergence is the reason
            why.append(f"diverged at step {run.summary.get('diverged_at')}")
        else:
            if run.status != "completed":
                why.append(f"status {run.status}")
            if not loss <= self.max_loss:
                why.append(f"training loss {loss:.3g} > {self.max_loss:g}")
            if not error <= self.max_error:
                why.append(f"training error {error:.3g} > {self.max_error:g}")
        return {
            "final_train_loss": loss,
            "final_train_error": error,
            "status": run.status,
            "epochs": run.summary.get("epochs"),
            "stop_reason": run.summary.get("stop_reason"),
            "meets": not why,
            "why_not": "; ".join(why),
        }


def premise_claim(
    id: str,
    title: str,
    premise: Premise,
    runs: Mapping[str, Trained],
    exceptions: dict[str, str] | None = None,
) -> tuple[Claim, list[str]]:
    """The claim `<id>`: every run except the paper's documented `exceptions` (label → what the
    paper reports) meets the premise. Returns it and the labels of the runs that meet it; the
    claims that assume the premise are computed over those runs only."""
    exceptions = exceptions or {}
    checks = {label: premise.check(run) for label, run in runs.items()}
    for label, why in exceptions.items():
        if label in checks:
            checks[label]["paper_exception"] = why
    meets = [label for label, c in checks.items() if c["meets"]]
    expected = [label for label in runs if label not in exceptions]
    missed = [label for label in expected if label not in meets]
    statement = f"{title}: every run reaches the premise ({premise.describe()})" + (
        f", except where the paper itself reports no convergence ({', '.join(exceptions)})"
        if exceptions
        else ""
    )
    if not runs:
        return decide(id, statement, None, reason="no runs of this group were trained"), []
    headline = f"{len(meets)}/{len(runs)} runs meet it" + (f"; missed: {', '.join(missed)}" if missed else "")
    claim = decide(
        id,
        statement,
        not missed,
        headline=headline,
        meaning="the paper's statements concern paths to a minimizer; runs that stop "
        "short of one are named here and left out of the claims that assume it",
        meets=meets,
        missed=[label for label in runs if label not in meets],
        runs=checks,
    )
    return claim, meets

"""The rule of the initialization-scale procedure of Nonnenmacher, Reeb & Steinwart (2021,
Sect. 3), apart from training: one trial per σ (`Trial`), which trial ends the sequence and
which is returned (`Procedure`), and the outcome (`TuneResult`). `tune_init.training` applies
the rule while it trains; `Procedure.replay` applies it to trials trained beforehand."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from ..errors import UserError
from ..papers import NONNENMACHER_2021


@dataclass(frozen=True)
class Trial:
    """One training run of the procedure, at one σ.

    Attributes:
        sigma: the initialization scale σ of this trial.
        status: the run's status (completed, diverged, interrupted).
        steps: the updates it made.
        stop_reason: why it stopped: "stop_loss" (it reached the loss threshold), or the step
            cap ("epochs", "max_steps"), or "diverged".
        train_loss: the final loss on the training part (validation points excluded).
        val_loss: the final loss on the held-out validation points: what σ is chosen by.
        val_error: the final error rate on them.
        test_loss: the final loss on the config's test split (reported, never used to choose).
        test_error: the final error rate on the test split.
        practical: whether the trial reached the loss threshold within its step budget; only
            practical trials can be chosen.
    """

    sigma: float
    status: str
    steps: int
    stop_reason: str
    train_loss: float
    val_loss: float
    val_error: float
    test_loss: float
    test_error: float
    practical: bool  # reached the loss threshold within the step budget


@dataclass
class TuneResult:
    """The outcome of `tune_init`: every trial in order of decreasing σ, and the choice.

    Attributes:
        trials: the trials, the config's own σ first, each next σ `factor` times smaller.
        chosen: the index of the chosen trial: the practical one with the smallest validation
            loss (the first trial when none was practical).
        reason: why the sequence of trials stopped, in words.
        budget: the step budget of every trial after the first: ⌈max_slowdown × the first
            trial's steps⌉.
        model: the chosen trial's trained network.
    """

    trials: list[Trial]
    chosen: int  # index into trials
    reason: str  # why the sequence stopped
    budget: int  # the step budget of every trial after the first
    model: Any = field(default=None, repr=False)  # the chosen net

    @property
    def sigma(self) -> float:
        """The chosen initialization scale σ."""
        return self.trials[self.chosen].sigma

    def as_dict(self) -> dict[str, Any]:
        """What tune.json holds: the source paper, the choice, the stop reason and every trial."""
        return {
            "source": str(NONNENMACHER_2021),
            "chosen_sigma": self.sigma,
            "chosen": dataclasses.asdict(self.trials[self.chosen]),
            "stopped_because": self.reason,
            "step_budget": self.budget,
            "trials": [dataclasses.asdict(t) for t in self.trials],
        }


def untrained_reason(sigma: float, threshold: float) -> str:
    """Why the procedure stops at once: its first (standard) σ did not reach the threshold."""
    return (
        f"the standard σ = {sigma:g} does not reach the loss threshold {threshold:g} "
        "within the config's own budget; nothing to compare with"
    )


@dataclass(frozen=True)
class Procedure:
    """The stopping rule of the procedure (steps (b)–(e) of Sect. 3), apart from training:
    which trial ends the sequence, and which trial is returned. `tune_init` applies it while it
    trains; `replay` applies it to trials trained beforehand (the σ grid of `which-minimizer`).

    Attributes:
        factor: σ of the next trial = factor × σ, in (0, 1).
        margin: go on only while the validation loss falls by at least this fraction of the
            previous trial's.
        max_slowdown: a trial that needs more than this many times the first trial's steps to
            reach the loss threshold is too slow, and ends the sequence.
        max_trials: at most this many trials (σ values).
    """

    factor: float = 0.7
    margin: float = 0.05
    max_slowdown: float = 10.0
    max_trials: int = 8

    def check(self) -> None:
        """UserError naming the option when a parameter is out of range (NaN included)."""
        for name, value, ok, allowed in (
            ("--factor", self.factor, 0 < self.factor < 1, "in (0, 1)"),
            ("--margin", self.margin, 0 <= self.margin < math.inf, "finite and >= 0"),
            ("--max-slowdown", self.max_slowdown, 1 <= self.max_slowdown < math.inf, "finite and >= 1"),
            ("--max-trials", self.max_trials, self.max_trials >= 2, ">= 2"),
        ):
            if not ok:  # comparisons written so that NaN fails them
                raise UserError(f"{name}: {value!r} is out of range (must be {allowed})")

    def budget(self, first_steps: int) -> int:
        """The step budget of every trial after the first: ⌈max_slowdown × its steps⌉."""
        return max(1, math.ceil(self.max_slowdown * first_steps))

    def stop_reason(self, previous: Trial, trial: Trial, budget: int, threshold: float) -> str | None:
        """Why `trial` (the next smaller σ after `previous`) ends the sequence, or None to go on:
        it did not reach the loss threshold within `budget` steps (step (d)), its validation loss
        did not fall, or fell by less than `margin` of the previous one (step (c))."""
        if not trial.practical:
            return (
                f"training got impractically slow at σ = {trial.sigma:.4g} (no loss < {threshold:g} "
                f"within {budget} steps = {self.max_slowdown:g}× the standard σ's)"
            )
        if not trial.val_loss < previous.val_loss:
            return f"the validation loss stopped decreasing at σ = {trial.sigma:.4g}"
        if previous.val_loss - trial.val_loss < self.margin * previous.val_loss:
            return (
                f"the validation loss improved by less than {100 * self.margin:g}% at σ = {trial.sigma:.4g}"
            )
        return None

    @staticmethod
    def choose(trials: list[Trial]) -> int:
        """Step (e): the index of the practical trial with the smallest validation loss (the
        first trial when none is practical)."""
        eligible = [i for i, t in enumerate(trials) if t.practical] or [0]
        return min(eligible, key=lambda i: trials[i].val_loss)

    def replay(self, trials: list[Trial], threshold: float) -> TuneResult:
        """The procedure on trials trained beforehand, in order of decreasing σ (the first is the
        standard σ, each next one σ·`factor` — not checked here): the sequence it would have
        trained, where it stops and what it returns. A later trial counts as practical only when
        it reached the threshold within the budget set by the first trial's steps."""
        if not trials:
            raise ValueError("replay needs at least the standard σ's trial")
        first = trials[0]
        budget = self.budget(first.steps)
        if not first.practical:
            return TuneResult([first], 0, untrained_reason(first.sigma, threshold), budget)
        seen = [first]
        reason = None
        for t in trials[1 : self.max_trials]:
            t = dataclasses.replace(t, practical=t.practical and t.steps <= budget)
            reason = self.stop_reason(seen[-1], t, budget, threshold)
            seen.append(t)
            if reason is not None:
                break
        if reason is None:
            reason = (
                f"reached --max-trials {self.max_trials}"
                if len(seen) == self.max_trials
                else f"no smaller σ was trained after σ = {seen[-1].sigma:.4g}"
            )
        return TuneResult(seen, self.choose(seen), reason, budget)

"""The registered reproductions and what each declares: a registered function
`run(lab: Lab) -> list[Claim]`, its paper, its plan per scale and its tour scale.

A reproduction registers with

    @experiments.register("name", help="one line", paper=PAPER, plan=plan, tour="smoke")
    def run(lab): ...

and `reproduction(name)` (or `reproductions()`) reads the entry back as a typed `Reproduction`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from ..errors import UserError, quote
from ..papers import Paper
from ..registry import Entry, Registry

if TYPE_CHECKING:
    from ..store.claims import Claim
    from .base import Lab

SCALES = ("smoke", "cpu", "full")
DEFAULT_TOUR_SCALE = "smoke"

# An experiment registers with `paper=` (a sgdlab.papers.Paper, cited on every claim it makes),
# `plan=` (scale → Plan: what it would train, for `sgdlab reproduce --plan`) and optionally
# `tour=` (the scale `sgdlab demo` runs it at, smoke by default).
experiments: Registry[Callable[[Lab], list[Claim]]] = Registry("experiment")


@dataclass(frozen=True)
class Simulation:
    """A part of an experiment that is not a training run (a batched simulation, a closed-form
    computation), as `--plan` lists it; `estimate()` returns seconds from a short measured timing."""

    description: str
    estimate: Callable[[], float] | None = None


@dataclass(frozen=True)
class Plan:
    """What an experiment does at one scale: the run configs it trains (name → raw config,
    exactly what `Lab.run_many` receives) and its other parts."""

    runs: dict[str, dict[str, Any]]
    simulations: dict[str, Simulation] = field(default_factory=dict)


@dataclass(frozen=True)
class Reproduction:
    """A registered reproduction, typed.

    Attributes:
        name: its registered name (`sgdlab reproduce NAME`).
        help: what finding it reproduces, in one line.
        run: the function that reproduces it into a Lab and returns its claims.
        paper: the paper it reproduces (every claim cites it unless it names its own source).
        plan: scale → Plan, what it would train (`--plan`, `--only` checks); None when it has none.
        tour: the scale `sgdlab demo` runs it at.
    """

    name: str
    help: str
    run: Callable[[Lab], list[Claim]]
    paper: Paper | None
    plan: Callable[[str], Plan | None] | None
    tour: str

    @classmethod
    def of(cls, entry: Entry) -> Reproduction:
        """The typed view of a registry entry; a ValueError for a tour scale outside SCALES."""
        tour = entry.extra.get("tour", DEFAULT_TOUR_SCALE)
        if tour not in SCALES:
            raise ValueError(f"experiment {entry.name!r} declares tour scale {tour!r}, not one of {SCALES}")
        return cls(
            entry.name, entry.help, entry.factory, entry.extra.get("paper"), entry.extra.get("plan"), tour
        )

    def planned(self, scale: str) -> Plan | None:
        """Its Plan at `scale` (None without a planner)."""
        return self.plan(scale) if self.plan is not None else None


def reproduction(name: str) -> Reproduction:
    """The registered reproduction `name`; a ConfigError listing the known names otherwise."""
    return Reproduction.of(experiments.get(name, "experiment"))


def reproductions() -> list[Reproduction]:
    """Every registered reproduction, in registration order."""
    return [Reproduction.of(entry) for entry in experiments]


def check_scale(scale: str) -> None:
    """A UserError naming --scale unless `scale` is one of SCALES."""
    if scale not in SCALES:
        raise UserError(f"--scale: {quote(scale)} is not one of {', '.join(SCALES)}")

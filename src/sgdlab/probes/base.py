"""The probe protocol. A probe has a name, a schedule, the needs it declares, and
`measure(ctx) -> dict[str, float]`. It never writes files and never changes the training
trajectory (no parameter, buffer, RNG or .grad changes).

Needs in ITERATION_NEEDS ("batch", "batch_loss", "update", "lr") make a probe an *iteration
probe*: it measures right after update k and sees θ_k, θ_{k+1}, B_k. Other probes are *state
probes*: they measure θ_k before update k. Both land in metrics row `step = k`.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Iterator

from .schedules import Schedule, parse_schedule

ITERATION_NEEDS = frozenset({"batch", "batch_loss", "update", "lr"})
# "theta_star": the final iterate of the same run, from an earlier pass (deterministic replay).
KNOWN_NEEDS = ITERATION_NEEDS | {"eval", "full_grad", "theta0", "theta_star"}


@dataclass
class Deferred:
    """What a probe reports once training has ended: rows for earlier steps (merged into the
    metrics table by step) and a summary (stored under summary.json["probes"][name])."""

    rows: dict[int, dict[str, float]] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)


class Probe:
    """Subclass, set `needs`, and implement `measure`. Keep state in plain tensors/floats and
    return it from `state_dict` so a resumed run continues it exactly."""

    needs: frozenset[str] = frozenset()

    def __init__(self, name: str, schedule: Schedule | str = "epoch", **options: Any):
        self.name = name
        self.schedule = (
            parse_schedule(schedule, f"probes.{name}.schedule") if isinstance(schedule, str) else schedule
        )
        self.options = options
        self.needs = frozenset(self.needs)
        unknown = set(self.needs) - KNOWN_NEEDS
        if unknown:
            raise ValueError(f"probe {name} declares unknown needs {sorted(unknown)}")

    @property
    def iteration(self) -> bool:
        return bool(self.needs & ITERATION_NEEDS)

    def setup(self, rt: Any) -> None:
        """Called once before the loop with the run's Runtime (device, θ_0, reference)."""

    def measure(self, ctx: Any) -> dict[str, float]:
        raise NotImplementedError

    def capture(self, ctx: Any, batch: Any) -> AbstractContextManager | None:
        """A context the engine runs the step's forward and backward in when this iteration probe
        is due (None: nothing to capture). `ctx` is the StepContext of θ_k, `batch` is B_k as
        (x, y). It may install hooks that read activations and gradients — never change them —
        so that `measure` reuses the step's own passes instead of making new ones."""
        return None

    def finish(self, ctx: Any) -> Deferred | None:
        """Called once after a completed run with the context of the final iterate."""
        return None

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, schedule={self.schedule.spec!r})"


def capturing(due: list[Probe], ctx: Any, batch: Any) -> AbstractContextManager:
    """The step's forward/backward context: every due probe's `capture` entered, in order."""
    contexts = [c for c in (p.capture(ctx, batch) for p in due) if c is not None]
    return _entered(contexts) if contexts else nullcontext()


@contextmanager
def _entered(contexts: list[AbstractContextManager]) -> Iterator[None]:
    with ExitStack() as stack:
        for c in contexts:
            stack.enter_context(c)
        yield

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
    return it from `state_dict` so a resumed run continues it exactly.

    A probe is built as `Probe(name, schedule, **options)`; the engine calls `setup(rt)` once,
    `measure(ctx)` at every due step (and, for a state probe, at the final step), and
    `finish(ctx)` after the run. To switch a probe on from a config, register its class:
    `@sgdlab.probes.register("my_probe", help=..., options={"schedule": "epoch", ...})`, then
    `[probes] use = [..., "my_probe"]` with its options in `[probes.my_probe]`. Without the
    registry, add an instance to the parts of a run. A minimal probe — the largest |θ_i| and
    a running count of its own calls, kept in its state:

    >>> import dataclasses, torch
    >>> from torch import nn
    >>> from sgdlab import prepare
    >>> from sgdlab.data import Dataset, Split
    >>> from sgdlab.probes import Probe
    >>> from sgdlab.runner import start
    >>> class MaxWeight(Probe):
    ...     def __init__(self, name="max_weight", schedule="epoch"):
    ...         super().__init__(name, schedule)
    ...         self.calls = 0
    ...     def measure(self, ctx):
    ...         self.calls += 1
    ...         return {"max_abs_theta": float(ctx.params.abs().max()), "calls": float(self.calls)}
    ...     def state_dict(self):
    ...         return {"calls": self.calls}
    ...     def load_state_dict(self, state):
    ...         self.calls = state.get("calls", 0)
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.randn(64, 4, generator=g)
    >>> y = (x[:, 0] > 0).long()  # two classes
    >>> data = Dataset("mine", Split(x[:48], y[:48]), Split(x[48:], y[48:]), "index", n_classes=2)
    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> cfg = {"train": {"batch_size": 16, "epochs": 2}, "probes": {"use": ["eval"]}}
    >>> parts = prepare(cfg, model=model, data=data)
    >>> probe = MaxWeight()
    >>> probe.iteration  # no iteration needs: a state probe, measured at θ_k before update k
    False
    >>> result = start(dataclasses.replace(parts, probes=[*parts.probes, probe]))
    >>> result.metrics.select(["step", "epoch", "calls"]).to_pylist()
    [{'step': 0, 'epoch': 0.0, 'calls': 1.0},
     {'step': 3, 'epoch': 1.0, 'calls': 2.0},
     {'step': 6, 'epoch': 2.0, 'calls': 3.0}]
    >>> result.metrics.column_names
    ['step', 'epoch', 'train_loss', 'train_error', 'test_loss', 'test_error', 'max_abs_theta', 'calls']
    """

    needs: frozenset[str] = frozenset()
    # The figure this probe's measurements are drawn in, as "module:function" with
    # `function(run: store.Run, path: Path) -> Path | None` (None: the run has nothing to draw).
    # Run reports and `sgdlab show` draw it for every run that used the probe; it is imported
    # only then, so probes never import plotting code.
    figure: str | None = None

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
        """Whether this is an iteration probe (it declares a need in ITERATION_NEEDS): measured right
        after update k, seeing θ_k, θ_{k+1} and B_k; otherwise a state probe, measured at θ_k."""
        return bool(self.needs & ITERATION_NEEDS)

    def setup(self, rt: Any) -> None:
        """Called once before the loop with the run's Runtime (device, θ_0, reference)."""

    def measure(self, ctx: Any) -> dict[str, float]:
        """The metrics of this step as {column: value}, recorded in row `step = k` of the run's
        metrics. `ctx` is a StepContext (sgdlab.probes.context): it computes and caches what
        probes share (full-set evaluation, full gradient, θ as a flat vector, U_k, ℓ(θ; B_k)).
        Must not change parameters, buffers, `.grad` or RNG streams."""
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
        """The probe's state to checkpoint (plain tensors and numbers), so that a resumed run
        continues it exactly."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned (after a resume its floating-point tensors are on
        the run's device, its other tensors on the CPU)."""
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

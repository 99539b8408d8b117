"""The run summary (summary.json) as a typed record: what a run directory says about its run —
status, counts, timings, final metrics, versions. The writers (`runner`, `integrations.lab`)
build it as a dict as training goes; readers take `RunSummary.from_dict(summary)` (`Run.info`,
`RunDir.read_info`) instead of reading the dict by string keys.

The fields below are the one declaration of what summary.json holds: `SUMMARY_FIELDS`, the
JSON types `RunDir` checks a summary against, is derived from them.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RunSummary:
    """summary.json of one run. Every field but `status` may be missing (None, or empty) in a
    run that has not got that far; `extra` keeps any key this list does not name.

    Attributes:
        status: running, completed, diverged, interrupted or failed ("unknown" without one).
        seed, n_params, steps, steps_per_epoch, epochs: the run's seed, trainable scalars, the
            steps taken, steps per epoch and the epochs that makes.
        device, threads: where it trained (cpu, cuda) and with how many torch threads.
        stop_reason: why training stopped (epochs, max_steps, stop_loss, diverged, …).
        diverged_at, last_finite: the step whose loss or parameters became NaN/inf, and the
            last finite value of each metric before it.
        final: θ_final's metrics (train_loss, train_error, test_loss, test_error, …).
        probes: per-probe summaries (e.g. γ's undefined steps).
        wall_time_s, replay_wall_time_s: training time, and the θ*-replay pass's.
        replay: a two-pass run's replay verdict: verified, checked_steps and max_loss_diff
            against pass 1, or verified = False and the reason (`two_pass.replay_verdict`).
        started_at, finished_at, resumes: ISO timestamps and how often it was resumed.
        versions, environment: the code and machine it ran on (`store.provenance`).
        phase: "train" or "replay" while a two-pass run is between its passes.
        error: why it failed or was interrupted.
        of: for a replay pass's own directory, the run it replays.
        skipped_states: damaged resumable states that a resume skipped.
    """

    status: str = "unknown"
    seed: int | None = None
    n_params: int | None = None
    steps: int | None = None
    steps_per_epoch: int | None = None
    epochs: float | None = None
    device: str | None = None
    threads: int | None = None
    versions: dict[str, str] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    started_at: str | None = None
    finished_at: str | None = None
    resumes: int | None = None
    stop_reason: str | None = None
    wall_time_s: float | None = None
    replay_wall_time_s: float | None = None
    replay: dict[str, Any] = field(default_factory=dict)
    diverged_at: int | None = None
    final: dict[str, float | None] = field(default_factory=dict)
    last_finite: dict[str, float] = field(default_factory=dict)
    probes: dict[str, Any] = field(default_factory=dict)
    phase: str | None = None
    error: str | None = None
    of: str | None = None
    skipped_states: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> RunSummary:
        """The record of a summary dict (as summary.json holds it); missing keys keep their
        defaults, a null counts as missing, and keys this record does not name go to `extra`."""
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        known = {k: v for k, v in raw.items() if k in names and v is not None}
        return cls(**known, extra={k: v for k, v in raw.items() if k not in names})

    def final_value(self, metric: str) -> float | None:
        """θ_final's `metric` (None when it was not measured)."""
        return self.final.get(metric)


def _json_kind(hint: Any) -> type | tuple[type, ...]:
    """The JSON type of a field's annotation (Optional removed, dict[...] → dict, …)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = args[0]
    return typing.get_origin(hint) or hint


SUMMARY_FIELDS: dict[str, type | tuple[type, ...]] = {
    name: _json_kind(hint) for name, hint in typing.get_type_hints(RunSummary).items() if name != "extra"
}

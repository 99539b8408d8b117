"""`sgdlab reproduce NAME --plan`: what a scale would train and how long it would take here,
before anything is trained or written.

Each run's time comes from a short measured timing on the configured device: the median of a few
engine steps of every distinct model/data/batch combination (with the run's iteration probes
on), once more for the replay pass of θ*-probes, plus one full-set evaluation (timed on one
evaluation chunk) times the number of evaluations its schedules ask for. Runs with a loss
threshold are estimated at their step cap (an upper bound). Identical configs are trained once,
as `Lab.run_many` does.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import statistics
import time
from dataclasses import dataclass
from typing import Any

import torch

from ..build import build_parts, resolve
from ..config import ProbesConfig, config_to_toml, load_config, to_dict
from ..engine import Parts, last_step, train
from ..params import flat_params
from ..probes import Probe, Reference, StepContext, build_probes
from ..store import Recorder
from .base import Plan, experiments, selected

TIMED_STEPS = 8  # steps timed per model (after one warm-up step); the median counts


@dataclass(frozen=True)
class PlannedRun:
    """One row of `--plan`: a run's model, size, data, how it stops, its probes and its
    estimated wall time (None for a run only a loss threshold stops)."""

    name: str
    model: str
    n_params: int
    n_train: int
    batch_size: int
    steps: int | None  # the step cap (None: only a loss threshold stops it)
    stop: str  # how the run stops, in words
    probes: tuple[str, ...]
    seconds: float | None  # estimated wall time of the run (both passes), None if unbounded
    same_as: str | None = None  # trained once under this name


def _timing_key(cfg: Any) -> str:
    d = to_dict(cfg)
    keep = {
        "data": d["data"],
        "model": d["model"],
        "dtype": d["dtype"],
        "device": d["device"],
        "optim": d["optim"]["name"],
        "batch_size": d["train"]["batch_size"],
        "probes": d["probes"],
    }
    return json.dumps(keep, sort_keys=True, default=str)


class _Clock(Probe):
    """Notes the time after every step (last in the probe list, so after the other probes)."""

    needs = frozenset({"batch_loss"})

    def __init__(self) -> None:
        super().__init__("_clock", "step")
        self.times: list[float] = []

    def measure(self, ctx: Any) -> dict[str, float]:
        self.times.append(time.perf_counter())
        return {}


def _per_step(parts: Parts, probes: ProbesConfig, reference: Reference | None = None) -> float:
    """Median wall time of one engine step of `parts` with the iteration probes of `probes`
    (state probes are counted separately, see `_evaluations`), over TIMED_STEPS steps."""
    cfg = parts.config
    train_cfg = dataclasses.replace(cfg.train, epochs=None, max_steps=TIMED_STEPS + 1, stop_loss=None)
    clock = _Clock()
    run_parts = dataclasses.replace(
        parts,
        config=dataclasses.replace(cfg, train=train_cfg),
        probes=[p for p in build_probes(probes) if p.iteration] + [clock],
    )
    train(run_parts, Recorder(None, cfg.checkpoint), theta0=flat_params(parts.model), reference=reference)
    return statistics.median(b - a for a, b in itertools.pairwise(clock.times))


def _evaluation_seconds(parts: Parts) -> float:
    """One full train + test evaluation, timed on one evaluation chunk of each and scaled."""
    from ..data import Split
    from ..probes import Runtime

    chunk = parts.config.train.eval_batch_size
    total = 0.0
    for part in (parts.data.train, parts.data.test):
        if len(part) == 0:
            continue
        head = Split(part.x[:chunk], part.y[:chunk])
        data = dataclasses.replace(parts.data, train=head, test=head)
        ctx = StepContext(Runtime(parts.model, data, parts.loss, flat_params(parts.model), chunk), 0, 0.0)
        t0 = time.perf_counter()
        ctx.evaluate("train")
        total += (time.perf_counter() - t0) * len(part) / len(head)
    return total


def _evaluations(parts: Parts, steps: int) -> int:
    """Steps at which some state probe is due (each costs about one full-set evaluation), plus
    the per-epoch checks of a loss threshold."""
    spe = parts.sampler.steps_per_epoch
    state = [p for p in parts.probes if not p.iteration and "theta_star" not in p.needs]
    count = sum(
        1
        for k in range(steps + 1)
        if any(p.schedule.due(k, spe) or (k == steps and p.schedule.at_end) for p in state)
    )
    if parts.config.train.stop_loss is not None:
        count += steps // spe + 1
    return count


def estimate_run(
    name: str, raw: dict[str, Any], device: str, cache: dict[str, tuple[float, float, float]]
) -> PlannedRun:
    """The planned run `raw`, with its time estimated from a short timing (cached per model)."""
    from ..runner import first_pass, replayed_probes

    cfg = resolve(load_config(raw=dict(raw, device=device)))
    t0 = time.perf_counter()
    parts = build_parts(cfg)
    build = time.perf_counter() - t0  # data and model, as each run builds them again
    spe = parts.sampler.steps_per_epoch
    steps = last_step(cfg.train, spe)
    replayed = replayed_probes(parts.probes)
    key = _timing_key(cfg)
    if key not in cache:
        torch.set_num_threads(cfg.threads)
        first = first_pass(parts)
        first_probes = ProbesConfig(
            use=tuple(p.name for p in first.probes),
            options={
                p.name: dict(cfg.probes.options.get(p.name, {}), schedule=p.schedule.spec)
                for p in first.probes
            },
        )
        per_step = _per_step(parts, first_probes)
        replay_step = 0.0
        if replayed:
            n = TIMED_STEPS + 1
            reference = Reference(flat_params(parts.model), torch.full((n,), math.nan), "plan")
            replay_probes = ProbesConfig(
                use=tuple(p.name for p in replayed),
                options={p.name: cfg.probes.options[p.name] for p in replayed},
            )
            replay_step = _per_step(parts, replay_probes, reference)
        cache[key] = (per_step, replay_step, _evaluation_seconds(parts))
    per_step, replay_step, evaluation = cache[key]
    seconds = None
    if steps is not None:
        seconds = build + steps * (per_step + replay_step) + _evaluations(parts, steps) * evaluation
    stop = f"{steps:,} steps ({steps / spe:g} epochs)" if steps is not None else "no step cap"
    if cfg.train.stop_loss is not None:
        stop = f"until training loss < {cfg.train.stop_loss:g}, at most {stop}"
    return PlannedRun(
        name,
        cfg.model.name,
        parts.n_params,
        len(parts.data.train),
        cfg.train.batch_size,
        steps,
        stop,
        cfg.probes.use,
        seconds,
    )


def plan(
    name: str, scale: str, device: str = "auto", only: str | None = None
) -> tuple[Plan, list[PlannedRun], dict[str, float | None]]:
    """The plan of experiment `name` at `scale`: its runs (as `--only` selects them) with time
    estimates, and its other parts with theirs."""
    entry = experiments.get(name, "experiment")
    planner = entry.extra.get("plan")
    if planner is None:
        raise ValueError(f"experiment {name!r} registers no plan")
    p: Plan = planner(scale)
    cache: dict[str, tuple[float, float, float]] = {}
    rows: list[PlannedRun] = []
    first_of: dict[str, str] = {}
    for run_name, raw in p.runs.items():
        if not selected(run_name, only):
            continue
        text = config_to_toml(resolve(load_config(raw=dict(raw, device=device))))
        if text in first_of:
            twin = next(r for r in rows if r.name == first_of[text])
            rows.append(dataclasses.replace(twin, name=run_name, seconds=0.0, same_as=twin.name))
            continue
        first_of[text] = run_name
        rows.append(estimate_run(run_name, raw, device, cache))
    sims = {
        k: (s.estimate() if s.estimate is not None else None)
        for k, s in p.simulations.items()
        if selected(k, only)
    }
    return p, rows, sims


def wall_estimate(seconds: list[float], workers: int | None = None) -> float:
    """Wall time of independent jobs on `workers` processes (longest first, each to the least
    loaded worker), as `Lab.run_many` runs them."""
    workers = max(1, min(workers or os.cpu_count() or 1, len(seconds) or 1))
    loads = [0.0] * workers
    for s in sorted(seconds, reverse=True):
        loads[loads.index(min(loads))] += s
    return max(loads) if seconds else 0.0

"""`sgdlab reproduce NAME --plan`: what a scale would train and how long it would take, in
seconds, before anything is trained or written, on this machine's device or on another one
(`--device cuda` on a machine without a GPU).

A training step at batch B is priced as t(B) = c + F·B·s (`StepCost`):

  F  FLOPs of one sample's forward and backward, counted from the layers' weight shapes in one
     forward of the model built on the meta device (shapes only, no arithmetic): its matrix
     products and convolutions, which dominate (`count_model`);
  c  the fixed cost of a step (kernel launches, Python, the optimizer); s seconds per FLOP.

On the device that is present, a model small enough (F·b ≤ TIMED_FLOPS at b = 1) is built and
a few engine steps of it, with the run's iteration probes, are timed on a handful of prepared
points at a small batch b: at b and b/4 when b ≥ 8 and b < B, which fixes c and s; at b = B,
which is the answer itself. A model too big to time takes s and the cost per torch operation
from a short calibration of the device (`calibrate`), c from its counted operations. On
another device, s = 1/THROUGHPUT and c = operations × OP_SECONDS: documented constants for an
H100 running PyTorch eagerly (README, "On a GPU"; `benchmarks/gpu_check.sh` measures the real
epoch time to check them against).

A run then costs its steps (and, with θ*-probes, the replay pass's, timed the same way) and
a forward pass over both splits at each step where a state probe is due (a forward and backward
over the training split where one needs the full gradient); building its data and model, a
second or two, is left out.
Runs with a loss threshold are counted at their step cap (an upper bound). Identical configs
are trained once, as `Lab.run_many` does.

Nothing here prepares a whole dataset or trains a model at its full batch: each dataset's
loader is read once for its sizes (after class picks and subsets) and at most SKETCH_POINTS
prepared points stand in for it (`DataSketch`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..build import build_model_seeded, resolve
from ..config import Config, ProbesConfig, config_to_toml, load_config, to_dict
from ..data import Dataset, RawData, datasets
from ..data.pipeline import prepare, subset
from ..engine import Sampler, last_step
from ..params import flat_params
from ..probes import Probe, Reference, build_probes
from ..runner import first_pass_probes, replayed_probes
from ..seeding import generator
from .base import Plan, experiments, selected
from .step_cost import (
    OP_SECONDS,
    THROUGHPUT,
    TIMED_STEPS,
    ModelCount,
    StepCost,
    calibrate,
    count_model,
    due_steps,
    meta_model,
    plan_device,
    present,
    timed_step,
)

SKETCH_POINTS = 256  # prepared points that stand in for a dataset
# FLOPs of the largest step timed on the present device: about 0.05 s of a CPU core, a few ms of a GPU
TIMED_FLOPS = {"cpu": 1e8, "cuda": 1e12}


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
    flops: float = 0.0  # FLOPs of one sample's forward and backward
    estimate: str = ""  # how its step was priced: "timed" here, or "counted" (FLOPs at a rate)


# ---------------------------------------------------------------------------------------
# data without the data set


@dataclass(frozen=True)
class DataSketch:
    """A dataset as planning sees it: its training and test sizes (what the run would use)
    and at most SKETCH_POINTS prepared training points (shape, targets, resize) to time on."""

    n_train: int
    n_test: int
    points: Dataset

    def head(self, n: int) -> Dataset:
        """The first n sketch points as a dataset's training split (and test split)."""
        part = self.points.train
        head = dataclasses.replace(part, x=part.x[:n], y=part.y[:n])
        return dataclasses.replace(self.points, train=head, test=head)


def _available(y: torch.Tensor, classes: tuple[int, ...] | None) -> torch.Tensor:
    """Indices of the points a class pick keeps (all without one)."""
    if classes is None:
        return torch.arange(len(y))
    return torch.isin(y, torch.tensor(classes, dtype=y.dtype)).nonzero().flatten()


PREPARE_ONLY = ("classes", "label_noise", "targets", "standardize", "normalize", "resize")


def raw_key(cfg: Config) -> str:
    """What the dataset's loader reads of `cfg`: configs with the same key load the same raw
    data (the sizes count only for the generated sets, which register them)."""
    d = to_dict(cfg)["data"]
    d["seed"] = cfg.data.seed if cfg.data.seed is not None else cfg.seed
    drop = PREPARE_ONLY + (
        () if "n_train" in datasets.get(cfg.data.name, "data.name").options else ("n_train", "n_test")
    )
    return json.dumps({k: v for k, v in d.items() if k not in drop}, sort_keys=True, default=str)


def load_raw(cfg: Config) -> RawData:
    """The dataset's loader, read once: all of its points, before any preparation."""
    d = cfg.data
    return datasets.get(d.name, "data.name").factory(
        d, generator(d.seed if d.seed is not None else cfg.seed, "data")
    )


def data_sketch(cfg: Config, raw: RawData) -> DataSketch:
    """The sizes of `cfg`'s data (from its loader's output `raw`) and a few prepared points: the
    class pick, float conversion, standardization and targets are applied to those only."""
    d = cfg.data
    gen = generator(d.seed if d.seed is not None else cfg.seed, "data")
    keep_train, keep_test = _available(raw.y_train, d.classes), _available(raw.y_test, d.classes)
    sizes = []
    for key, n, kept in (("data.n_train", d.n_train, keep_train), ("data.n_test", d.n_test, keep_test)):
        idx = subset(n, len(kept), gen, key)  # a ConfigError when n is more than there is
        sizes.append(len(kept) if idx is None else len(idx))
    few_train, few_test = keep_train[:SKETCH_POINTS], keep_test[:8]
    few = RawData(
        raw.x_train[few_train],
        raw.y_train[few_train],
        raw.x_test[few_test],
        raw.y_test[few_test],
        raw.n_classes,
        raw.class_names,
    )
    points = prepare(few, dataclasses.replace(d, n_train=None, n_test=None, label_noise=0.0), gen)
    train = points.train
    points = dataclasses.replace(points, train=dataclasses.replace(train, x=torch.nan_to_num(train.x)))
    return DataSketch(sizes[0], sizes[1], points)


def _as_config(probes: list[Probe], cfg: Config) -> ProbesConfig:
    """`probes` (built from `cfg.probes`, some rescheduled) as a ProbesConfig to build again."""
    return ProbesConfig(
        use=tuple(p.name for p in probes),
        options={p.name: dict(cfg.probes.options.get(p.name, {}), schedule=p.schedule.spec) for p in probes},
    )


def _replay_probes(cfg: Config) -> ProbesConfig | None:
    """The θ*-probes, which make a run two-phase (None when there are none)."""
    replayed = replayed_probes(build_probes(cfg.probes))
    return _as_config(replayed, cfg) if replayed else None


def timed_cost(cfg: Config, sketch: DataSketch, count: ModelCount, budget: float) -> StepCost:
    """The step cost of `cfg`'s model from timed steps here (module docstring)."""
    batch = _batch(cfg, sketch)
    b = max(1, min(batch, len(sketch.points.train), int(budget // max(count.step_flops, 1.0))))
    model = build_model_seeded(cfg, sketch.points.input_shape, sketch.points.n_outputs)
    first = _as_config(first_pass_probes(build_probes(cfg.probes)), cfg)
    t = timed_step(cfg, model, sketch.head(b), first)
    flops = count.step_flops
    if b == batch:  # the answer itself; passes over data at the device's rate where it fits
        per_flop = min(
            1.0 / calibrate(cfg.device, getattr(torch, cfg.dtype)).flops_per_second, t / (flops * b)
        )
        fixed = t - flops * b * per_flop
    elif b >= 8:  # two batch sizes fix the fixed cost and the rate
        small = max(1, b // 4)
        t_small = timed_step(cfg, model, sketch.head(small), first)
        per_flop = (t - t_small) / (flops * (b - small))
        fixed = t - flops * b * per_flop
        if per_flop <= 0 or fixed < 0:  # timing noise: scale in proportion instead
            per_flop, fixed = t / (flops * b), 0.0
    else:  # compute-bound already: in proportion
        per_flop, fixed = t / (flops * b), 0.0
    factor = 1.0
    replay = _replay_probes(cfg)
    if replay is not None:
        n = TIMED_STEPS + 1
        reference = Reference(flat_params(model), torch.full((n,), math.nan), "plan")
        factor = timed_step(cfg, model, sketch.head(b), replay, reference) / t
    return StepCost(fixed, per_flop, count, "timed", max(factor, 1.0))


def counted_cost(cfg: Config, count: ModelCount, batch_dependent: bool) -> StepCost:
    """The step cost from counted FLOPs and operations at the device's rate: calibrated here,
    or THROUGHPUT and OP_SECONDS for a device that is not present."""
    if present(cfg.device):
        calibration = calibrate(cfg.device, getattr(torch, cfg.dtype))
        op_seconds, rate = calibration.op_seconds, calibration.flops_per_second
    else:
        op_seconds, rate = OP_SECONDS[cfg.device], THROUGHPUT[(cfg.device, cfg.dtype)]
    fixed, per_flop = count.ops * op_seconds, 1.0 / rate
    factor = 1.0
    if _replay_probes(cfg) is not None:
        # replay: the same step, plus (batch norm) a forward at θ* on B_k and O(P) inner products
        extra = fixed / 3 + count.forward_flops * cfg.train.batch_size * per_flop if batch_dependent else 0.0
        step = fixed + count.step_flops * cfg.train.batch_size * per_flop
        factor = 1.0 + (extra + 8 * count.n_params * per_flop + 10 * op_seconds) / step
    return StepCost(fixed, per_flop, count, "counted", factor)


# ---------------------------------------------------------------------------------------
# runs


@dataclass
class Planner:
    """Caches shared by the runs of one plan: loaded raw data by what the loader reads
    (`raw_key`), data sketches by data config, step costs by model, data, batch and probes
    (`_timing_key`)."""

    device: str
    raw: dict[str, RawData] = dataclasses.field(default_factory=dict)
    data: dict[str, DataSketch] = dataclasses.field(default_factory=dict)
    costs: dict[str, StepCost] = dataclasses.field(default_factory=dict)

    def sketch(self, cfg: Config) -> DataSketch:
        """The data sketch of `cfg`'s data config (made once; each loader is read once)."""
        key = json.dumps({"seed": cfg.seed, "data": to_dict(cfg)["data"]}, sort_keys=True, default=str)
        if key not in self.data:
            source = raw_key(cfg)
            if source not in self.raw:
                self.raw[source] = load_raw(cfg)
            self.data[key] = data_sketch(cfg, self.raw[source])
        return self.data[key]

    def cost(self, cfg: Config, sketch: DataSketch) -> StepCost:
        """The step cost of `cfg`'s model: timed here when a step is small enough, else counted."""
        key = _timing_key(cfg)
        if key not in self.costs:
            points = sketch.points
            model = meta_model(cfg, points.input_shape, points.n_outputs)
            count = count_model(model, points.batch(points.train, slice(0, 2))[0].to("meta"))
            budget = TIMED_FLOPS[cfg.device] if present(cfg.device) else 0.0
            if count.step_flops <= budget:
                cost = timed_cost(cfg, sketch, count, budget)
            else:
                cost = counted_cost(cfg, count, _batch_dependent(model))
            self.costs[key] = cost
        return self.costs[key]


def _batch_dependent(model: nn.Module) -> bool:
    from ..probes.context import batch_dependent

    return batch_dependent(model)


def _timing_key(cfg: Any) -> str:
    d = to_dict(cfg)
    keep = {
        "data": d["data"],
        "model": d["model"],
        "dtype": d["dtype"],
        "device": d["device"],
        "optim": d["optim"]["name"],
        "batch_size": d["train"]["batch_size"],
        "sampler": d["train"]["sampler"],
        "probes": d["probes"],
    }
    return json.dumps(keep, sort_keys=True, default=str)


def _batch(cfg: Config, sketch: DataSketch) -> int:
    """The run's minibatch size: all of the training set for full-batch samplers (GD)."""
    return sketch.n_train if cfg.train.sampler == "full" else min(cfg.train.batch_size, sketch.n_train)


def run_seconds(cfg: Config, sketch: DataSketch, cost: StepCost, steps: int) -> float:
    """Seconds of a run of `steps` steps: its steps (both passes) and the state probes' passes
    over the data (module docstring)."""
    batch = _batch(cfg, sketch)
    spe = Sampler(
        cfg.train.sampler, max(sketch.n_train, 1), cfg.train.batch_size, torch.Generator()
    ).steps_per_epoch
    seconds = steps * cost.step(batch)
    if _replay_probes(cfg) is not None:
        seconds += steps * cost.replay_step(batch)
    state = [p for p in build_probes(cfg.probes) if not p.iteration and "theta_star" not in p.needs]
    chunk = cfg.train.eval_batch_size
    evaluation = cost.forward_pass(sketch.n_train + sketch.n_test, chunk)
    seconds += due_steps([p.schedule for p in state], steps, spe) * evaluation
    gradient = [p.schedule for p in state if "full_grad" in p.needs]
    seconds += due_steps(gradient, steps, spe) * cost.gradient_pass(sketch.n_train, chunk)
    if cfg.train.stop_loss is not None:
        seconds += (steps // spe + 1) * cost.forward_pass(sketch.n_train, chunk)
    return seconds


def estimate_run(name: str, raw: dict[str, Any], planner: Planner) -> PlannedRun:
    """The planned run `raw`, with its time estimated on `planner.device` (module docstring)."""
    cfg = _resolved(raw, planner.device)
    sketch = planner.sketch(cfg)
    cost = planner.cost(cfg, sketch)
    spe = Sampler(
        cfg.train.sampler, max(sketch.n_train, 1), cfg.train.batch_size, torch.Generator()
    ).steps_per_epoch
    steps = last_step(cfg.train, spe)
    seconds = None if steps is None else run_seconds(cfg, sketch, cost, steps)
    stop = f"{steps:,} steps ({steps / spe:g} epochs)" if steps is not None else "no step cap"
    if cfg.train.stop_loss is not None:
        stop = f"until training loss < {cfg.train.stop_loss:g}, at most {stop}"
    return PlannedRun(
        name,
        cfg.model.name,
        cost.count.n_params,
        sketch.n_train,
        _batch(cfg, sketch),
        steps,
        stop,
        cfg.probes.use,
        seconds,
        flops=cost.count.step_flops,
        estimate=cost.how,
    )


def _resolved(raw: dict[str, Any], device: str) -> Config:
    """`raw` resolved for `device`; for a device this machine lacks, checked on the CPU and then
    marked for it (nothing is built there)."""
    here = device if present(device) else "cpu"
    cfg = resolve(load_config(raw=dict(raw, device=here)))
    return cfg if here == device else dataclasses.replace(cfg, device=device)


def plan(
    name: str, scale: str, device: str = "auto", only: str | None = None
) -> tuple[Plan, list[PlannedRun], dict[str, float | None]]:
    """The plan of experiment `name` at `scale`: its runs (as `--only` selects them) with time
    estimates on `device` (present or not, see `plan_device`), and its other parts with theirs."""
    entry = experiments.get(name, "experiment")
    planner_of = entry.extra.get("plan")
    if planner_of is None:
        raise ValueError(f"experiment {name!r} registers no plan")
    p: Plan = planner_of(scale)
    planner = Planner(plan_device(device))
    rows: list[PlannedRun] = []
    first_of: dict[str, str] = {}
    for run_name, raw in p.runs.items():
        if not selected(run_name, only):
            continue
        text = config_to_toml(_resolved(raw, planner.device))
        if text in first_of:
            twin = next(r for r in rows if r.name == first_of[text])
            rows.append(dataclasses.replace(twin, name=run_name, seconds=0.0, same_as=twin.name))
            continue
        first_of[text] = run_name
        rows.append(estimate_run(run_name, raw, planner))
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

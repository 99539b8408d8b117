"""What a training step costs, counted and timed: a model's FLOPs and torch operations per
sample (`count_model`), the device's cost per operation and compute rate (`calibrate`), the
median time of a few engine steps (`timed_step`), the price t(B) = c + s·flops·B of a step at
batch B (`StepCost`), and how many steps a set of probe schedules is due at (`due_steps`).
`experiments.planning` puts these together into a reproduction's time estimate."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math
import statistics
import time
from dataclasses import dataclass
from functools import reduce
from typing import Any

import torch
from torch import nn

from ..build import build_model_seeded, build_parts
from ..config import Config, ProbesConfig
from ..data import Dataset
from ..engine import train
from ..models import build_model
from ..params import flat_params
from ..probes import Probe, Reference, Schedule, build_probes
from ..probes.schedules import LogSteps
from ..store import Recorder

TIMED_STEPS = 3  # steps timed per batch size (after one warm-up step); the median counts
# Another device, from its FLOPs: PyTorch eager on one H100 (SXM, 80 GB). Sustained rates of
# CIFAR-size convnets and MLPs, about a third of the FP32 (67 TFLOP/s) and FP64 (34 TFLOP/s)
# peaks, and a host-side cost per dispatched torch operation (launch and dispatcher).
THROUGHPUT = {("cuda", "float32"): 20e12, ("cuda", "float64"): 10e12}
OP_SECONDS = {"cuda": 8e-6}


# ---------------------------------------------------------------------------------------
# where the estimate is for


def plan_device(name: str) -> str:
    """The device a plan is for: "cpu", "cuda", or for "auto" cuda when torch sees one. Unlike
    a run, a plan may be for a device this machine does not have."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def present(device: str) -> bool:
    """Whether `device` is here to time steps on."""
    return device == "cpu" or (device == "cuda" and torch.cuda.is_available())


def explain(device: str) -> str:
    """How the plan's times were estimated, in one sentence for the table's footer."""
    if present(device):
        how = (
            f"a few steps of each model timed here ({device}) at a small batch and scaled by its "
            "counted FLOPs (models too big to time: FLOPs at this device's calibrated rate)"
        )
    else:
        rate = THROUGHPUT[(device, "float32")] / 1e12
        how = (
            f"no {device} here: counted FLOPs at {rate:g} TFLOP/s (float32) plus "
            f"{OP_SECONDS[device] * 1e6:g} µs per torch operation, an H100 running PyTorch eagerly "
            "(README, 'On a GPU')"
        )
    return f"Estimates: {how}; runs with a loss threshold are counted at their cap."


# ---------------------------------------------------------------------------------------
# counting a model


@dataclass(frozen=True)
class ModelCount:
    """What one sample costs a model (`count_model`): FLOPs of its forward and of forward and
    backward, the torch operations of one step, its parameters and parameter tensors."""

    forward_flops: float
    step_flops: float
    ops: int
    n_params: int
    n_tensors: int


def meta_model(cfg: Config, input_shape: tuple[int, ...], n_outputs: int) -> nn.Module:
    """The run's model with its parameters on the meta device: shapes without memory or init."""
    try:
        with torch.device("meta"):
            return build_model(cfg.model, input_shape, n_outputs)
    except (RuntimeError, NotImplementedError, TypeError):  # an init that needs real numbers
        return build_model_seeded(cfg, input_shape, n_outputs).to("meta")


LAYER_OPS = 3  # torch operations per layer call in a step: its forward and two backward (input, weight)
OPTIMIZER_OPS = 3  # per parameter tensor: the update rule's
LOSS_OPS = 10  # the loss, its backward, zeroing gradients


@torch.no_grad()
def count_model(model: nn.Module, x: torch.Tensor) -> ModelCount:
    """Per sample of the batch `x`: forward FLOPs 2·(weight entries)·(output positions) summed
    over the calls of every layer with a matrix or kernel weight (linear layers and
    convolutions, whose multiply-adds dominate: what torch.utils.flop_counter counts for them);
    a backward of twice that (the input and the weight gradient), once for the first such layer
    (it needs no input gradient); LAYER_OPS operations per layer call plus the loss's and
    the optimizer's. One forward of `model` on `x`, which may be on the meta device (nothing is
    computed there)."""
    n = len(x)
    forward, backward, calls = 0.0, 0.0, 0

    def hook(module: nn.Module, inputs: Any, output: Any) -> None:
        nonlocal forward, backward, calls
        calls += 1
        weight = getattr(module, "weight", None)
        if isinstance(weight, torch.Tensor) and weight.ndim >= 2 and isinstance(output, torch.Tensor):
            positions = output.numel() / (n * weight.shape[0])  # outputs per sample and unit
            flops = 2.0 * weight.numel() * positions
            forward += flops
            backward += flops if forward == flops else 2.0 * flops  # the first reads only the input

    leaves = [m for m in model.modules() if not any(True for _ in m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    trainable = [p for p in model.parameters() if p.requires_grad]
    return ModelCount(
        forward,
        forward + backward,
        LAYER_OPS * calls + LOSS_OPS + OPTIMIZER_OPS * len(trainable),
        sum(p.numel() for p in trainable),
        len(trainable),
    )


# ---------------------------------------------------------------------------------------
# pricing a step


@dataclass(frozen=True)
class StepCost:
    """t(B) = fixed + flops·B·per_flop for a training step at batch B (module docstring), and
    what a replay step and a pass over data cost relative to it."""

    fixed: float  # c, seconds
    per_flop: float  # s, seconds per FLOP
    count: ModelCount
    how: str  # "timed" or "counted"
    replay_factor: float = 1.0  # replay step / training step

    def step(self, batch: int) -> float:
        """Seconds of one training step at `batch`."""
        return self.fixed + self.count.step_flops * batch * self.per_flop

    def replay_step(self, batch: int) -> float:
        """Seconds of one replay step (the training step and the θ*-probes) at `batch`."""
        return self.step(batch) * self.replay_factor

    def forward_pass(self, n: int, chunk: int) -> float:
        """Seconds of one forward over n points in chunks (a full-set evaluation)."""
        return math.ceil(n / chunk) * self.fixed / 3 + n * self.count.forward_flops * self.per_flop

    def gradient_pass(self, n: int, chunk: int) -> float:
        """Seconds of one forward and backward over n points in chunks (a full gradient)."""
        return math.ceil(n / chunk) * self.fixed + n * self.count.step_flops * self.per_flop


@dataclass(frozen=True)
class Calibration:
    """A device's cost per dispatched torch operation and its compute rate (FLOP/s)."""

    op_seconds: float
    flops_per_second: float


_calibrations: dict[tuple[str, str, int], Calibration] = {}


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _time_calls(fn, repeats: int, device: str) -> float:  # noqa: ANN001
    """Median seconds of fn() over `repeats` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def calibrate(device: str, dtype: torch.dtype) -> Calibration:
    """The present device's cost per torch operation (a one-sample step of a tiny MLP) and its
    compute rate (a batch of a small convnet), each from a few timed steps; once per process."""
    key = (device, str(dtype), torch.get_num_threads())
    if key in _calibrations:
        return _calibrations[key]

    def work(model: nn.Module, x: torch.Tensor) -> tuple[float, int, float]:
        model = model.to(device, dtype)
        y = torch.zeros(len(x), dtype=torch.long, device=device)
        x = x.to(device, dtype)
        opt = torch.optim.SGD(model.parameters(), lr=1e-9)

        def step() -> None:
            opt.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()

        c = count_model(copy.deepcopy(model).to("meta"), x.to("meta"))
        return _time_calls(step, 5, device), c.ops, c.step_flops * len(x)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        tiny = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
        t_tiny, ops, _ = work(tiny, torch.randn(1, 8))
        conv = nn.Sequential(
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
            nn.Flatten(), nn.Linear(32 * 16 * 16, 10),
        )  # fmt: skip
        t_conv, conv_ops, flops = work(conv, torch.randn(16, 16, 16, 16))
    op_seconds = t_tiny / ops
    rate = flops / max(t_conv - conv_ops * op_seconds, 0.25 * t_conv)
    _calibrations[key] = Calibration(op_seconds, rate)
    return _calibrations[key]


class _Clock(Probe):
    """Notes the time after every step (last in the probe list, so after the other probes)."""

    needs = frozenset({"batch_loss"})

    def __init__(self, device: str) -> None:
        super().__init__("_clock", "step")
        self.device = device
        self.times: list[float] = []

    def measure(self, ctx: Any) -> dict[str, float]:
        _sync(self.device)
        self.times.append(time.perf_counter())
        return {}


def timed_step(
    cfg: Config, model: nn.Module, data: Dataset, probes: ProbesConfig, reference: Reference | None = None
) -> float:
    """Median seconds of one engine step of `model` on all of `data` (the sampler's batch is
    min(B, len(data))) with the iteration probes of `probes` (state probes are priced apart),
    over TIMED_STEPS steps after a warm-up. The step size is made tiny: cost does not depend
    on it, and a few steps of a large one could diverge."""
    small_lr = dataclasses.replace(cfg.optim, lr=min(cfg.optim.lr, 1e-9))
    timing = dataclasses.replace(
        cfg,
        optim=small_lr,
        train=dataclasses.replace(cfg.train, epochs=None, max_steps=TIMED_STEPS + 1, stop_loss=None),
    )
    parts = build_parts(timing, model=model, data=data)
    clock = _Clock(cfg.device)
    parts = dataclasses.replace(parts, probes=[p for p in build_probes(probes) if p.iteration] + [clock])
    outcome = train(
        parts, Recorder(None, cfg.checkpoint), theta0=flat_params(parts.model), reference=reference
    )
    if outcome.status == "interrupted":  # the loop caught Ctrl-C or SIGTERM: meant for the plan
        raise KeyboardInterrupt
    return statistics.median(b - a for a, b in itertools.pairwise(clock.times))


# ---------------------------------------------------------------------------------------
# how often the state probes run


def _multiples(periods: list[int], steps: int) -> int:
    """How many k in [0, steps] are a multiple of at least one of `periods` (inclusion-exclusion)."""
    total = 0
    for r in range(1, len(periods) + 1):
        for group in itertools.combinations(periods, r):
            lcm = reduce(math.lcm, group)
            total += (-1) ** (r + 1) * (steps // lcm + 1)
    return total


def due_steps(schedules: list[Schedule], steps: int, spe: int) -> int:
    """How many steps k in [0, steps] some schedule is due at (the last step counting for the
    schedules that run at the end), by arithmetic for the periodic specs (step, every:K,
    epoch:K) and by listing the few log-spaced steps; a schedule made in code is walked."""
    periods: set[int] = set()
    listed: set[int] = set()
    for s in schedules:
        name, _, arg = s.spec.partition(":")
        if name in ("step", "every", "epoch"):
            periods.add({"step": 1, "every": int(arg or 1), "epoch": spe * int(arg or 1)}[name])
        elif isinstance(s.rule, LogSteps):
            listed.update(s.rule.up_to(steps))
        elif name not in ("final", "never"):
            listed.update(k for k in range(steps + 1) if s.due(k, spe))
    minimal = sorted(p for p in periods if not any(q < p and p % q == 0 for q in periods))
    count = _multiples(minimal, steps)
    count += sum(1 for k in listed if not any(k % p == 0 for p in minimal))
    if any(s.at_end for s in schedules) and not any(steps % p == 0 for p in minimal) and steps not in listed:
        count += 1
    return count

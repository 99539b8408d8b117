"""`--plan` in seconds: FLOPs counted from shapes, state probes counted by arithmetic, a few
steps timed at a small batch on a few prepared points, and another device priced at its stated
rate. What it must never do is prepare a whole dataset or time a full-size step."""

from __future__ import annotations

import random
from contextlib import contextmanager

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from conftest import tiny
from sgdlab.build import resolve
from sgdlab.config import load_config
from sgdlab.data import datasets
from sgdlab.experiments import planning, step_cost
from sgdlab.experiments.base import Plan, experiments
from sgdlab.experiments.planning import count_model, due_steps, plan
from sgdlab.papers import Paper
from sgdlab.probes import parse_schedule


@pytest.mark.parametrize(
    "model,shape",
    [
        (nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)), (1, 8, 8)),
        (
            nn.Sequential(
                nn.Conv2d(3, 8, 3),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Conv2d(8, 16, 3, padding=1),
                nn.Flatten(),
                nn.Linear(16 * 7 * 7, 10),
            ),
            (3, 16, 16),
        ),  # fmt: skip
    ],
)
def test_counted_flops_are_what_torch_counts(model, shape):
    x = torch.randn(4, *shape)
    with FlopCounterMode(display=False) as counter:
        out = model(x)
        forward = counter.get_total_flops()
        out.sum().backward()
    count = count_model(model.to("meta"), x.to("meta"))
    assert count.forward_flops == pytest.approx(forward / 4)
    assert count.step_flops == pytest.approx(counter.get_total_flops() / 4)
    assert count.n_params == sum(p.numel() for p in model.parameters())


def test_due_steps_count_what_walking_every_step_counts():
    rng = random.Random(0)
    specs = ["step", "every:3", "every:7", "epoch", "epoch:2", "log:1.5", "log", "final", "never"]
    for _ in range(200):
        chosen = rng.sample(specs, rng.randint(0, 3))
        steps, spe = rng.randint(0, 400), rng.randint(1, 30)
        schedules = [parse_schedule(s) for s in chosen]
        walked = sum(
            1
            for k in range(steps + 1)
            if any(s.due(k, spe) or (k == steps and s.at_end) for s in [parse_schedule(c) for c in chosen])
        )
        assert due_steps(schedules, steps, spe) == walked, (chosen, steps, spe)


@contextmanager
def experiment(runs: dict[str, dict]):
    """A throwaway experiment whose plan is `runs`."""
    name = "planning-test"
    paper = Paper("Doe", 2020, "A plan", "Workshop")
    experiments.register(name, help="plans", paper=paper, plan=lambda scale: Plan(runs))(lambda lab: [])
    try:
        yield name
    finally:
        del experiments._entries[name]


BIG = {  # every digit, one step over all of them at a time, a model too big to time here
    "data": {"name": "digits"},
    "model": {"name": "mlp", "widths": [8192, 8192]},
    "optim": {"name": "gd", "lr": 0.1},
    "train": {"epochs": 300},
}
SMALL = tiny(train={"epochs": 50})


@pytest.fixture
def watched(monkeypatch):
    """What planning prepares, builds and times: prepared points, real (not meta) models built,
    and the points of each timed step."""
    seen = {"prepared": [], "models": [], "timed": []}

    def wrap(name, record):
        original = getattr(planning, name)

        def wrapper(*args, **kwargs):
            out = original(*args, **kwargs)
            record(args, out)
            return out

        monkeypatch.setattr(planning, name, wrapper)

    wrap("prepare", lambda args, out: seen["prepared"].append(len(out.train) + len(out.test)))
    wrap(
        "build_model_seeded",
        lambda args, out: seen["models"].append(sum(p.numel() for p in out.parameters())),
    )
    wrap("timed_step", lambda args, out: seen["timed"].append(len(args[2].train)))

    def refuse(*args, **kwargs):
        raise AssertionError("planning built a whole dataset")

    monkeypatch.setattr("sgdlab.build.build_dataset", refuse)
    monkeypatch.setattr("sgdlab.data.build_dataset", refuse)
    return seen


def test_planning_prepares_a_few_points_and_times_only_small_steps(watched):
    with experiment({"big": BIG, "small": SMALL}) as name:
        _, rows, _ = plan(name, "full", "cpu")
    big, small = rows
    cfg = resolve(load_config(raw={"data": {"name": "digits"}, "device": "cpu"}))
    digits = len(datasets.get("digits").factory(cfg.data, torch.Generator()).x_train)
    assert big.n_train == big.batch_size == digits and big.estimate == "counted"  # full batch
    assert small.n_train == 128 and small.estimate == "timed"
    assert all(n <= planning.SKETCH_POINTS + 8 for n in watched["prepared"])
    assert watched["models"] == [small.n_params]  # the big model exists only on the meta device
    budget = planning.TIMED_FLOPS["cpu"]
    assert watched["timed"] and all(b * small.flops <= budget for b in watched["timed"])
    assert big.seconds > 300 * big.flops * digits / 1e13  # 300 full-batch steps at < 10 TFLOP/s


def test_a_plan_for_an_absent_gpu_trains_nothing_and_prices_flops_at_the_stated_rate(watched):
    quiet = dict(BIG, probes={"use": []})
    with experiment({"big": quiet}) as name:
        _, (row,), _ = plan(name, "full", "cuda")
    assert not watched["timed"] and not watched["models"]
    count = planning.count_model(
        planning.meta_model(planning._resolved(quiet, "cuda"), (1, 8, 8), 10),
        torch.zeros(2, 1, 8, 8, device="meta"),
    )
    rate = planning.THROUGHPUT[("cuda", "float32")]
    step = count.ops * planning.OP_SECONDS["cuda"] + count.step_flops * row.n_train / rate
    assert row.estimate == "counted" and row.seconds == pytest.approx(300 * step)  # no probes: steps only


def test_more_epochs_cost_more_and_identical_runs_are_priced_once():
    with experiment({"a": SMALL, "b": tiny(train={"epochs": 100}), "a-again": SMALL}) as name:
        _, (a, b, again), _ = plan(name, "full", "cpu")
    assert again.same_as == "a" and again.seconds == 0.0
    assert 1.8 < b.seconds / a.seconds < 2.05  # twice the steps and evaluations, one timing


def test_reproduce_plan_on_cuda_without_a_gpu_says_how_it_estimated(cli):
    result = cli(
        "reproduce",
        "gamma-principle",
        "--scale",
        "smoke",
        "--plan",
        "--device",
        "cuda",
        "--only",
        "optimizer",
    )
    assert result.exit_code == 0, result.output
    assert "on cuda" in result.stdout and "no cuda here" in result.stdout and "TFLOP/s" in result.stdout


def test_timing_batches_follow_the_flop_budget(monkeypatch, watched):
    monkeypatch.setitem(planning.TIMED_FLOPS, "cpu", 3e5)  # some 60 points of the tiny MLP
    with experiment({"small": dict(SMALL, train={"batch_size": 128, "epochs": 2})}) as name:
        _, (row,), _ = plan(name, "full", "cpu")
    timed = sorted(set(watched["timed"]))
    assert row.estimate == "timed" and len(timed) == 2 and max(timed) * row.flops <= 3e5
    assert timed[0] == max(timed) // 4  # two batch sizes fix the fixed cost and the rate


def test_combinations_of_periods_are_counted_once():
    assert step_cost._multiples([2, 3], 12) == len({k for k in range(13) if k % 2 == 0 or k % 3 == 0})
    assert step_cost._multiples([], 12) == 0

"""exact-convergence, linear study: steps/s of the batched trainer (every run of the cpu-scale
grid advanced together) against a naive per-step Python loop of the same update, one run at
a time, on the same data. Reported as run-steps per second. Target: ratio ≥ 50.

    .venv/bin/python benchmarks/exact_convergence_linear.py [--steps 20000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import bench_args, case, describe, interleave, write_results
from sgdlab.experiments.exact_convergence.logistic import (
    batch_generator,
    train_logistic,
)
from sgdlab.experiments.exact_convergence.measure.linear import load_set, run_grid
from sgdlab.experiments.exact_convergence.rates import log_steps
from sgdlab.experiments.exact_convergence.settings import SCALE_SETTINGS


def naive(x: torch.Tensor, spec, dataset: int, steps: int, record: set[int]) -> float:
    """What one writes by hand: a loop over steps, the textbook update, one run."""
    gen = batch_generator(spec, dataset)
    w = torch.zeros(x.shape[1], dtype=torch.float64)
    kept = []
    t0 = time.perf_counter()
    for t in range(steps):
        if t in record:
            kept.append(w.clone())
        batch = x if spec.method == "gd" else x[torch.randint(x.shape[0], (spec.batch_size,), generator=gen)]
        gradient = -(torch.sigmoid(-(batch @ w))[:, None] * batch).mean(dim=0)
        w = w - spec.lr * gradient
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=5)
    args = bench_args(parser)
    if args.quick:
        args.steps = min(args.steps, 5000)
    torch.set_num_threads(1)
    s = SCALE_SETTINGS["cpu"].linear
    sets = [load_set(name, options, s) for name, options in s.datasets]
    xs = torch.stack([d.x for d in sets])
    runs = run_grid(s)
    record = log_steps(args.steps, s.per_decade)
    n_runs = len(runs) * len(sets)
    # The naive loop times one GD and one SGD run (the two kinds of step) on the first set.
    gd, sgd = runs[0], runs[len(s.lrs)]
    times = interleave(
        {
            "batched": lambda: train_logistic(xs, runs, args.steps, record) and None,
            "naive gd": lambda: naive(sets[0].x, gd, 0, args.steps, set(record.tolist())),
            "naive sgd": lambda: naive(sets[0].x, sgd, 0, args.steps, set(record.tolist())),
        },
        args.repeats,
    )
    batched = [n_runs * args.steps / t for t in times["batched"]]
    naive_rate = [
        args.steps / statistics.mean(pair) for pair in zip(times["naive gd"], times["naive sgd"], strict=True)
    ]
    ratios = [b / n for b, n in zip(batched, naive_rate, strict=True)]
    print(
        f"cpu-scale grid: {n_runs} runs ({len(sets)} datasets × {len(runs)}), n={s.n}, "
        f"dim={s.dim}, {args.steps} steps, float64, 1 thread"
    )
    print(f"  batched s per call:     {describe(times['batched'])}")
    print(f"  naive gd s per run:     {describe(times['naive gd'])}")
    print(f"  naive sgd s per run:    {describe(times['naive sgd'])}")
    print(f"  batched run-steps/s:    {describe(batched)}")
    print(f"  naive run-steps/s:      {describe(naive_rate)}")
    print(
        f"  speed-up (paired):      median {statistics.median(ratios):.1f}× "
        f"(range {min(ratios):.1f}–{max(ratios):.1f}×); target ≥ 50×"
    )
    write_results(
        "exact_convergence_linear",
        [
            case(
                f"{n_runs} logistic runs, {args.steps} steps",
                "batched/naive run-steps per s",
                ratios,
                target="≥ 50",
            )
        ],
    )


if __name__ == "__main__":
    main()

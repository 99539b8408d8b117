"""Particle simulator: the vectorized SGDL simulator (sgdlab.toys.simulate) against the
per-particle Python loop (sgdlab.toys.simulate_loop: each particle stepped alone, scalar
arithmetic, the landscape's exact gradient per call) on the flat/sharp landscape, same
dynamics (constant noise, projection). Metric: particle-steps per second; target ≥ 100×.
Interleaved repetitions, one thread.

    .venv/bin/python benchmarks/particles.py [--quick]
"""

from __future__ import annotations

import argparse
import time

import torch

from common import bench_args, case, describe, write_results
from sgdlab.toys import FLAT_SHARP, Dynamics, simulate, simulate_loop, uniform_starts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = bench_args(ap)  # the comparison runs on the CPU whatever --device says
    torch.set_num_threads(1)
    repeats = args.repeats
    n_fast, steps_fast = (20_000, 200) if args.quick else (100_000, 500)
    n_loop, steps_loop = (5, 100) if args.quick else (10, 200)
    dyn = Dynamics(lr=0.1, noise=0.1, radius=7.5)
    gen = torch.Generator().manual_seed(0)
    xf, yf = uniform_starts(n_fast, (0, 10, 0, 10), gen, torch.float32)
    xl, yl = uniform_starts(n_loop, (0, 10, 0, 10), gen, torch.float32)
    rates = {"vectorized": [], "loop": []}
    for _ in range(repeats):
        t0 = time.perf_counter()
        simulate(FLAT_SHARP, xf, yf, dyn, steps_fast, torch.Generator().manual_seed(1))
        rates["vectorized"].append(n_fast * steps_fast / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        simulate_loop(FLAT_SHARP, xl, yl, dyn, steps_loop, torch.Generator().manual_seed(1))
        rates["loop"].append(n_loop * steps_loop / (time.perf_counter() - t0))
    ratios = [a / b for a, b in zip(rates["vectorized"], rates["loop"], strict=True)]
    for name, r in rates.items():
        print(f"{name}: particle-steps/s {describe(r)}")
    write_results(
        "particles",
        [
            case(
                "vectorized vs per-particle loop",
                "speedup (particle-steps/s)",
                ratios,
                target="≥ 100×",
                vectorized_particle_steps_per_s=rates["vectorized"],
                loop_particle_steps_per_s=rates["loop"],
                particles=n_fast,
                steps=steps_fast,
            ),
            case("vectorized", "particle-steps/s", rates["vectorized"], unit="/s"),
        ],
        dynamics="SGDL γ'=0.1 constant, η=0.1, projection onto the disc r=7.5",
    )


if __name__ == "__main__":
    main()

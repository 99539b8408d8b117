"""Sweep scaling: `sgdlab sweep` of 8 seconds-long runs with 2 local workers against 1 worker.
Target on 2 cores: ≥ 1.7×.

Each side is the command a user types, timed from the outside as a fresh process (so both pay
for starting Python and importing torch). With 1 worker the sweep's own process trains the
runs one after the other; with 2 it trains too while one spawned worker (which imports torch
and sgdlab again) takes the other runs. Repetitions are interleaved (1, 2, 1, 2, …) so both
sides see the same machine load; the ratio is taken per pair.

On a machine shared with other work, Linux's autogroup scheduling gives all processes of one
session (the sweep and its workers) one fair share of the CPUs together, so a second worker
gains nothing while others keep the cores busy: the results record the load average and the
CPU seconds of each side (with 2 idle cores, the 2-worker wall time is about half its CPU
seconds), and the ratio is only meaningful on a quiet machine.

    .venv/bin/python benchmarks/sweep_scaling.py [--quick] [--repeats 3] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import bench_args, case, describe, interleave, ratio_summary, write_results  # noqa: E402
from sgdlab.config import dump_toml  # noqa: E402

RUNS = 8
# About 7 s per run on one idle core (an MLP on digits, 32 steps per epoch, evaluated per
# epoch): long enough that starting the two workers (~3 s) does not dominate.
CONFIG = {
    "seed": 0,
    "device": "cpu",
    "threads": 1,
    "data": {"name": "digits", "n_train": 1024, "n_test": 512},
    "model": {"name": "mlp", "widths": [256, 256]},
    "optim": {"name": "sgd", "lr": 0.05},
    "train": {"batch_size": 32, "epochs": 120},
}


CPU_SECONDS: dict[int, list[float]] = {1: [], 2: []}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # every waited-for descendant
    return usage.ru_utime + usage.ru_stime


def sweep_seconds(config: Path, workers: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "s"
        cpu0 = _children_cpu()
        t0 = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "sgdlab",
                "sweep",
                str(config),
                "--seeds",
                str(RUNS),
                "--out",
                str(out),
                "--workers",
                str(workers),
                "--no-report",
                "--quiet",
            ],
            check=True,
            capture_output=True,
        )
        seconds = time.perf_counter() - t0
        CPU_SECONDS[workers].append(_children_cpu() - cpu0)
        statuses = {row["status"] for row in json.loads((out / "index.json").read_text())}
    if statuses != {"completed"}:
        raise RuntimeError(f"runs ended {statuses}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = bench_args(parser, quick_repeats=1)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.toml"
        config.write_text(dump_toml(dict(CONFIG, device=args.device)))
        times = interleave(
            {"1 worker": lambda: sweep_seconds(config, 1), "2 workers": lambda: sweep_seconds(config, 2)},
            args.repeats,
        )
    med, lo, hi = ratio_summary(times["1 worker"], times["2 workers"])
    print(f"{RUNS} runs × {CONFIG['train']['epochs']} epochs, `sgdlab sweep` as a fresh process")
    for name, values in times.items():
        print(f"  {name} s: {describe(values)}")
    print(f"  speed-up 2 workers / 1: median {med:.2f}× (range {lo:.2f}–{hi:.2f}); target ≥ 1.7×")
    print(f"  CPU seconds: 1 worker {describe(CPU_SECONDS[1])}; 2 workers {describe(CPU_SECONDS[2])}")
    ratios = [a / b for a, b in zip(times["1 worker"], times["2 workers"], strict=True)]
    write_results(
        "sweep_scaling",
        [
            case(
                f"{RUNS} runs, 2 local workers vs 1",
                "speed-up",
                ratios,
                target="≥ 1.7× on 2 cores",
                seconds_1_worker=times["1 worker"],
                seconds_2_workers=times["2 workers"],
                cpu_seconds_1_worker=CPU_SECONDS[1],
                cpu_seconds_2_workers=CPU_SECONDS[2],
                epochs=CONFIG["train"]["epochs"],
            )
        ],
        load_average_before=load_before,
        load_average_after=os.getloadavg(),
        sched_autogroup=_autogroup(),
    )


def _autogroup() -> str:
    try:
        return Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip()
    except OSError:
        return "unknown"


if __name__ == "__main__":
    main()

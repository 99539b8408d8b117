"""Sweep load: 200 smoke runs (a tiny MLP on digits, well under a second of training each) on
2 local workers. Every run must end `completed` with its summary on disk and one row in the
index; measured are the wall time and the peak resident memory of the sweep process and of its
worker, plus how much the sweep process grew between the first tenth of the runs and the end
(bounded memory: it should not grow with the number of runs).

The sweep runs in a fresh process (`run_sweep`, what `sgdlab sweep` calls) that reports its own
peak RSS (getrusage RUSAGE_SELF) and that of the worker processes it waited for
(RUSAGE_CHILDREN: the largest of them), and samples its current RSS (/proc/self/statm) as runs
end. One measurement, not A/B: the numbers are absolute, so they depend on the machine's load.

    .venv/bin/python benchmarks/sweep_load.py [--quick] [--runs 200] [--workers 2] [--device cpu]
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
from common import bench_args, case, write_results  # noqa: E402

CONFIG = {
    "seed": 0,
    "device": "cpu",
    "threads": 1,
    "data": {"name": "digits", "n_train": 128, "n_test": 64},
    "model": {"name": "mlp", "widths": [16]},
    "optim": {"name": "sgd", "lr": 0.1},
    "train": {"batch_size": 16, "epochs": 2},
}
QUICK_RUNS = 40


def rss_mb() -> float:
    """This process's resident memory now (Linux /proc; else its peak so far)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(out: Path, runs: int, workers: int, device: str) -> None:
    """The sweep itself (in its own process): prints one JSON line of measurements."""
    from sgdlab.sweep import run_sweep

    samples: list[tuple[int, float]] = []

    def log(message: str) -> None:  # "[k/N] …" as each run ends
        if message.startswith("["):
            samples.append((int(message[1:].split("/", 1)[0]), rss_mb()))

    t0 = time.perf_counter()
    sweep = run_sweep(dict(CONFIG, device=device), [], runs, out, workers=workers, log=log, report=False)
    wall = time.perf_counter() - t0
    rows = sweep.index.to_pylist()
    summaries = sum((out / "runs" / r["run"] / "summary.json").is_file() for r in rows)
    statuses = sorted({r["status"] for r in rows})
    print(
        json.dumps(
            {
                "wall_s": wall,
                "rows": len(rows),
                "summaries": summaries,
                "statuses": statuses,
                "parent_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "workers_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
                "samples": samples,
            }
        )
    )


def measure(runs: int, workers: int, device: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "sweep"
        t0 = time.perf_counter()
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                str(out),
                "--runs",
                str(runs),
                "--workers",
                str(workers),
                "--device",
                device,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(done.stdout.strip().splitlines()[-1])
        result["process_wall_s"] = time.perf_counter() - t0  # with Python and torch start-up
    if result["rows"] != runs or result["summaries"] != runs or result["statuses"] != ["completed"]:
        raise RuntimeError(
            f"not every run completed: {result['rows']} rows, {result['summaries']} "
            f"summaries, statuses {result['statuses']}"
        )
    return result


def growth_mb(samples: list[list[float]], runs: int) -> float:
    """RSS of the sweep process at its last sample minus that after the first tenth of the runs."""
    early = [rss for k, rss in samples if k >= max(1, runs // 10)]
    return samples[-1][1] - early[0] if early else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=None, help=f"default 200 ({QUICK_RUNS} with --quick)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    args = bench_args(parser)
    runs = args.runs or (QUICK_RUNS if args.quick else 200)
    if args.child is not None:
        child(args.child, runs, args.workers, args.device)
        return
    load_before = os.getloadavg()
    r = measure(runs, args.workers, args.device)
    growth = growth_mb(r["samples"], runs)
    print(
        f"{runs} runs on {args.workers} workers: {r['wall_s']:.1f} s in the sweep "
        f"({r['process_wall_s']:.1f} s with start-up), {runs / r['wall_s']:.2f} runs/s"
    )
    print(
        f"  peak RSS: sweep process {r['parent_peak_mb']:.0f} MB, workers {r['workers_peak_mb']:.0f} MB; "
        f"sweep process grew {growth:+.1f} MB from run {max(1, runs // 10)} to run {runs}"
    )
    write_results(
        "sweep_load",
        [
            case(
                f"{runs} runs, {args.workers} workers",
                "wall time",
                [r["wall_s"]],
                unit=" s",
                process_wall_s=r["process_wall_s"],
                runs=runs,
                workers=args.workers,
            ),
            case(
                f"{runs} runs, {args.workers} workers",
                "peak RSS, sweep process",
                [r["parent_peak_mb"]],
                unit=" MB",
            ),
            case(
                f"{runs} runs, {args.workers} workers",
                "peak RSS, largest worker",
                [r["workers_peak_mb"]],
                unit=" MB",
            ),
            case(
                f"{runs} runs, {args.workers} workers",
                "RSS growth of the sweep process",
                [growth],
                unit=" MB",
                target="bounded (≈ 0: independent of the number of runs)",
                rss_samples_mb=r["samples"],
            ),
        ],
        load_average_before=load_before,
        load_average_after=os.getloadavg(),
    )


if __name__ == "__main__":
    main()

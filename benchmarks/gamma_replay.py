"""Cost of the γ instrument: time and peak memory of a run with the `gamma` probe (replay: both
passes; store: one pass keeping every iterate) against the same run without it.
Targets: replay ≤ 2.5× the plain run's time and ≤ 1.5× its peak memory; the model is sized so
that store mode needs ≥ 10× the replay's memory.

Each measurement runs in a fresh process (peak RSS is per process); modes are interleaved.
Memory is reported two ways: the process's peak RSS, and the peak RSS above the process's RSS
once data and model are built (what training itself adds).

    .venv/bin/python benchmarks/gamma_replay.py [--repeats 3] [--quick] [--device cpu|cuda] [--cases REGEX]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import bench_args, case, write_results  # noqa: E402

CASES = {
    "mlp 512x2 digits (P≈300k)": {
        "data": {"name": "digits", "n_train": 512, "n_test": 0},
        "model": {"name": "mlp", "widths": [512, 512]},
        "train": {"batch_size": 32, "epochs": 30},
    },
    "lenet CIFAR-10 (P≈122k)": {
        "data": {"name": "cifar10", "n_train": 512, "n_test": 0},
        "model": {"name": "lenet"},
        "train": {"batch_size": 32, "epochs": 30},
    },
}

CHILD = r"""
import json, resource, sys, time
import sgdlab

def rss_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

raw = json.loads(sys.argv[1])
parts = sgdlab.prepare(raw)
base = rss_kb()
t0 = time.perf_counter()
result = sgdlab.runner.start(parts)
elapsed = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
assert result.status == "completed", result.summary
print(json.dumps({"time": elapsed, "peak_mb": peak / 1024, "train_mb": (peak - base) / 1024}))
"""


def measure(raw: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(raw)], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cases", default=None, help="regex: only the matching cases (mlp, lenet)")
    args = bench_args(parser, quick_repeats=1)
    rows = []
    for name, spec in CASES.items():
        if args.cases is not None and not re.search(args.cases, name):
            continue
        if args.quick:
            spec = dict(spec, train=dict(spec["train"], epochs=10))
        steps = spec["train"]["epochs"] * spec["data"]["n_train"] // spec["train"]["batch_size"]
        name = f"{name}, {steps} steps"
        base = dict(spec, seed=0, device=args.device, optim={"name": "sgd", "lr": 0.05})
        modes = {
            "plain": dict(base, probes={"use": ["eval", "batch_loss"]}),
            "replay": dict(base, probes={"use": ["eval", "batch_loss", "gamma"]}),
            "store": dict(base, probes={"use": ["eval", "batch_loss", "gamma"], "gamma": {"mode": "store"}}),
        }
        results: dict[str, list[dict]] = {m: [] for m in modes}
        for _ in range(args.repeats):
            for mode, raw in modes.items():
                results[mode].append(measure(raw))
        print(name)
        for mode in modes:
            samples = results[mode]
            t = [r["time"] for r in samples]
            print(
                f"  {mode:6s} time {statistics.median(t):7.2f}s ({min(t):.2f}–{max(t):.2f})  "
                f"peak RSS {statistics.median(r['peak_mb'] for r in samples):7.0f} MB  "
                f"training adds {statistics.median(r['train_mb'] for r in samples):7.1f} MB"
            )
        for a, b in (("replay", "plain"), ("store", "plain"), ("store", "replay")):
            ratios = [x["time"] / y["time"] for x, y in zip(results[a], results[b], strict=True)]
            mem = [x["peak_mb"] / y["peak_mb"] for x, y in zip(results[a], results[b], strict=True)]
            add = [
                x["train_mb"] / max(y["train_mb"], 1e-9) for x, y in zip(results[a], results[b], strict=True)
            ]
            print(
                f"  {a}/{b}: time ×{statistics.median(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f}), "
                f"peak RSS ×{statistics.median(mem):.2f}, training-added memory ×{statistics.median(add):.1f}"
            )
            if b == "plain":
                target = {"replay": ("≤ 2.5", "≤ 1.5"), "store": ("", "")}[a]
                rows.append(case(name, f"{a}/plain time", ratios, target=target[0]))
                rows.append(case(name, f"{a}/plain peak RSS", mem, target=target[1]))
    write_results("gamma_replay", rows)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    main()

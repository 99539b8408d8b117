"""Run every benchmark in benchmarks/ (each in its own process, one after another), then print
one markdown table of all their results from benchmarks/results/<name>.json.

    .venv/bin/python benchmarks/run.py [--quick] [--device cpu|cuda] [--only NAME ...]
    make bench            # everything
    make bench QUICK=1    # the short pass
    .venv/bin/python benchmarks/run.py --table   # the README's table, from benchmarks/results/

Every benchmark measures ratios side by side in one process (interleaved A/B repetitions,
medians and the min–max of per-pair ratios); absolute times are printed, only ratios claimed.
Threads are fixed by each benchmark (1 unless it says otherwise) and recorded in its results.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
NOT_BENCHMARKS = {"common.py", "run.py", "gpu_check.py"}  # gpu_check.py: the helper of gpu_check.sh


def benchmarks() -> list[Path]:
    return sorted(p for p in HERE.glob("[a-z]*.py") if p.name not in NOT_BENCHMARKS)


def table(names: list[str]) -> str:
    """One markdown table of the named benchmarks' results files."""
    lines = ["| benchmark | case | metric | median | range | target |", "|---|---|---|---|---|---|"]
    header, dates, machines = None, [], {}
    for name in names:
        path = HERE / "results" / f"{name}.json"
        if not path.is_file():
            lines.append(f"| {name} | (no results: the benchmark failed) | | | | |")
            continue
        result = json.loads(path.read_text())
        header = header or result
        dates.append(result["date"][:10])
        machines.setdefault(f"{result['cpu']} ({result['cores']} cores)", None)
        for c in result.get("cases", []):
            label = f"{name} (quick)" if c.get("quick", result.get("quick")) else name
            lines.append(
                f"| {label} | {c['case']} | {c['metric']} | {c['median']:.3g}{c['unit']} | "
                f"{c['min']:.3g}–{c['max']:.3g} | {c.get('target', '')} |"
            )
        for key, note in result.items():
            if key.endswith("_error") and note:
                label = f"{name} (quick)" if result.get("quick") else name
                lines.append(f"| {label} | {key} | {note} | | | |")
    if header:
        when = min(dates) if min(dates) == max(dates) else f"{min(dates)} to {max(dates)}"
        lines.insert(
            0,
            f"Measured {when} on {' and '.join(machines)}, torch "
            f"{header['torch']}; each benchmark's threads are in its results file.\n",
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--only", nargs="*", default=None, help="benchmark names (file stems)")
    parser.add_argument(
        "--table",
        action="store_true",
        help="print the table of the results on disk (the README's), run nothing",
    )
    args = parser.parse_args()
    chosen = [p for p in benchmarks() if args.only is None or p.stem in args.only]
    if args.table:
        print(table([p.stem for p in chosen]))
        return
    failed = []
    for path in chosen:
        print(f"\n=== {path.stem}", flush=True)
        (HERE / "results" / f"{path.stem}.json").unlink(missing_ok=True)
        t0 = time.perf_counter()
        cmd = [sys.executable, str(path), "--device", args.device] + (["--quick"] if args.quick else [])
        if subprocess.run(cmd).returncode != 0:
            failed.append(path.stem)
        print(f"({path.stem}: {time.perf_counter() - t0:.0f} s)", flush=True)
    print("\n" + table([p.stem for p in chosen]))
    if failed:
        raise SystemExit(f"benchmarks failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()

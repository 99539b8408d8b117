"""How fast the `sgdlab` command answers what needs no training: `sgdlab --help`, and
`sgdlab list models` (warm: its listing cache written by an earlier call, as after the first
`sgdlab list` on a machine; cold: the cache empty, so every registry is imported, torch too).
Each is a fresh process (`python -m sgdlab ...`), timed from start to exit, the three commands
interleaved; `import torch` alone is timed beside them as the yardstick the lazy imports avoid.

    .venv/bin/python benchmarks/cli_startup.py [--quick]

Target: --help and a warm `list models` under 0.5 s on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

from common import bench_args, case, interleave, write_results


def timed(args: list[str], env: dict[str, str]) -> float:
    """Seconds from starting `python ARGS` to its exit (a failure raises)."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, *args], env=env, check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    args = bench_args(parser, quick_repeats=3)
    cache = tempfile.mkdtemp(prefix="sgdlab-cli-bench-")
    cold_cache = tempfile.mkdtemp(prefix="sgdlab-cli-bench-cold-")
    env = dict(os.environ, SGDLAB_CACHE=cache)
    cold = dict(os.environ, SGDLAB_CACHE=cold_cache)
    try:
        timed(["-m", "sgdlab", "list", "models"], env)  # writes the listing cache

        def list_cold() -> float:
            shutil.rmtree(cold_cache, ignore_errors=True)
            return timed(["-m", "sgdlab", "list", "models"], cold)

        times = interleave(
            {
                "help": lambda: timed(["-m", "sgdlab", "--help"], env),
                "list": lambda: timed(["-m", "sgdlab", "list", "models"], env),
                "list-cold": list_cold,
                "torch": lambda: timed(["-c", "import torch"], env),
            },
            args.repeats,
        )
    finally:
        shutil.rmtree(cache, ignore_errors=True)
        shutil.rmtree(cold_cache, ignore_errors=True)
    write_results(
        "cli_startup",
        [
            case("sgdlab --help", "wall time of a fresh process", times["help"], unit=" s", target="< 0.5 s"),
            case(
                "sgdlab list models (warm)",
                "wall time of a fresh process",
                times["list"],
                unit=" s",
                target="< 0.5 s",
            ),
            case("sgdlab list models (cold)", "wall time of a fresh process", times["list-cold"], unit=" s"),
            case("python -c 'import torch'", "wall time of a fresh process", times["torch"], unit=" s"),
        ],
    )


if __name__ == "__main__":
    main()

"""Engine overhead: steps/s of sgdlab's loop (probes off) against a hand-written PyTorch loop
on the same model, data, sampler and optimizer. Target: ratio ≥ 0.97 (the engine costs at most
3 % of a hand-written loop). The hand-written loop steps with torch.optim.SGD as one writes it;
the engine applies plain SGD's θ ← θ − η·g itself (sgdlab.optim.rule.plain_sgd: the same
numbers, bit for bit, without torch.optim's per-call machinery), which on the small MLP more
than pays for its bookkeeping.

    .venv/bin/python benchmarks/engine_overhead.py [--repeats 7] [--quick]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import sgdlab  # noqa: E402
from common import (
    bench_args,
    case,
    describe,
    engine_time,
    interleave,
    plain_time,  # noqa: E402
    ratio_summary,
    write_results,
)

CASES = {
    "mlp-64 digits b32": {
        "data": {"name": "digits", "n_train": 1024, "n_test": 0},
        "model": {"name": "mlp", "widths": [64]},
        "train": {"batch_size": 32, "epochs": 30},
    },
    "mlp-512x2 digits b128": {
        "data": {"name": "digits", "n_train": 1280, "n_test": 0},
        "model": {"name": "mlp", "widths": [512, 512]},
        "train": {"batch_size": 128, "epochs": 60},
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = bench_args(parser, quick_repeats=3)
    torch.set_num_threads(1)
    rows = []
    for name, spec in CASES.items():
        if args.quick:
            spec = dict(spec, train=dict(spec["train"], epochs=spec["train"]["epochs"] // 3))
        raw = dict(spec, seed=0, device=args.device, optim={"name": "sgd", "lr": 0.05}, probes={"use": []})
        steps = sgdlab.prepare(raw).sampler.steps_per_epoch * spec["train"]["epochs"]
        engine_time(raw), plain_time(raw)  # warm up
        times = interleave(
            {"engine": lambda raw=raw: engine_time(raw), "plain": lambda raw=raw: plain_time(raw)},
            args.repeats,
        )
        med, lo, hi = ratio_summary(times["plain"], times["engine"])
        print(f"{name}: {steps} steps")
        print(f"  engine s: {describe(times['engine'])}")
        print(f"  plain  s: {describe(times['plain'])}")
        print(f"  engine/plain steps/s ratio: median {med:.3f} (range {lo:.3f}–{hi:.3f}); target ≥ 0.97")
        rows.append(
            case(
                name,
                "engine/plain steps/s, probes off",
                [p / e for p, e in zip(times["plain"], times["engine"], strict=True)],
                target="≥ 0.97",
                engine_s=times["engine"],
                plain_s=times["plain"],
                steps=steps,
            )
        )
    write_results("engine_overhead", rows)


if __name__ == "__main__":
    main()

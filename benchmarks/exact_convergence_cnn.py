"""exact-convergence, CNN study: epoch time of the cpu-scale networks through sgdlab's engine
against a plain PyTorch loop on the same model, data and θ_0 (common.plain_time). Two
comparisons per network:

  train only   engine with probes off  vs  plain loop (reshuffle, slice, forward, backward, step)
  as run       engine with the experiment's `eval` probe at each epoch end  vs  plain loop plus
               a hand-written full train/test evaluation (loss and error) at each epoch end

Both plain loops end with one full train/test evaluation, as the engine does for summary.json
(without it, the engine's final evaluation would be counted as per-epoch overhead).

Reported as plain/engine time ratios (= engine/plain throughput). Target ≥ 0.95.

    .venv/bin/python benchmarks/exact_convergence_cnn.py [--epochs 2] [--repeats 5]
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
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
from sgdlab.experiments.exact_convergence.configs import cnn_config  # noqa: E402
from sgdlab.experiments.exact_convergence.settings import SCALE_SETTINGS  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = bench_args(parser)
    if args.quick:
        args.epochs = 1
    s = SCALE_SETTINGS["cpu"].cnn
    rows = []
    for m in s.models:
        raw = cnn_config(m, s)
        raw["train"] = dict(raw["train"], epochs=args.epochs)
        raw["device"] = args.device
        bare = copy.deepcopy(raw)
        bare["probes"] = {"use": []}
        torch.set_num_threads(raw["threads"])
        engine_time(bare), plain_time(bare, False)  # warm up (and the data cache)
        times = interleave(
            {
                "engine": lambda bare=bare: engine_time(bare),
                "plain": lambda bare=bare: plain_time(bare, False),
                "engine+eval": lambda raw=raw: engine_time(raw),
                "plain+eval": lambda raw=raw: plain_time(raw, True),
            },
            args.repeats,
        )
        print(
            f"{m.key} ({m.model['name']}), {s.n_train} train / {s.n_test} test images, batch "
            f"{s.batch_size}, {args.epochs} epochs per measurement, {raw['threads']} thread(s)"
        )
        for name, values in times.items():
            per_epoch = [v / args.epochs for v in values]
            print(f"  {name:12s} s/epoch: {describe(per_epoch)}")
        for a, b in (("plain", "engine"), ("plain+eval", "engine+eval")):
            med, lo, hi = ratio_summary(times[a], times[b])
            print(f"  {b}/{a} throughput: median {med:.3f} (range {lo:.3f}–{hi:.3f}); target ≥ 0.95")
            rows.append(
                case(
                    f"{m.key} CNN epoch",
                    f"{b}/{a} throughput",
                    [x / y for x, y in zip(times[a], times[b], strict=True)],
                    target="≥ 0.95",
                )
            )
    write_results("exact_convergence_cnn", rows)


if __name__ == "__main__":
    main()

"""Channels-last weights vs contiguous weights: seconds per SGD step (forward, backward,
update) of the conv nets on CIFAR-sized batches, one thread, interleaved A/B.

    .venv/bin/python benchmarks/channels_last.py [--repeats 5] [--batch 64]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import bench_args, case, describe, interleave, ratio_summary, write_results  # noqa: E402
from sgdlab.build import resolve  # noqa: E402
from sgdlab.config import load_config  # noqa: E402
from sgdlab.models import build_model  # noqa: E402

CASES = {
    "lenet": {},
    "resnet18 width 16": {"name": "resnet18", "width": 16},
    "vgg11 width 16": {"name": "vgg11", "width": 16},
    "alexnet-small": {},
}


def step_time(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int) -> float:
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return sorted(times[1:])[len(times[1:]) // 2]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch", type=int, default=64)
    args = bench_args(ap)
    torch.set_num_threads(1)
    x, y = torch.randn(args.batch, 3, 32, 32), torch.randint(0, 10, (args.batch,))
    rows = []
    for label, opts in CASES.items():
        model_raw = {"name": label, **opts}
        cfg = resolve(load_config(raw={"data": {"name": "cifar10"}, "model": model_raw}))
        made = build_model(cfg.model, (3, 32, 32), 10)  # channels-last, as sgdlab builds it
        plain = made.to(memory_format=torch.contiguous_format)
        cl = build_model(cfg.model, (3, 32, 32), 10)
        times = interleave(
            {
                "contiguous": lambda plain=plain: step_time(plain, x, y, 6),
                "channels_last": lambda cl=cl: step_time(cl, x, y, 6),
            },
            args.repeats,
        )
        med, lo, hi = ratio_summary(times["contiguous"], times["channels_last"])
        print(
            f"{label:20s} contiguous {describe(times['contiguous'])} s/step; channels-last "
            f"{describe(times['channels_last'])}; speed-up {med:.2f}× ({lo:.2f}–{hi:.2f})"
        )
        rows.append(
            case(
                label,
                "channels-last speed-up per step",
                [c / l for c, l in zip(times["contiguous"], times["channels_last"], strict=True)],
                target="> 1",
            )
        )
    write_results("channels_last", rows)


if __name__ == "__main__":
    main()

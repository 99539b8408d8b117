"""exact-convergence, CNN study: epoch time of the cpu-scale networks through sgdlab's engine
against a plain PyTorch loop on the same model, data and θ_0 (see engine_overhead.py for how
the plain loop is written). Two comparisons per network:

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
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from common import describe, interleave, ratio_summary

import sgdlab
from sgdlab.engine import train
from sgdlab.experiments.exact_convergence.cnn import cnn_config
from sgdlab.experiments.exact_convergence.settings import SCALE_SETTINGS
from sgdlab.store import Recorder


def engine_time(raw: dict) -> float:
    parts = sgdlab.prepare(raw)
    recorder = Recorder(None, parts.config.checkpoint)
    t0 = time.perf_counter()
    train(parts, recorder)
    return time.perf_counter() - t0


@torch.no_grad()
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int) -> tuple[float, float]:
    model.eval()
    loss = err = 0.0
    for i in range(0, len(x), chunk):
        out = model(x[i:i + chunk])
        loss += float(F.cross_entropy(out, y[i:i + chunk], reduction="sum"))
        err += float((out.argmax(1) != y[i:i + chunk]).sum())
    model.train()
    return loss / len(x), err / len(x)


def plain_time(raw: dict, with_eval: bool) -> float:
    parts = sgdlab.prepare(raw)  # same data, same θ_0
    model, data = parts.model, parts.data
    x, y = data.train.x, data.train.y
    opt = torch.optim.SGD(model.parameters(), lr=parts.config.optim.lr)
    gen = torch.Generator().manual_seed(0)
    n, b = x.shape[0], parts.config.train.batch_size
    chunk = parts.config.train.eval_batch_size
    t0 = time.perf_counter()
    for epoch in range(parts.config.train.epochs + 1):
        if with_eval or epoch == parts.config.train.epochs:
            evaluate(model, x, y, chunk), evaluate(model, data.test.x, data.test.y, chunk)
        if epoch == parts.config.train.epochs:
            break
        perm = torch.randperm(n, generator=gen)
        for i in range(-(-n // b)):
            idx = perm[i * b:(i + 1) * b]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss.item()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    s = SCALE_SETTINGS["cpu"].cnn
    for m in s.models:
        raw = cnn_config(m, s)
        raw["train"] = dict(raw["train"], epochs=args.epochs)
        raw["device"] = "cpu"
        bare = copy.deepcopy(raw)
        bare["probes"] = {"use": []}
        torch.set_num_threads(raw["threads"])
        engine_time(bare), plain_time(bare, False)  # warm up (and the data cache)
        times = interleave({"engine": lambda bare=bare: engine_time(bare),
                            "plain": lambda bare=bare: plain_time(bare, False),
                            "engine+eval": lambda raw=raw: engine_time(raw),
                            "plain+eval": lambda raw=raw: plain_time(raw, True)}, args.repeats)
        print(f"{m.key} ({m.model['name']}), {s.n_train} train / {s.n_test} test images, batch "
              f"{s.batch_size}, {args.epochs} epochs per measurement, {raw['threads']} thread(s)")
        for name, values in times.items():
            per_epoch = [v / args.epochs for v in values]
            print(f"  {name:12s} s/epoch: {describe(per_epoch)}")
        for a, b in (("plain", "engine"), ("plain+eval", "engine+eval")):
            med, lo, hi = ratio_summary(times[a], times[b])
            print(f"  {b}/{a} throughput: median {med:.3f} (range {lo:.3f}–{hi:.3f}); target ≥ 0.95")


if __name__ == "__main__":
    main()

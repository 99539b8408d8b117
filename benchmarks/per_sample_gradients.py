"""Per-sample gradient Gram matrix + norms on one batch of 128: sgdlab's fast path (the
outer-product identity; as a separate pass and captured inside a training step), its vmap path,
a Python loop of single-sample backward passes, BackPACK (`BatchL2Grad` for the norms, set against
sgdlab's norms-only path; `BatchGrad` for the Gram matrix) and Opacus' grad-sample hooks, each as
a ratio to one plain forward + backward of the mean loss on the same batch, with the peak memory
each adds.

Models: an MLP 784-1000-1000-10 on MNIST and the LeNet base model (`model.name = "lenet"`) on
CIFAR-10. Targets: fast path ≤ 2× a plain step on the MLP and ≤ 3× on LeNet; faster than
BackPACK and Opacus on both; ≥ 10× faster than the loop. Every candidate's Gram matrix is
checked against the loop's (max error on the cosine scale, in the results).

Timing: candidates interleaved A B C … per repeat, one thread, ratios per repeat to the plain
step measured in the same repeat (median and range). Memory: each candidate once more in a
fresh process; peak RSS (VmHWM, reset after setup and a warm-up) above the RSS after setup.
BackPACK and Opacus are anchors (benchmarks/anchors.txt), used when installed; an import or run
error is recorded in the results instead.

    .venv/bin/python benchmarks/per_sample_gradients.py [--quick] [--repeats 7] [--device cpu|cuda]
        [--cases REGEX] [--no-memory]
"""

from __future__ import annotations

import argparse
import json
import math
import re
import subprocess
import sys
import time
import traceback
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sgdlab  # noqa: E402
from common import bench_args, case, write_results  # noqa: E402
from sgdlab.gradients import (
    Capture,
    gram_stats,
    per_sample_gram,
    per_sample_norms,  # noqa: E402
    plan_split,
    records_gram,
)

N = 128
CASES = {
    "mlp": {
        "data": {"name": "mnist", "n_train": N, "n_test": 0},
        "model": {"name": "mlp", "widths": [1000, 1000]},
    },
    "lenet": {"data": {"name": "cifar10", "n_train": N, "n_test": 0}, "model": {"name": "lenet"}},
}
TARGETS = {"mlp": 2.0, "lenet": 3.0}


def setup(case_name: str, device: str = "cpu"):
    torch.manual_seed(0)
    parts = sgdlab.prepare(dict(CASES[case_name], seed=0, device=device, threads=1))
    x, y = parts.data.train.x, parts.data.train.y
    return parts.model, parts.loss, x, y


def loop_gram(model, loss, x, y):
    params = [p for p in model.parameters()]
    rows = []
    for i in range(len(x)):
        li = loss.per_sample(model(x[i : i + 1]), y[i : i + 1]).sum()
        rows.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(li, params)]))
    j = torch.stack(rows)
    return (j @ j.T).double()


def from_rows(per_param: list[torch.Tensor]) -> torch.Tensor:
    j = torch.cat([g.reshape(g.shape[0], -1) for g in per_param], dim=1)
    return (j @ j.T).double()


def candidates(model, loss, x, y) -> tuple[dict, dict]:
    """name → callable returning the Gram matrix (or squared norms); name → setup error."""
    errors: dict[str, str] = {}
    fns = {}

    def plain():
        model.zero_grad(set_to_none=True)
        loss(model(x), y).backward()
        return None

    fns["plain step"] = plain

    def fast():
        result = per_sample_gram(model, loss, x, y, path="auto")
        gram_stats(result.gram)
        return result.gram

    fns["sgdlab fast (own pass)"] = fast

    fns["sgdlab fast norms only (own pass)"] = lambda: per_sample_norms(model, loss, x, y) ** 2

    split = plan_split(model, x[:1], "fast")

    def in_step():
        model.zero_grad(set_to_none=True)
        with Capture(split.ghost, grad_hooks=True) as cap:
            loss(model(x), y).backward()
        gram = records_gram(cap.records, None, float(len(x)), 512 << 20)
        gram_stats(gram)
        return gram

    fns["sgdlab fast (in the step)"] = in_step

    def vmap():
        result = per_sample_gram(model, loss, x, y, path="vmap")
        gram_stats(result.gram)
        return result.gram

    fns["sgdlab vmap"] = vmap
    fns["python loop"] = lambda: loop_gram(model, loss, x, y)

    try:
        import copy

        from backpack import backpack, extend
        from backpack.extensions import BatchGrad, BatchL2Grad

        bp_model = extend(copy.deepcopy(model))
        bp_loss = extend(torch.nn.CrossEntropyLoss())

        def bp_l2():
            bp_model.zero_grad(set_to_none=True)
            with backpack(BatchL2Grad()):
                bp_loss(bp_model(x), y).backward()
            return sum(p.batch_l2 for p in bp_model.parameters()) * len(x) ** 2

        def bp_grad():
            bp_model.zero_grad(set_to_none=True)
            with backpack(BatchGrad()):
                bp_loss(bp_model(x), y).backward()
            return from_rows([p.grad_batch for p in bp_model.parameters()]) * len(x) ** 2

        bp_l2(), bp_grad()
        fns["backpack BatchL2Grad (norms only)"] = bp_l2
        fns["backpack BatchGrad + Gram"] = bp_grad
    except Exception as exc:  # noqa: BLE001  (an anchor that does not run here is recorded)
        errors["backpack"] = f"{type(exc).__name__}: {exc}"

    try:
        import copy
        import warnings

        from opacus import GradSampleModule

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # contiguous weights: with sgdlab's channels-last conv weights Opacus' conv grad
            # samples disagreed with the loop (max error 1.2 on LeNet)
            op_model = GradSampleModule(
                copy.deepcopy(model).to(memory_format=torch.contiguous_format), loss_reduction="mean"
            )

        def opacus():
            op_model.zero_grad(set_to_none=True)
            loss(op_model(x), y).backward()
            return from_rows([p.grad_sample for p in op_model.parameters()])

        opacus()
        fns["opacus grad_sample + Gram"] = opacus
    except Exception as exc:  # noqa: BLE001
        errors["opacus"] = f"{type(exc).__name__}: {traceback.format_exception_only(exc)[-1].strip()}"
    return fns, errors


def accuracy(fns, reference) -> dict[str, float]:
    """max_ij |G − G_loop| / √(G_loop,ii G_loop,jj) (squared norms only: on the diagonal)."""
    d = reference.diagonal().sqrt()
    out = {}
    for name, fn in fns.items():
        if name in ("plain step", "python loop"):
            continue
        g = fn().double()
        if g.ndim == 1:
            out[name] = float(((g - reference.diagonal()).abs() / d**2).max())
        else:
            out[name] = float(((g - reference).abs() / torch.outer(d, d)).max())
    return out


CHILD = r"""
import json, sys
sys.path.insert(0, sys.argv[3])
import torch
import per_sample_gradients as b
def rss(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024
device = sys.argv[4]
model, loss, x, y = b.setup(sys.argv[1], device)
fns, _ = b.candidates(model, loss, x, y)
fns["plain step"]()
if device == "cuda":
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated() / 2 ** 20
    torch.cuda.reset_peak_memory_stats()
    fns[sys.argv[2]]()
    torch.cuda.synchronize()
    print(json.dumps({"peak_mb": torch.cuda.max_memory_allocated() / 2 ** 20 - base}))
else:
    base = rss("VmRSS:")
    open("/proc/self/clear_refs", "w").write("5")
    fns[sys.argv[2]]()
    print(json.dumps({"peak_mb": rss("VmHWM:") - base}))
"""


def peak_memory(case_name: str, name: str, device: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, case_name, name, str(Path(__file__).parent), device],
        capture_output=True,
        text=True,
    )
    if out.returncode:
        return float("nan")
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_mb"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--cases", default=None, help="regex: only the matching models (mlp, lenet)")
    parser.add_argument("--memory", action=argparse.BooleanOptionalAction, default=True)
    args = bench_args(parser, quick_repeats=3)
    repeats = args.repeats

    def sync():
        if args.device == "cuda":
            torch.cuda.synchronize()

    torch.set_num_threads(1)
    cases, notes = [], {"accuracy": {}, "peak_memory_mb": {}}
    for case_name in [c for c in CASES if args.cases is None or re.search(args.cases, c)]:
        model, loss, x, y = setup(case_name, args.device)
        fns, errors = candidates(model, loss, x, y)
        notes |= {f"{tool}_error": f"{case_name}: {msg}" for tool, msg in errors.items()}
        ref = fns["python loop"]()
        notes["accuracy"][case_name] = accuracy(fns, ref)
        times: dict[str, list[float]] = {name: [] for name in fns}
        for name in fns:  # warm-up
            fns[name]()
        for _ in range(repeats):
            for name, fn in fns.items():
                sync()
                t0 = time.perf_counter()
                fn()
                sync()
                times[name].append(time.perf_counter() - t0)
        memory = {
            name: peak_memory(case_name, name, args.device) if args.memory else math.nan for name in fns
        }
        notes["peak_memory_mb"][case_name] = memory
        plain = times["plain step"]
        fast = times["sgdlab fast (own pass)"]
        for name in fns:
            ratios = [t / p for t, p in zip(times[name], plain, strict=True)]
            target = ""
            if name.startswith("sgdlab fast") and "norms only" not in name:
                target = f"≤ {TARGETS[case_name]:g}×"
            elif name.startswith("backpack BatchL2Grad"):
                target = "slower than sgdlab fast norms only"
            elif name.startswith(("backpack", "opacus")) or name == "python loop":
                target = "slower than sgdlab fast" + (" by ≥ 10×" if name == "python loop" else "")
            cases.append(
                case(
                    f"{case_name}: {name}",
                    "time / plain step",
                    ratios,
                    target=target,
                    seconds=sorted(times[name])[len(times[name]) // 2],
                    peak_memory_mb=memory[name],
                    vs_fast=sorted(t / f for t, f in zip(times[name], fast, strict=True))[len(fast) // 2],
                )
            )
        print(
            f"{case_name}: plain step {sorted(plain)[len(plain) // 2] * 1e3:.1f} ms; accuracy "
            + ", ".join(f"{k} {v:.1e}" for k, v in notes["accuracy"][case_name].items())
        )
    write_results("per_sample_gradients", cases, batch=N, repeats=repeats, device=args.device, **notes)


if __name__ == "__main__":
    main()

"""Helpers for benchmarks: interleaved A/B timing with medians and ranges (shared machines are
noisy; never compare runs made at different times)."""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

import sgdlab
from sgdlab.engine import train
from sgdlab.store import Recorder

PASS = {"quick": False}  # set by bench_args, recorded by write_results


def bench_args(parser, quick_repeats: int = 2):
    """The options every benchmark takes: --quick (a short pass: fewer repeats and steps) and
    --device; with --quick, --repeats (if the benchmark has it) drops to `quick_repeats`."""
    parser.add_argument("--quick", action="store_true", help="a short pass (fewer repeats and steps)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda")
    args = parser.parse_args()
    PASS["quick"] = args.quick
    if args.quick and getattr(args, "repeats", None) is not None:
        args.repeats = min(args.repeats, quick_repeats)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device")
    return args


def interleave(candidates: dict[str, Callable[[], float | None]], repeats: int) -> dict[str, list[float]]:
    """Run each candidate `repeats` times, alternating A B A B …; a candidate returns its own
    measured seconds, or None to be timed from outside."""
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, fn in candidates.items():
            t0 = time.perf_counter()
            own = fn()
            times[name].append(own if own is not None else time.perf_counter() - t0)
    return times


def describe(values: list[float]) -> str:
    return f"median {statistics.median(values):.4g} (range {min(values):.4g}–{max(values):.4g})"


def ratio_summary(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """Median and range of the per-pair ratio a_i / b_i (pairs were measured back to back)."""
    ratios = [x / y for x, y in zip(a, b, strict=True)]
    return statistics.median(ratios), min(ratios), max(ratios)


def engine_time(raw: dict) -> float:
    """Seconds of sgdlab's training loop (no run directory) on config `raw`."""
    parts = sgdlab.prepare(raw)
    recorder = Recorder(None, parts.config.checkpoint)
    t0 = time.perf_counter()
    train(parts, recorder)
    return time.perf_counter() - t0


@torch.no_grad()
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int) -> tuple[float, float]:
    """Cross-entropy and error of `model` on (x, y), in chunks, in eval mode."""
    model.eval()
    loss = err = 0.0
    for i in range(0, len(x), chunk):
        out = model(x[i : i + chunk])
        loss += float(F.cross_entropy(out, y[i : i + chunk], reduction="sum"))
        err += float((out.argmax(1) != y[i : i + chunk]).sum())
    model.train()
    return loss / max(len(x), 1), err / max(len(x), 1)


def plain_time(raw: dict, eval_each_epoch: bool = False) -> float:
    """What a researcher writes by hand on the same data and θ_0: reshuffle each epoch, slice,
    forward, backward, step; a full train/test evaluation at the end (as the engine makes for
    summary.json) and, with `eval_each_epoch`, at every epoch start too."""
    parts = sgdlab.prepare(raw)
    model, data = parts.model, parts.data
    x, y = data.train.x, data.train.y
    opt = torch.optim.SGD(model.parameters(), lr=parts.config.optim.lr)
    gen = torch.Generator().manual_seed(0)
    n, b, epochs = x.shape[0], parts.config.train.batch_size, parts.config.train.epochs
    chunk = parts.config.train.eval_batch_size
    t0 = time.perf_counter()
    for epoch in range(epochs + 1):
        if eval_each_epoch or epoch == epochs:
            evaluate(model, x, y, chunk), evaluate(model, data.test.x, data.test.y, chunk)
        if epoch == epochs:
            break
        perm = torch.randperm(n, generator=gen)
        for i in range(-(-n // b)):
            idx = perm[i * b : (i + 1) * b]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss.item()
    return time.perf_counter() - t0


# ---------------------------------------------------------------------------------------
# Results: every benchmark writes benchmarks/results/<name>.json in one format (`make bench`
# collects them into one table). A case is one measured ratio (or time) with its range.

# SGDLAB_BENCH_RESULTS redirects them (benchmarks/gpu_check.sh keeps one folder per check).
RESULTS = Path(os.environ.get("SGDLAB_BENCH_RESULTS") or Path(__file__).resolve().parent / "results")


def machine_info() -> dict:
    """Where and when a result was measured."""
    import datetime as dt
    import os
    import platform

    cpu = platform.processor() or ""
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": platform.machine(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def case(name: str, metric: str, values: list[float], *, unit: str = "×", target: str = "", **extra) -> dict:
    """One row of a results file: the median and range of `values` (per-pair ratios, or times)."""
    return {
        "case": name,
        "metric": metric,
        "unit": unit,
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
        "target": target,
        **extra,
    }


def write_results(name: str, cases: list[dict], **notes) -> Path:
    """Write benchmarks/results/<name>.json (machine, date, cases, notes such as an anchor tool's
    install error) and print the cases as a markdown table."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(
        json.dumps({"benchmark": name, **machine_info(), **PASS, "cases": cases, **notes}, indent=2) + "\n"
    )
    print(f"| {name} case | metric | median | range | target |\n|---|---|---|---|---|")
    for c in cases:
        print(
            f"| {c['case']} | {c['metric']} | {c['median']:.3g}{c['unit']} | "
            f"{c['min']:.3g}–{c['max']:.3g} | {c['target']} |"
        )
    print(f"wrote {path}")
    return path

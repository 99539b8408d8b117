"""Instrument overhead side by side with Cockpit (Schneider, Dangel & Hennig 2021, "Cockpit: a
practical debugging tool for the training of deep neural networks"): seconds per training step
of a plain PyTorch loop against the same loop through sgdlab's engine with its probes, and
through Cockpit, on the same model, data, θ_0 and batches.

Networks: a 3C3D CNN on CIFAR-10 (DeepOBS's cifar10_3c3d, the net of Cockpit's benchmark) and
an MLP 784-1000-500-100-10 on MNIST (DeepOBS's mnist_mlp), batch 128, SGD lr 0.01, one thread.

The engine steps through torch.optim.SGD here, as the plain loop and Cockpit do (its own
plain-SGD update is engine_overhead's business), so each ratio is the instruments' cost alone.

Cases (each a ratio to the plain loop's seconds per step, measured in the same repeat):
  sgdlab probes off          the engine alone
  sgdlab basic               minibatch loss, ‖θ‖ and ‖θ − θ_0‖, update size, every step
  sgdlab economy @K          Cockpit's economy set without its two extras: loss, minibatch
                             gradient norm, distance from init, update size, per-sample gradient
                             norms and the norm / inner-product / orthogonality tests, every K
                             steps (K = 1, 4, 16; the per-sample part captured from the step's
                             own backward, with `pairs = false`: ‖g_i‖² and ⟨g_i, ḡ⟩ in O(N·P),
                             no N×N Gram matrix, as Cockpit computes these tests)
  sgdlab economy fused @K    the same with the probe's `fused` option (K = 1, 4): the step's
                             convolution weight gradients summed from the per-sample ones, no
                             weight-gradient kernel of PyTorch's (equal to float32 rounding)
  sgdlab λ_max @K            the `hessian` probe's top eigenvalue every K steps (K = 16, 64) on
                             a fixed subset of 128 training points, no trace, Lanczos stopped
                             on the value's estimated accuracy (accuracy = "value"): the work
                             of Cockpit's HessMaxEV on its minibatch of 128
  cockpit economy @K         configuration("economy"): the same quantities plus Alpha and
                             GradHist1d, every K steps
  cockpit economy-matched @K the quantities sgdlab's economy computes, nothing else
  cockpit λ_max @K           HessMaxEV every K steps
Peak memory: each case once more in a fresh process (peak RSS above the RSS after setup).
Minor page faults per step in the timed window, the case's and the plain loop's (medians): the
allocator's fresh pages move a CPU step by tens of ms on this host, plain loop included.
Cockpit and BackPACK are anchors (benchmarks/anchors.txt), used when importable; an import or
run error is recorded in the results instead.

    .venv/bin/python benchmarks/overhead.py [--quick] [--repeats 3] [--steps 64] [--cases REGEX]
        [--nets REGEX] [--device cpu|cuda] [--no-memory]

Each row records its own steps, repeats and pass (`quick`), since `--cases` re-measures some
rows and keeps the others.
"""

from __future__ import annotations

import argparse
import gc
import json
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sgdlab  # noqa: E402
from common import RESULTS, bench_args, case, write_results  # noqa: E402
from sgdlab.engine import train  # noqa: E402
from sgdlab.probes import probes as probe_registry  # noqa: E402
from sgdlab.store import Recorder  # noqa: E402

BATCH = 128


def c3d3() -> nn.Module:
    """DeepOBS cifar10_3c3d: conv 64 5×5 valid, pool 3/2; conv 96 3×3 valid, pool; conv 128 3×3
    same, pool; dense 512, 256, 10 (ReLU). 895,210 parameters."""
    return nn.Sequential(
        nn.Conv2d(3, 64, 5),
        nn.ReLU(),
        nn.MaxPool2d(3, 2, padding=1),
        nn.Conv2d(64, 96, 3),
        nn.ReLU(),
        nn.MaxPool2d(3, 2, padding=1),
        nn.Conv2d(96, 128, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(3, 2, padding=1),
        nn.Flatten(),
        nn.Linear(128 * 3 * 3, 512),
        nn.ReLU(),
        nn.Linear(512, 256),
        nn.ReLU(),
        nn.Linear(256, 10),
    )


def mnist_mlp() -> nn.Module:
    """DeepOBS mnist_mlp: 784-1000-500-100-10, ReLU."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 1000),
        nn.ReLU(),
        nn.Linear(1000, 500),
        nn.ReLU(),
        nn.Linear(500, 100),
        nn.ReLU(),
        nn.Linear(100, 10),
    )


NETS = {"3c3d cifar10": (c3d3, "cifar10"), "mlp mnist": (mnist_mlp, "mnist")}

ECONOMY = ("batch_loss", "norms", "update_norm", "gradients")


def sgdlab_probes(kind: str, every: int) -> dict:
    """The probes table of a case."""
    sched = "step" if every == 1 else f"every:{every}"
    if kind == "off":
        return {"use": []}
    if kind == "basic":
        return {
            "use": ["batch_loss", "norms", "update_norm"],
            "norms": {"schedule": "step"},
            "update_norm": {"schedule": "step"},
        }
    if kind in ("economy", "economy fused"):
        return {
            "use": list(ECONOMY),
            "batch_loss": {"schedule": sched},
            "norms": {"schedule": sched},
            "update_norm": {"schedule": sched},
            # Cockpit's tests need ‖g_i‖² and ⟨g_i, ḡ⟩ only: no N×N Gram matrix (pairs = false)
            "gradients": {
                "schedule": sched,
                "full_grad": False,
                "quantiles": [],
                "pairs": False,
                "fused": kind == "economy fused",
            },
        }
    if kind == "hessian":
        # Cockpit's HessMaxEV: the top eigenvalue on one batch of 128; the same work here
        # HessMaxEV reports the value alone: Lanczos to the value's accuracy (accuracy = "value")
        options = {"schedule": sched, "subset": BATCH, "trace_probes": 0, "accuracy": "value"}
        return {"use": ["hessian"], "hessian": options}
    raise ValueError(kind)


def config(net: str, steps: int, device: str, probes: dict) -> dict:
    _, data = NETS[net]
    return {
        "seed": 0,
        "device": device,
        "threads": 1,
        "data": {"name": data, "n_train": BATCH * 8, "n_test": 0},
        "optim": {"name": "sgd", "lr": 0.01},
        "train": {"batch_size": BATCH, "epochs": None, "max_steps": steps},
        "checkpoint": {"every_seconds": 0},
        "probes": probes,
    }


def build(net: str, steps: int, device: str, probes: dict):
    torch.manual_seed(0)
    factory, _ = NETS[net]
    return sgdlab.prepare(config(net, steps, device, probes), model=factory())


FAULTS: list[float] = []  # minor page faults per step of each timed window, in the order timed


def minor_faults() -> int:
    """This process's minor page faults so far: the allocator's fresh pages, which move a CPU
    step's time by tens of ms here (the same loop in one process: 3,400 to 29,300 a step)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def time_sgdlab(net: str, steps: int, device: str, probes: dict, torch_step: bool = False) -> float:
    """Seconds per step of the engine (in memory), after a one-step warm-up. `torch_step`: step
    through torch.optim.SGD as the plain loop does, not the engine's own plain-SGD update
    (sgdlab.optim.rule.plain_sgd), to compare with a loop that keeps torch's."""
    parts = build(net, steps + 1, device, probes)
    parts.rule.plain = parts.rule.plain and not torch_step
    t0, faults = [], []

    class Clock(sgdlab.Probe):
        needs = frozenset({"batch_loss"})

        def measure(self, ctx):
            t0.append(time.perf_counter())
            faults.append(minor_faults())
            return {}

    parts.probes.append(Clock("_clock", "step"))
    train(parts, Recorder(None, parts.config.checkpoint))
    FAULTS.append((faults[-1] - faults[0]) / (len(t0) - 1))
    return (t0[-1] - t0[0]) / (len(t0) - 1)


def time_plain(net: str, steps: int, device: str) -> float:
    """What one writes by hand: slice, forward, backward, step."""
    parts = build(net, steps + 1, device, {"use": []})
    model, data = parts.model, parts.data
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = data.train.x, data.train.y
    n = x.shape[0] // BATCH
    stamps, faults = [], []
    for k in range(steps + 1):
        i = k % n
        out = model(x[i * BATCH : (i + 1) * BATCH])
        loss = nn.functional.cross_entropy(out, y[i * BATCH : (i + 1) * BATCH])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss.item()
        stamps.append(time.perf_counter())
        faults.append(minor_faults())
    FAULTS.append((faults[-1] - faults[0]) / steps)
    return (stamps[-1] - stamps[0]) / steps


def cockpit_quantities(kind: str, every: int):
    from cockpit import quantities
    from cockpit.utils.configuration import configuration
    from cockpit.utils.schedules import linear

    sched = linear(every)
    if kind == "economy":
        return configuration("economy", track_schedule=sched)
    if kind == "economy-matched":
        return [
            q(track_schedule=sched)
            for q in (
                quantities.Loss,
                quantities.GradNorm,
                quantities.Distance,
                quantities.UpdateSize,
                quantities.NormTest,
                quantities.InnerTest,
                quantities.OrthoTest,
            )
        ]
    if kind == "hessian":
        return [quantities.HessMaxEV(track_schedule=sched)]
    raise ValueError(kind)


def time_cockpit(net: str, steps: int, device: str, kind: str, every: int) -> float:
    """The plain loop with Cockpit tracking (its documented usage: BackPACK-extended model and
    loss, individual losses in `info`, create_graph where a quantity needs it)."""
    from backpack import extend
    from cockpit import Cockpit

    parts = build(net, steps + 1, device, {"use": []})
    model = extend(parts.model.to(memory_format=torch.contiguous_format))
    lossfunc = extend(nn.CrossEntropyLoss())
    individual = nn.CrossEntropyLoss(reduction="none")
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    pit = Cockpit(model.parameters(), quantities=cockpit_quantities(kind, every))
    x, y = parts.data.train.x, parts.data.train.y
    n = x.shape[0] // BATCH
    stamps = []
    for k in range(steps + 1):
        i = k % n
        xb, yb = x[i * BATCH : (i + 1) * BATCH], y[i * BATCH : (i + 1) * BATCH]
        opt.zero_grad(set_to_none=True)
        out = model(xb)
        loss = lossfunc(out, yb)
        losses = individual(out, yb)
        with pit(k, info={"batch_size": BATCH, "individual_losses": losses, "loss": loss, "optimizer": opt}):
            loss.backward(create_graph=pit.create_graph(k))
        opt.step()
        stamps.append(time.perf_counter())
    # create_graph=True leaves a parameter ↔ gradient reference cycle: break it, or repeated
    # Cockpit cases in one process grow without bound (17 GB and an OOM kill here)
    for p in model.parameters():
        p.grad = None
    del pit, model, opt
    gc.collect()
    return (stamps[-1] - stamps[0]) / steps


def cases(has_hessian: bool) -> dict[str, tuple]:
    out = {
        "plain": ("plain",),
        "sgdlab probes off": ("sgdlab", "off", 1),
        "sgdlab basic @1": ("sgdlab", "basic", 1),
    }
    for k in (1, 4, 16):
        out[f"sgdlab economy @{k}"] = ("sgdlab", "economy", k)
    for k in (1, 4):
        out[f"sgdlab economy fused @{k}"] = ("sgdlab", "economy fused", k)
    if has_hessian:
        for k in (16, 64):
            out[f"sgdlab λ_max @{k}"] = ("sgdlab", "hessian", k)
    for k in (1, 4, 16):
        out[f"cockpit economy @{k}"] = ("cockpit", "economy", k)
        out[f"cockpit economy-matched @{k}"] = ("cockpit", "economy-matched", k)
    for k in (16, 64):
        out[f"cockpit λ_max @{k}"] = ("cockpit", "hessian", k)
    return out


def run_case(spec: tuple, net: str, steps: int, device: str) -> float:
    if spec[0] == "plain":
        return time_plain(net, steps, device)
    if spec[0] == "sgdlab":
        return time_sgdlab(net, steps, device, sgdlab_probes(spec[1], spec[2]), torch_step=True)
    return time_cockpit(net, steps, device, spec[1], spec[2])


CHILD = r"""
import json, sys, resource
sys.path.insert(0, sys.argv[1])
import overhead
def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
spec, net, steps, device = json.loads(sys.argv[2])
overhead.run_case(tuple(spec), net, 2, device)  # setup and warm-up
base = rss_mb()
open("/proc/self/clear_refs", "w").write("5")  # reset the peak (VmHWM)
overhead.run_case(tuple(spec), net, steps, device)
for line in open("/proc/self/status"):
    if line.startswith("VmHWM:"):
        print(json.dumps({"added_mb": int(line.split()[1]) / 1024 - base}))
"""


def peak_memory(spec: tuple, net: str, steps: int, device: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(Path(__file__).parent), json.dumps([spec, net, steps, device])],
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed")
    return json.loads(out.stdout.strip().splitlines()[-1])["added_mb"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--memory", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument(
        "--cases",
        default=None,
        help="regex: measure only the matching cases (the plain loop always) and replace just "
        "those rows of results/overhead.json, e.g. a full pass of the headline rows",
    )
    parser.add_argument("--nets", default=None, help="regex: only the matching networks (e.g. 3c3d)")
    args = bench_args(parser, quick_repeats=1)
    if args.quick:
        args.steps = min(args.steps, 16)
    torch.set_num_threads(1)
    notes: dict[str, str] = {}
    has_hessian = "hessian" in probe_registry
    if not has_hessian:
        notes["sgdlab_hessian_error"] = "the hessian probe is not registered in this checkout"
    try:
        import backpack  # noqa: F401
        import cockpit  # noqa: F401
    except Exception as exc:  # noqa: BLE001 — any import failure is what we record
        notes["cockpit_error"] = f"{type(exc).__name__}: {exc}"
    table = cases(has_hessian)
    if args.cases:
        table = {k: v for k, v in table.items() if k == "plain" or re.search(args.cases, k)}
    if "cockpit_error" in notes:
        table = {k: v for k, v in table.items() if v[0] != "cockpit"}
    rows = []
    for net in [n for n in NETS if args.nets is None or re.search(args.nets, n)]:
        # `fused` changes convolutions only: on the MLP it would be the economy case again
        fused_too = any(isinstance(m, nn.Conv2d) for m in NETS[net][0]().modules())
        times: dict[str, list[float]] = {
            name: [] for name, spec in table.items() if fused_too or spec[1:2] != ("economy fused",)
        }
        faults: dict[str, list[float]] = {name: [] for name in table}
        for name in list(times):  # warm-up (and the data caches)
            try:
                run_case(table[name], net, 2, args.device)
            except Exception as exc:  # noqa: BLE001
                notes[f"{name} {net} error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
                times.pop(name)
        for _ in range(args.repeats):
            for name in list(times):
                FAULTS.clear()
                times[name].append(run_case(table[name], net, args.steps, args.device))
                faults[name].extend(FAULTS[-1:])  # the cockpit loop does not count them
        plain = times["plain"]
        print(f"{net}: plain {statistics.median(plain) * 1e3:.1f} ms/step")
        for name, values in times.items():
            if name == "plain":
                continue
            ratios = [v / p for v, p in zip(values, plain, strict=True)]
            extra: dict[str, float | str] = {}
            if faults[name] and faults["plain"]:
                extra["minor_faults_per_step"] = statistics.median(faults[name])
                extra["plain_minor_faults_per_step"] = statistics.median(faults["plain"])
            if args.memory:
                try:
                    extra["peak_added_mb"] = peak_memory(
                        table[name], net, max(args.steps // 2, 4), args.device
                    )
                except RuntimeError as exc:
                    extra["peak_error"] = str(exc)[:300]
            print(
                f"  {name:28s} ×{statistics.median(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f})"
                f"  {statistics.median(values) * 1e3:7.1f} ms/step  {extra}"
            )
            rows.append(
                case(
                    f"{net}: {name}",
                    "time per step / plain loop",
                    ratios,
                    target=TARGETS.get((net.split()[0], name), ""),
                    ms_per_step=statistics.median(values) * 1e3,
                    plain_ms_per_step=statistics.median(plain) * 1e3,
                    steps=args.steps,
                    repeats=args.repeats,
                    quick=args.quick,
                    **extra,
                )
            )
    if args.cases:
        rows = merged_rows(rows)
    write_results("overhead", rows, batch=BATCH, **notes)


def merged_rows(new: list[dict]) -> list[dict]:
    """The rows of the results on disk with the re-measured ones replaced, in the order of the
    networks and the cases (a case new to the file goes where `cases` lists it)."""
    path = RESULTS / "overhead.json"
    if not path.is_file():
        return new
    fresh = {row["case"]: row for row in new}
    before = json.loads(path.read_text())
    pass_of_file = {"steps": before.get("steps"), "quick": before.get("quick", False)}
    old = [{**pass_of_file, **row} for row in before["cases"]]
    rows = [fresh.pop(row["case"], row) for row in old] + list(fresh.values())
    order = [f"{net}: {name}" for net in NETS for name in cases(has_hessian=True)]
    return sorted(rows, key=lambda row: order.index(row["case"]) if row["case"] in order else len(order))


TARGETS = {
    ("3c3d", "sgdlab economy @1"): (
        "≤ 1.3 (Cockpit paper: 1.52) with the step bit for bit, missed: its conv moments alone "
        "are 1.23 with sgdlab's kernels, 1.19 at the weight-gradient kernel's speed (floors); "
        "met fused"
    ),
    ("3c3d", "sgdlab economy fused @1"): "≤ 1.3 (Cockpit paper: 1.52)",
    ("mlp", "sgdlab economy @1"): "≤ 2 (Cockpit paper: 4.2)",
    ("3c3d", "sgdlab economy @16"): "≤ 1.05",
    ("mlp", "sgdlab economy @16"): (
        "≤ 1.05, missed: a call costs 0.72 of a plain step every step (@1), about one step "
        "every 16, when its passes over θ's 1.34 M parameters (5.3 MB each) read from memory"
    ),
    ("3c3d", "sgdlab λ_max @64"): (
        "≤ 1.3, at its floor: its 15 Hessian-vector products alone are 1.28–1.32 (floors)"
    ),
    ("mlp", "sgdlab λ_max @64"): "≤ 1.3",
    ("3c3d", "sgdlab probes off"): "≤ 1.05 (throughput ≥ 0.95)",
    ("mlp", "sgdlab probes off"): "≤ 1.05 (throughput ≥ 0.95)",
}


if __name__ == "__main__":
    main()

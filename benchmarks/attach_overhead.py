"""`sgdlab.attach` on a plain loop, side by side with the same loop bare and with sgdlab's engine
running the same probes, on the overhead benchmark's nets (benchmarks/overhead.py: 3C3D on
CIFAR-10 and the MNIST MLP, batch 128, SGD lr 0.01, one thread, the same θ_0 and batches).

Cases (each a ratio to the bare loop's seconds per step, measured in the same repeat):
  engine <probes>            sgdlab.run's loop with the probes (as in overhead.py), stepping
                             through torch.optim.SGD as the bare loop does (the engine's own
                             plain-SGD update is engine_overhead's business), so that
                             attach / engine is what attaching costs
  attach <probes>            the bare loop with `with lab.step(x, y):` around each step
  attach / engine <probes>   the per-repeat ratio of the two: what attaching costs beyond the
                             engine's own overhead (the issue's target: ≤ 1.03)
  cockpit economy @K         Cockpit on the same loop, the anchor (when it is installed)
Probe sets: basic @1 (loss, ‖θ‖, ‖θ − θ_0‖, update size every step), economy @1 and @16 (plus
the per-sample gradient tests, captured from the step's own backward), λ_max @64 (the hessian
probe's top eigenvalue on 128 fixed training points).

    .venv/bin/python benchmarks/attach_overhead.py [--quick] [--repeats 3] [--steps 64]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import overhead  # noqa: E402
import sgdlab  # noqa: E402
from common import bench_args, case, write_results  # noqa: E402
from sgdlab.losses import get_loss  # noqa: E402

BATCH = overhead.BATCH
PROBE_SETS = {"basic @1": ("basic", 1), "economy @1": ("economy", 1), "economy @16": ("economy", 16)}
HESSIAN = {"λ_max @64": ("hessian", 64)}
LOSS = get_loss("cross-entropy", "index")


def time_attach(net: str, steps: int, device: str, probes: dict) -> float:
    """Seconds per step of overhead.time_plain's loop with `sgdlab.attach` around each step."""
    parts = overhead.build(net, steps + 1, device, {"use": []})
    model, data = parts.model, parts.data
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = data.train.x, data.train.y
    n = x.shape[0] // BATCH
    table = {k: v for k, v in probes.items() if k != "use"}
    lab = sgdlab.attach(
        model,
        opt,
        probes=probes["use"],
        loss_fn=LOSS,
        eval_data=(x, y),
        steps_per_epoch=n,
        config={"probes": table},
    )
    stamps = []
    for k in range(steps + 1):
        i = k % n
        xb, yb = x[i * BATCH : (i + 1) * BATCH], y[i * BATCH : (i + 1) * BATCH]
        with lab.step(xb, yb):
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        loss.item()
        stamps.append(time.perf_counter())
    return (stamps[-1] - stamps[0]) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=64)
    args = bench_args(parser, quick_repeats=1)
    if args.quick:
        args.steps = min(args.steps, 16)
    torch.set_num_threads(1)
    notes: dict[str, str] = {}
    try:
        import backpack  # noqa: F401
        import cockpit  # noqa: F401

        anchors = {f"cockpit economy @{k}": ("cockpit", "economy", k) for k in (1, 16)}
    except Exception as exc:  # noqa: BLE001 — any import failure is what we record
        notes["cockpit_error"] = f"{type(exc).__name__}: {exc}"
        anchors = {}
    sets = {**PROBE_SETS, **HESSIAN}
    rows = []
    for net in overhead.NETS:
        runs = {"plain": lambda s, net=net: overhead.time_plain(net, s, args.device)}
        for name, (kind, every) in sets.items():
            probes = overhead.sgdlab_probes(kind, every)
            runs[f"engine {name}"] = lambda s, net=net, p=probes: overhead.time_sgdlab(
                net, s, args.device, p, torch_step=True
            )
            runs[f"attach {name}"] = lambda s, net=net, p=probes: time_attach(net, s, args.device, p)
        for name, spec in anchors.items():
            runs[name] = lambda s, net=net, spec=spec: overhead.run_case(spec, net, s, args.device)
        for fn in runs.values():  # warm-up (and the data caches)
            fn(2)
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.repeats):
            for name, fn in runs.items():
                times[name].append(fn(args.steps))
        plain = times["plain"]
        print(f"{net}: plain {statistics.median(plain) * 1e3:.1f} ms/step")
        common = dict(steps=args.steps, repeats=args.repeats, quick=args.quick)
        for name, values in times.items():
            if name == "plain":
                continue
            ratios = [v / p for v, p in zip(values, plain, strict=True)]
            print(f"  {name:24s} ×{statistics.median(ratios):.3f} ({min(ratios):.3f}–{max(ratios):.3f})")
            rows.append(
                case(
                    f"{net}: {name}",
                    "time per step / bare loop",
                    ratios,
                    ms_per_step=statistics.median(values) * 1e3,
                    plain_ms_per_step=statistics.median(plain) * 1e3,
                    **common,
                )
            )
        for name in sets:
            ratios = [a / e for a, e in zip(times[f"attach {name}"], times[f"engine {name}"], strict=True)]
            print(f"  attach / engine {name:12s} ×{statistics.median(ratios):.3f}")
            rows.append(
                case(
                    f"{net}: attach / engine {name}",
                    "time per step, attach / engine",
                    ratios,
                    target="≤ 1.03",
                    **common,
                )
            )
    write_results("attach_overhead", rows, batch=BATCH, **notes)


if __name__ == "__main__":
    main()

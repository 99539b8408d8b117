"""A 21×21 loss-landscape grid along two random filter-normalized directions (Li et al. 2018):
sgdlab's `loss_grid` against the `loss-landscapes` package's `random_plane` (installed for the
benchmark only) and a serial per-point loop (write θ into the model, forward, read the loss), on
the same model and data, in eval mode, one thread.

Cases: the report's MLP 512-512 on 512 digits (the model of `sgdl-flatness`), a small MLP
(16) on 64 digits, where each point's forward is cheap and the per-point overhead dominates,
and the LeNet base model on 512 CIFAR-10 images. On a plane θ0 + a·d1 + b·d2 a model whose first
layer is linear in its parameters gets that layer's outputs on the data at every point as
Z0 + a·Z1 + b·Z2 (three passes instead of 441), and only the later layers run per point:
batched by vmap (`chunk` points per call) where per-point overhead dominates, one by one
(`chunk=1`) where one point's forward is compute-bound (the first and last case on a CPU; a
matmul with its bias fused, where vmap adds a batched matmul and a bias pass). There the
remaining arithmetic (for the MLP the 512×512 layer: 441 × 512·512·512 ≈ 5.9·10^10
multiply-adds, about 1 ms a point on one quiet core) is paid once per point whichever way,
so the target is never to be slower than a per-point loop (≥ 1.0×). LeNet's first-layer
outputs on all 512 images (3 × 55 MB) would outgrow the cache every point re-reads them from:
the data go through in pieces whose outputs fit 8 MiB, each piece through all points, and
the rest runs point by point (`chunk=1`: vmap over conv weights is a grouped convolution,
several times slower on a CPU; measured 0.26× the serial loop at chunk 8).
Targets per case and comparison in CASES (issue 24: small MLP ≥ 3× vs loss-landscapes; MLP
512-512 ≥ 1.0× vs a serial loop).

    .venv/bin/python benchmarks/landscape_grid.py [--quick]
"""

from __future__ import annotations

import argparse
import time
import traceback

import torch

import sgdlab
from common import bench_args, case, describe, write_results
from sgdlab.params import set_flat_params
from sgdlab.probes.landscape import filter_normalized, loss_grid

STEPS = 21
COMPUTE_BOUND = {"serial": "≥ 1.0×", "loss-landscapes": "≥ 1.0×"}  # never slower than a per-point loop
# name → (data, model, parameter vectors per vmapped forward, target per comparison)
CASES = {
    "mlp 512-512, 512 digits": (
        {"name": "digits", "n_train": 512, "n_test": 0},
        {"name": "mlp", "widths": [512, 512]},
        1,
        COMPUTE_BOUND,
    ),
    "mlp 16, 64 digits (per-point overhead dominates)": (
        {"name": "digits", "n_train": 64, "n_test": 0},
        {"name": "mlp", "widths": [16]},
        441,
        {"serial": "≥ 3×", "loss-landscapes": "≥ 3×"},
    ),
    "lenet, 512 CIFAR-10 images": (
        {"name": "cifar10", "n_train": 512, "n_test": 0},
        {"name": "lenet"},
        1,
        COMPUTE_BOUND,
    ),
}


def setup(data, model):
    parts = sgdlab.prepare({"seed": 0, "device": "cpu", "data": data, "model": model})
    m = parts.model.eval()
    theta = torch.cat([p.detach().reshape(-1) for p in m.parameters()])
    return m, parts.loss, parts.data.train.x, parts.data.train.y, theta


def batched(m, loss, x, y, theta, dirs, coords, chunk):
    t0 = time.perf_counter()
    grid = loss_grid(m, loss, x, y, theta, dirs, coords, coords, chunk=chunk)
    return time.perf_counter() - t0, grid


@torch.no_grad()
def serial(m, loss, x, y, theta, dirs, coords):
    t0 = time.perf_counter()
    out = torch.empty(len(coords), len(coords))
    for i, a in enumerate(coords):
        for j, b in enumerate(coords):
            set_flat_params(m, theta + a * dirs[0] + b * dirs[1])
            out[i, j] = loss(m(x), y)
    set_flat_params(m, theta)
    return time.perf_counter() - t0, out


def anchor(m, loss, x, y):
    import loss_landscapes
    import loss_landscapes.metrics

    metric = loss_landscapes.metrics.Loss(loss, x, y)
    t0 = time.perf_counter()
    loss_landscapes.random_plane(
        m, metric, distance=1, steps=STEPS, normalization="filter", deepcopy_model=True
    )
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--case", default=None, help="run only the cases whose name contains this")
    args = bench_args(ap)  # the comparison runs on the CPU whatever --device says
    torch.set_num_threads(1)
    repeats = args.repeats or (2 if args.quick else 3)
    cases, notes = [], {}
    names = list(CASES)[:2] if args.quick else list(CASES)
    if args.case:
        names = [n for n in CASES if args.case in n]
    for name in names:
        data, model, chunk, targets = CASES[name]
        m, loss, x, y, theta = setup(data, model)
        dirs = filter_normalized(m, theta, torch.Generator().manual_seed(0), count=2)
        coords = torch.linspace(-1, 1, STEPS)
        times = {"sgdlab": [], "serial": [], "loss-landscapes": []}
        for _ in range(repeats):
            t, grid = batched(m, loss, x, y, theta, dirs, coords, chunk)
            times["sgdlab"].append(t)
            t, ref = serial(m, loss, x, y, theta, dirs, coords)
            times["serial"].append(t)
            assert torch.allclose(grid, ref, rtol=1e-4, atol=1e-5), "batched grid differs from the loop"
            try:
                times["loss-landscapes"].append(anchor(m, loss, x, y))
            except Exception as exc:
                notes["loss_landscapes_error"] = "".join(
                    traceback.format_exception_only(type(exc), exc)
                ).strip()
        for tool, ts in times.items():
            if ts:
                print(f"{name}: {tool} {describe(ts)} s")
        for other in ("serial", "loss-landscapes"):
            if times[other]:
                cases.append(
                    case(
                        f"{STEPS}×{STEPS} grid, {name}: vs {other}",
                        "speedup (their time / ours)",
                        [b / a for a, b in zip(times["sgdlab"], times[other], strict=True)],
                        target=targets[other],
                        sgdlab_seconds=times["sgdlab"],
                        other_seconds=times[other],
                        chunk=chunk,
                    )
                )
    write_results("landscape_grid", cases, **notes)


if __name__ == "__main__":
    main()

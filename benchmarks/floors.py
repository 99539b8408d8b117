"""What the overhead benchmark's every-step and λ_max rows cannot go below on this machine: the
arithmetic each instrument has to do, timed, as a ratio to the plain step of overhead.py's loop
(same nets, batch 128, one thread).

  economy @1, per-sample moments of the 3C3D's conv layers: ‖g_i‖² needs every sample's weight
      gradient g_i = δ_i U_iᵀ, whose arithmetic is that of the layer's weight gradient Σ_i g_i
      (or the identity's T×T blocks, where fewer); ⟨g_i, S⟩ then costs a matrix-vector
      product. Timed per layer: sgdlab's kernel (`conv_weight_moments`) and the layer's own
      weight-gradient kernel (mkldnn: the same arithmetic without patch copies; no per-sample
      kernel reaches it here: a loop of per-sample mkldnn calls and the grouped convolution
      measured slower than sgdlab's batched matmul over patches).
      Rows: 1 + Σ_layers min(weight gradient, sgdlab) / plain step (what per-sample kernels at
      the weight-gradient kernel's speed would allow), and 1 + Σ_layers sgdlab / plain step.
  λ_max @64: Lanczos to 10⁻³ from the previous call's vector needs k Hessian-vector products
      (k read from a 64-step run of the `hessian` probe as overhead.py runs it); each costs
      one double backward (in the probe's pieces of the 128 samples), after one gradient with
      its graph. Row: 1 + (build + k·HVP) / 64 /
      plain step; the Lanczos vectors' own passes (a few reads of P floats per product) are
      not in it. `hvp_builtin_ms`: the same product on a graph built with PyTorch's own
      derivative formulas (sgdlab.curvature.lean_graph says what those waste).

    .venv/bin/python benchmarks/floors.py [--quick] [--repeats 5]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path
from unittest.mock import patch

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import overhead  # noqa: E402
from common import bench_args, case, write_results  # noqa: E402
from sgdlab.curvature import HessianOperator, operators  # noqa: E402
from sgdlab.engine import train  # noqa: E402
from sgdlab.gradients.moments import conv_weight_moments  # noqa: E402
from sgdlab.store import Recorder  # noqa: E402

BUDGET = 256 << 20


def seconds(fn, repeats: int) -> float:
    """Median wall time of fn() over `repeats` calls after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def layer_times(layer: nn.Conv2d, a: torch.Tensor, repeats: int) -> tuple[float, float]:
    """Seconds of the layer's weight-gradient kernel and of sgdlab's per-sample moments
    (‖g_i‖², ⟨g_i, S⟩), on its input `a` and a random output gradient."""
    weight = layer.weight.detach().requires_grad_(True)
    out = F.conv2d(a, weight, None, layer.stride, layer.padding)
    d = torch.randn_like(out)
    total = torch.autograd.grad(out, weight, d)[0]
    w = weight.detach()
    mask = (False, True, False)
    args = (layer.stride, layer.padding, (1, 1), False, (0, 0), 1, mask)
    wgrad = seconds(lambda: torch.ops.aten.convolution_backward(d, a, w, None, *args), repeats)
    mine = seconds(lambda: conv_weight_moments(layer, a, d, total, BUDGET), repeats)
    return wgrad, mine


def conv_floor(plain: float, repeats: int) -> tuple[float, float, dict[str, float]]:
    """(floor, sgdlab's kernels) as ratios to the plain step for the 3C3D's conv layers, and the
    per-layer times (ms) behind them."""
    parts = overhead.build("3c3d cifar10", 2, "cpu", {"use": []})
    model, x = parts.model, parts.data.train.x[: overhead.BATCH]
    inputs: dict[nn.Module, torch.Tensor] = {}
    handles = [
        m.register_forward_hook(lambda m, a, out: inputs.__setitem__(m, a[0].detach()))
        for m in model.modules()
        if isinstance(m, nn.Conv2d)
    ]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    best = ours = 0.0
    detail = {}
    for i, (layer, a) in enumerate(inputs.items(), start=1):
        wgrad, mine = layer_times(layer, a, repeats)
        detail |= {f"conv{i}_moments_ms": mine * 1e3, f"conv{i}_wgrad_ms": wgrad * 1e3}
        best += min(wgrad, mine)
        ours += mine
    return 1 + best / plain, 1 + ours / plain, detail


def lanczos_floor(net: str, plain: float, repeats: int) -> tuple[float, dict[str, float]]:
    """1 + (build + k·HVP)/64/plain for the `hessian` probe every 64 steps, k from the run."""
    parts = overhead.build(net, 65, "cpu", overhead.sgdlab_probes("hessian", 64))
    recorder = Recorder(None, parts.config.checkpoint)
    train(parts, recorder)
    table = recorder.metrics.table().to_pydict()
    products = {s: k for s, k in zip(table["step"], table["hessian_lanczos_steps"], strict=True) if k}
    k = products[64]  # the call inside overhead.py's timed window: warm-started at step 0's vector
    probe = next(p for p in parts.probes if p.name == "hessian")
    x, y = parts.data.batch(parts.data.train, probe.indices)
    build = seconds(lambda: HessianOperator(parts.model, parts.loss, x, y, chunk=probe.piece), repeats)
    op = HessianOperator(parts.model, parts.loss, x, y, chunk=probe.piece)
    v = torch.randn(op.n, generator=torch.Generator().manual_seed(0))
    hvp = seconds(lambda: op @ v, repeats)
    op.release()
    with patch.object(operators, "lean_first_derivatives", contextlib.nullcontext):
        builtin = HessianOperator(parts.model, parts.loss, x, y, chunk=probe.piece)
    hvp_builtin = seconds(lambda: builtin @ v, repeats)
    floor = 1 + (build + k * hvp) / 64 / plain
    times = {"build_ms": build * 1e3, "hvp_ms": hvp * 1e3, "hvp_builtin_ms": hvp_builtin * 1e3}
    return floor, {"products": k, "piece": probe.piece, **times}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = bench_args(parser, quick_repeats=2)
    torch.set_num_threads(1)
    rows = []
    plains = {
        net: statistics.median(overhead.time_plain(net, 32, "cpu") for _ in range(args.repeats))
        for net in overhead.NETS
    }
    floor, ours, detail = conv_floor(plains["3c3d cifar10"], args.repeats)
    print(f"3c3d economy @1: weight-gradient speed ×{floor:.2f}, sgdlab's kernels ×{ours:.2f}  {detail}")
    rows.append(
        case(
            "3c3d cifar10: economy @1, conv per-sample moments at the weight-gradient kernel's speed",
            "floor: time per step / plain loop",
            [floor],
            **detail,
        )
    )
    rows.append(
        case(
            "3c3d cifar10: economy @1, conv per-sample moments with sgdlab's kernels",
            "floor: time per step / plain loop",
            [ours],
            **detail,
        )
    )
    for net in overhead.NETS:
        floor, detail = lanczos_floor(net, plains[net], args.repeats)
        print(f"{net} λ_max @64: floor ×{floor:.2f}  {detail}")
        rows.append(
            case(
                f"{net}: λ_max @64, Hessian-vector products alone",
                "floor: time per step / plain loop",
                [floor],
                **detail,
            )
        )
    write_results("floors", rows, plain_ms={net: p * 1e3 for net, p in plains.items()})


if __name__ == "__main__":
    main()

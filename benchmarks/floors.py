"""What the overhead benchmark's every-step and λ_max rows cannot go below on this machine: the
arithmetic each instrument has to do, timed, as a ratio to the plain step of overhead.py's loop
(same nets, batch 128, one thread; the plain step's median over runs before and after the
kernels are timed, since a slow spell of a shared machine moves it by a third).

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
from sgdlab.gradients import Workspace  # noqa: E402
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
    (‖g_i‖², ⟨g_i, S⟩) in a workspace reused from call to call (as the gradients probe keeps
    one), on its input `a` and a random output gradient."""
    weight = layer.weight.detach().requires_grad_(True)
    out = F.conv2d(a, weight, None, layer.stride, layer.padding)
    d = torch.randn_like(out)
    total = torch.autograd.grad(out, weight, d)[0]
    w = weight.detach()
    mask = (False, True, False)
    args = (layer.stride, layer.padding, (1, 1), False, (0, 0), 1, mask)
    wgrad = seconds(lambda: torch.ops.aten.convolution_backward(d, a, w, None, *args), repeats)
    work = Workspace()
    mine = seconds(lambda: conv_weight_moments(layer, a, d, total, BUDGET, work), repeats)
    return wgrad, mine


def conv_times(repeats: int) -> dict[str, float]:
    """Per-layer times (ms) of the 3C3D's conv layers: sgdlab's moments and the layer's
    weight-gradient kernel."""
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
    detail = {}
    for i, (layer, a) in enumerate(inputs.items(), start=1):
        wgrad, mine = layer_times(layer, a, repeats)
        detail |= {f"conv{i}_moments_ms": mine * 1e3, f"conv{i}_wgrad_ms": wgrad * 1e3}
    return detail


def lanczos_times(net: str, repeats: int) -> dict[str, float]:
    """The `hessian` probe every 64 steps: k, the products of its call at step 64 (from the run),
    and the times (ms) of building its operator and of one product, in the probe's pieces."""
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
    times = {"build_ms": build * 1e3, "hvp_ms": hvp * 1e3, "hvp_builtin_ms": hvp_builtin * 1e3}
    return {"products": k, "piece": probe.piece, **times}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = bench_args(parser, quick_repeats=2)
    torch.set_num_threads(1)
    plain_samples: dict[str, list[float]] = {net: [] for net in overhead.NETS}

    def sample_plain() -> None:
        for net in overhead.NETS:
            plain_samples[net].append(overhead.time_plain(net, 32, "cpu") * 1e3)

    # the plain step before and after the kernels, so that a slow spell of the machine does not
    # move every floor at once
    for _ in range(args.repeats):
        sample_plain()
    conv = conv_times(args.repeats)
    lanczos = {net: lanczos_times(net, args.repeats) for net in overhead.NETS}
    for _ in range(args.repeats):
        sample_plain()
    plain = {net: statistics.median(ms) for net, ms in plain_samples.items()}
    layers = range(1, 4)
    best = sum(min(conv[f"conv{i}_wgrad_ms"], conv[f"conv{i}_moments_ms"]) for i in layers)
    ours = sum(conv[f"conv{i}_moments_ms"] for i in layers)
    for_3c3d = {"plain_ms": plain["3c3d cifar10"], **conv}
    rows = [
        case(
            "3c3d cifar10: economy @1, conv per-sample moments at the weight-gradient kernel's speed",
            "floor: time per step / plain loop",
            [1 + best / plain["3c3d cifar10"]],
            **for_3c3d,
        ),
        case(
            "3c3d cifar10: economy @1, conv per-sample moments with sgdlab's kernels",
            "floor: time per step / plain loop",
            [1 + ours / plain["3c3d cifar10"]],
            **for_3c3d,
        ),
    ]
    for net, t in lanczos.items():
        per_call = t["build_ms"] + t["products"] * t["hvp_ms"]
        rows.append(
            case(
                f"{net}: λ_max @64, Hessian-vector products alone",
                "floor: time per step / plain loop",
                [1 + per_call / 64 / plain[net]],
                plain_ms=plain[net],
                **t,
            )
        )
    for row in rows:
        print(f"{row['case']}: ×{row['median']:.3f}")
    write_results("floors", rows, plain_ms=plain, plain_ms_samples=plain_samples)


if __name__ == "__main__":
    main()

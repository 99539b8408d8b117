"""Empirical NTK of a 784-512-512-1 ReLU MLP (665,089 parameters) on N = 100 and N = 1000
inputs: time and peak memory of sgdlab's `auto` against its `jacobian` and `products` methods,
and against neural-tangents' `empirical_ntk_fn` (JAX on CPU) on the same network (the torch
weights, copied) and the same inputs. Every kernel is checked against the jacobian method's.

Targets: at N = 100 `auto` is no slower than the faster of the two methods (time ratio ≤ 1.05,
the noise of two runs of the same method); at N = 1000 `auto`'s peak memory is within 1 GiB.

Every measurement runs in a fresh process (peak RSS is per process), methods interleaved;
memory is the peak RSS above the RSS once model and inputs are built. Times are steady-state
calls: the second call in the process at N = 100 (the first pays torch.func's and XLA's
one-time set-up, reported as first_call_s), the only call at N = 1000 (set-up is noise there;
JAX's N = 1000 time is still its second, jitted call). JAX runs in its own venv,
made once (the anchors file lists neural-tangents' pip specs):

    python3 -m venv benchmarks/.venv-jax
    benchmarks/.venv-jax/bin/pip install "neural-tangents==0.6.5" "jax[cpu]==0.4.23" \
        "jaxlib==0.4.23" "tf2jax==0.3.5" "numpy<2"
    .venv/bin/python benchmarks/ntk.py [--quick]

Without that venv (or when neural-tangents fails there) the JAX rows are skipped and the exact
error is recorded in benchmarks/results/ntk.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from itertools import pairwise
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

from common import bench_args, case, write_results  # noqa: E402

JAX_PYTHON = HERE / ".venv-jax" / "bin" / "python"
BUDGET = 1 << 30
WIDTHS = (784, 512, 512, 1)

TORCH_CHILD = (
    r"""
import json, resource, sys, time
import numpy as np, torch
from sgdlab.ntk import empirical_ntk, plan_kernel
from sgdlab.ntk.functional import functional

def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

method, n, data, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
torch.set_num_threads(2)
arrays = np.load(data)
layers = []
for i in range(3):
    lin = torch.nn.Linear(arrays[f"w{i}"].shape[1], arrays[f"w{i}"].shape[0])
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(arrays[f"w{i}"])); lin.bias.copy_(torch.from_numpy(arrays[f"b{i}"]))
    layers += [lin, torch.nn.ReLU()]
model = torch.nn.Sequential(*layers[:-1])
x = torch.from_numpy(arrays["x"][:n]).contiguous()
plan = plan_kernel(functional(model, None, x), n, n, True, method, {budget})
base = rss_mb()
times = []
for _ in range(2 if n <= 200 else 1):  # the first call pays torch.func's one-time set-up
    t0 = time.perf_counter()
    k = empirical_ntk(model, x, method=method, memory_budget={budget})
    times.append(time.perf_counter() - t0)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
np.save(out, k.double().numpy())
print(json.dumps({{"time": times[-1], "first_call": times[0], "peak_mb": peak, "added_mb": peak - base,
                  "method": plan.method,
                  "estimate_mb": (plan.jacobian_bytes if plan.method == "jacobian"
                                  else plan.products_bytes) / 2**20}}))
""".replace("{budget}", str(BUDGET))
    .replace("{{", "{")
    .replace("}}", "}")
)

JAX_CHILD = r"""
import json, resource, sys, time
import numpy as np
import jax, jax.numpy as jnp
import neural_tangents as nt

def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

impl, n, data, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
arrays = np.load(data)
params = [(jnp.asarray(arrays[f"w{i}"]), jnp.asarray(arrays[f"b{i}"])) for i in range(3)]
x = jnp.asarray(arrays["x"][:n])

def f(params, x):
    for i, (w, b) in enumerate(params):
        x = x @ w.T + b
        if i < len(params) - 1:
            x = jax.nn.relu(x)
    return x

fn = jax.jit(nt.empirical_ntk_fn(f, trace_axes=(), vmap_axes=0, implementation=impl))
base = rss_mb()
t0 = time.perf_counter()
k = np.asarray(fn(x, None, params))
first = time.perf_counter() - t0
t0 = time.perf_counter()
k = np.asarray(fn(x, None, params))
steady = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
np.save(out, k.reshape(n, n).astype(np.float64))
print(json.dumps({"time": steady, "first_call": first, "peak_mb": peak, "added_mb": peak - base,
                  "jax": jax.__version__, "neural_tangents": getattr(nt, "__version__", "?")}))
"""

NT_IMPLEMENTATIONS = {"nt-jacobian": 1, "nt-products": 2, "nt-structured": 3}


def make_data(path: Path, n: int) -> None:
    import numpy as np
    import torch

    torch.manual_seed(0)
    out = {}
    for i, (a, b) in enumerate(pairwise(WIDTHS)):
        lin = torch.nn.Linear(a, b)
        out[f"w{i}"], out[f"b{i}"] = lin.weight.detach().numpy(), lin.bias.detach().numpy()
    x = torch.randn(n, WIDTHS[0], generator=torch.Generator().manual_seed(1))
    out["x"] = (x / x.norm(dim=1, keepdim=True)).numpy()
    np.savez(path, **out)


def measure(python: str, child: str, arg: str, n: int, data: Path, tmp: Path) -> dict:
    out = tmp / f"k-{arg}-{n}.npy"
    env = dict(os.environ, PYTHONPATH=str(HERE.parent / "src"), JAX_PLATFORMS="cpu")
    done = subprocess.run(
        [python, "-c", child, arg, str(n), str(data), str(out)], capture_output=True, text=True, env=env
    )
    if done.returncode:
        return {"error": (done.stderr.strip().splitlines() or ["exit %d" % done.returncode])[-1]}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["kernel"] = str(out)
    return result


def jax_status() -> str | None:
    """None when the JAX venv imports neural-tangents, else the exact error."""
    if not JAX_PYTHON.exists():
        return f"{JAX_PYTHON} does not exist (see this file's docstring to make it)"
    done = subprocess.run(
        [str(JAX_PYTHON), "-c", "import jax, neural_tangents"],
        capture_output=True,
        text=True,
        env=dict(os.environ, JAX_PLATFORMS="cpu"),
    )
    return None if done.returncode == 0 else done.stderr.strip().splitlines()[-1]


def main() -> None:
    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args = bench_args(parser)  # CPU: the comparison with JAX on the CPU
    repeats = {100: 3, 1000: 1} if args.quick else {100: 5, 1000: 2}
    jax_error = jax_status()
    ours = ("auto", "jacobian", "products")
    theirs = tuple(NT_IMPLEMENTATIONS) if jax_error is None else ()
    cases, notes = (
        [],
        {
            "network": "784-512-512-1 ReLU MLP, float32, 665,089 parameters",
            "memory_budget_bytes": BUDGET,
            "neural_tangents_error": jax_error,
        },
    )
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        data = tmp / "data.npz"
        make_data(data, max(repeats))
        for n, reps in repeats.items():
            results: dict[str, list[dict]] = {m: [] for m in ours + theirs}
            for _ in range(reps):
                for m in ours:
                    results[m].append(measure(sys.executable, TORCH_CHILD, m, n, data, tmp))
                for m in theirs:
                    results[m].append(
                        measure(str(JAX_PYTHON), JAX_CHILD, str(NT_IMPLEMENTATIONS[m]), n, data, tmp)
                    )
            reference = None
            for m, rows in results.items():
                good = [r for r in rows if "error" not in r]
                if not good:
                    notes[f"{m}_N{n}_error"] = rows[0]["error"]
                    print(f"N={n} {m}: {rows[0]['error']}")
                    continue
                k = np.load(good[-1]["kernel"])
                if reference is None:
                    reference = k
                rel = float(np.linalg.norm(k - reference) / np.linalg.norm(reference))
                extra = {"relative_difference_to_auto": rel, "chose": good[0].get("method", m)}
                if "first_call" in good[0]:
                    extra["first_call_s"] = [r["first_call"] for r in good]
                cases.append(case(f"N={n} {m}", "time", [r["time"] for r in good], unit=" s", **extra))
                cases.append(
                    case(
                        f"N={n} {m}",
                        "peak memory added",
                        [r["added_mb"] for r in good],
                        unit=" MB",
                        target="≤ 1024 MB" if (n == 1000 and m == "auto") else "",
                        estimate_mb=good[0].get("estimate_mb"),
                    )
                )
            times = {m: [r.get("time") for r in rows] for m, rows in results.items()}
            if all(None not in times[m] for m in ours):
                fastest = [min(j, p) for j, p in zip(times["jacobian"], times["products"], strict=True)]
                cases.append(
                    case(
                        f"N={n} auto / faster method",
                        "time ratio",
                        [a / f for a, f in zip(times["auto"], fastest, strict=True)],
                        target="≤ 1.05" if n == 100 else "",
                    )
                )
                for m in theirs:
                    if None not in times[m]:
                        cases.append(
                            case(
                                f"N={n} auto / {m}",
                                "time ratio",
                                [a / b for a, b in zip(times["auto"], times[m], strict=True)],
                            )
                        )
    write_results("ntk", cases, **notes)


if __name__ == "__main__":
    main()

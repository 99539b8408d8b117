"""Helpers for benchmarks: interleaved A/B timing with medians and ranges (shared machines are
noisy; never compare runs made at different times)."""

from __future__ import annotations

import statistics
import time
from typing import Callable


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
    ratios = [x / y for x, y in zip(a, b)]
    return statistics.median(ratios), min(ratios), max(ratios)

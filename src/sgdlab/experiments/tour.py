"""`sgdlab demo`: every registered reproduction, one after the other, at its tour scale, ending
in one DIR/report.html that says per finding what the paper claimed and what was measured.

The tour is derived from the experiments registry, so a newly registered reproduction joins
it with no change here. Each runs at the scale it declares with `tour=` when it registers
(one of SCALES), by default `smoke`: seconds per experiment, so the whole tour stays within a
few minutes on 2 cores. Each stage is `reproduce(...)` into DIR/<experiment>/ (which writes
that stage's own report); a stage that raises is recorded and the tour goes on.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from ..errors import UserError, quote
from ..store.claims import count_verdicts
from ..store.provenance import environment, versions
from ..store.records import save_tour
from .base import selected
from .registry import Reproduction, experiments, reproductions
from .reproduce import reproduce


def _under(log: Callable[[str], None], name: str) -> Callable[[str], None]:
    """`log` with each message indented and prefixed by `[name]` (a stage's own log lines)."""
    return lambda message: log(f"    [{name}] {message}")


def stages(only: str | None = None) -> list[Reproduction]:
    """The registered experiments the tour visits (those `only` selects), in registry order."""
    chosen = [r for r in reproductions() if selected(r.name, only)]
    if not chosen:
        raise UserError(
            f"--only: {quote(only)} selects none of the experiments ({', '.join(experiments.names())})"
        )
    return chosen


def run_tour(
    out: str | Path,
    *,
    device: str = "auto",
    only: str | None = None,
    log: Callable[[str], None] | None = None,
    progress_factory: Callable | None = None,
) -> list[dict[str, Any]]:
    """Reproduce every (selected) experiment at its tour scale into `out`/<name>, then write
    `out`/report.html; returns the stage records (also in `out`/tour.json)."""
    from ..build import resolve_device
    from ..report.html import write_report

    log = log or (lambda message: None)
    out = Path(out)
    entries = stages(only)  # checked before anything is written
    resolve_device(device)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a directory; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {
        "device": device,
        "only": only,
        "versions": versions(),
        "environment": environment(),
        "stages": [],
    }
    for repro in entries:
        paper = repro.paper
        record["stages"].append(
            {
                "experiment": repro.name,
                "dir": repro.name,
                "scale": repro.tour,
                "paper": str(paper or ""),
                "paper_short": paper.short if paper is not None else "",
                "paper_title": paper.title if paper is not None else "",
                "help": repro.help,
                "status": "pending",
            }
        )
    save_tour(out, record)
    t_tour = time.perf_counter()
    for i, stage in enumerate(record["stages"], 1):
        name, scale = stage["experiment"], stage["scale"]
        log(f"[{i}/{len(entries)}] {name} at scale {scale}: {stage['help']}")
        stage["status"] = "running"
        save_tour(out, record)
        t0 = time.perf_counter()
        try:
            claims = reproduce(
                name,
                out / stage["dir"],
                scale,
                device,
                log=_under(log, name),
                progress_factory=progress_factory,
            )
        except Exception as exc:  # noqa: BLE001 - recorded; the tour goes on
            stage.update(status="failed", error=f"{type(exc).__name__}: {exc}")
            log(f"[{i}/{len(entries)}] {name}: failed ({stage['error']})")
        else:
            counts = count_verdicts(claims)
            stage.update(status="completed", verdicts=counts)
            log(
                f"[{i}/{len(entries)}] {name}: {len(claims)} claims ("
                + ", ".join(f"{n} {v}" for v, n in counts.items() if n)
                + ")"
                + f" in {time.perf_counter() - t0:.0f} s; {time.perf_counter() - t_tour:.0f} s so far"
            )
        stage["wall_time_s"] = round(time.perf_counter() - t0, 2)
        save_tour(out, record)
    write_report(out)
    return record["stages"]

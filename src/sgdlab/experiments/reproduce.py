"""`sgdlab reproduce NAME`: run a registered reproduction at a scale into a directory and keep
what it found — claims.json (each claim citing the paper), experiment.json (what ran, where,
how long) and report.html."""

from __future__ import annotations

import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

from ..errors import UserError, quote
from ..store.claims import Claim, count_verdicts, save_claims
from ..store.provenance import environment, versions
from ..store.records import ExperimentRecord, save_record
from .base import Lab, Progress, selected
from .registry import check_scale, reproduction


def check_selection(name: str, scale: str, only: str | None) -> None:
    """A UserError when `--only PATTERN` selects none of the runs and parts experiment
    `name` plans at `scale` (its registered `plan`; an experiment without one is checked by
    `reproduce` once it has run)."""
    if only is None:
        return
    planned = reproduction(name).planned(scale)
    if planned is None:
        return
    names = [*planned.runs, *planned.simulations]
    if not any(selected(n, only) for n in names):
        raise nothing_selected(name, scale, only)


def nothing_selected(name: str, scale: str, only: str) -> UserError:
    """The error of an `--only PATTERN` that selects nothing."""
    return UserError(f"--only: {quote(only)} selects none of the runs and parts of {name} at scale {scale}")


def _remove_new(out: Path, new: bool) -> None:
    """Remove `out` if this invocation created it (an `--only` that selected nothing)."""
    if new:
        shutil.rmtree(out, ignore_errors=True)


def reproduce(
    name: str,
    out: str | Path,
    scale: str = "cpu",
    device: str = "auto",
    log: Progress | None = None,
    progress_factory: Callable | None = None,
    only: str | None = None,
) -> list[Claim]:
    """Run experiment `name` at `scale` into `out` (only the runs and parts `only` selects);
    returns its claims (also in claims.json), each citing the experiment's paper, and writes
    OUT/experiment.json and OUT/report.html.

    Checked before anything is written: the experiment and scale exist, the device is there
    (`cuda` without a GPU is a UserError), `out` is a directory or can be one, and `only`
    selects some run or part."""
    from ..build import resolve_device
    from ..report.html import write_report

    repro = reproduction(name)
    check_scale(scale)
    resolve_device(device)
    check_selection(name, scale, only)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a directory; choose another --out")
    new = not out.exists()
    lab = Lab(out, scale, device, log, progress_factory, only)
    t0 = time.perf_counter()
    try:
        made = repro.run(lab)
    except Exception:
        if only is not None and lab.asked and not lab.matched:  # it failed for want of a run
            _remove_new(out, new)
            raise nothing_selected(name, scale, only) from None
        raise
    if only is not None and lab.asked and not lab.matched:
        _remove_new(out, new)
        raise nothing_selected(name, scale, only)
    paper = repro.paper
    claims = [c if c.source or paper is None else replace(c, source=str(paper)) for c in made]
    save_claims(lab.out, claims)
    save_record(
        lab.out,
        ExperimentRecord(
            experiment=name,
            scale=scale,
            device=device,
            only=only,
            paper=str(paper) if paper is not None else None,
            help=repro.help,
            versions=versions(),
            environment=environment(),
            wall_time_s=round(time.perf_counter() - t0, 2),
            verdicts=count_verdicts(claims),
        ),
    )
    write_report(lab.out)
    return claims

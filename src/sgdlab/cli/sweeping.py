"""`sgdlab sweep`: a config's grid × seeds, one run per process, and the sweep's report."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .app import app
from .common import SetOption, fail, logger, user_errors


@app.command()
@user_errors
def sweep(
    config: Path = typer.Argument(..., help="TOML config every run starts from"),
    grid: Optional[list[str]] = typer.Option(
        None, "--grid", metavar="KEY=V1,V2", help="a grid axis, e.g. --grid optim.lr=0.1,0.01 (repeatable)"
    ),
    seeds: int = typer.Option(1, "--seeds", help="seeds per grid point: the config's seed, seed+1, …"),
    out: Path = typer.Option(..., "--out", "-o", help="the sweep directory"),
    workers: Optional[int] = typer.Option(None, "--workers", help="local processes (default: one per core)"),
    ray: Optional[str] = typer.Option(
        None,
        "--ray",
        metavar="ADDRESS",
        help="run on Ray: auto (join the running cluster), local (start one here) or HOST:PORT",
    ),
    set_: Optional[list[str]] = SetOption,
    report_: bool = typer.Option(True, "--report/--no-report", help="write DIR/report.html at the end"),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Every grid point × seed as one run; re-running resumes. Writes DIR/index.parquet, DIR/report.html."""
    from ..sweep import run_sweep

    if workers is not None and workers < 1:
        fail(f"--workers: {workers} is not ≥ 1")
    if ray is not None and not ray.strip():  # else "" would quietly mean the local pool
        fail("--ray: an empty address; give auto, local or HOST:PORT")
    if workers is not None and ray:
        fail("--workers applies to the local pool; Ray places the runs on its cluster's CPUs")
    log = logger(quiet)
    try:
        result = run_sweep(
            config,
            tuple(grid or ()),
            seeds,
            out,
            overrides=tuple(set_ or ()),
            workers=workers,
            ray=ray,
            log=log,
        )
    except KeyboardInterrupt:
        typer.echo(f"interrupted; the index is in {out}; run the same command again to continue", err=True)
        raise typer.Exit(130) from None
    if report_:
        from ..report.html import write_report

        write_report(result.path)
    statuses = result.index["status"].to_pylist()
    counts = {s: statuses.count(s) for s in dict.fromkeys(statuses)}
    typer.echo(
        f"{len(statuses)} runs: "
        + ", ".join(f"{n} {s}" for s, n in counts.items())
        + f". Index: {result.path}/index.parquet"
        + (f"; report: {result.path}/report.html" if report_ else "")
    )

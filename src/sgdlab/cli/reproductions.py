"""`sgdlab reproduce`, `demo` and `tune-init`: the published findings, and the one procedure
of theirs that is a tool."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from ..errors import quote
from .app import app
from .common import ProgressReporter, SetOption, fail, logger, user_errors
from .printing import print_claims, print_plan


def _check_device(device: str, *, present: bool = True) -> None:
    """--device: one of cpu, cuda, auto, and (where `present`) there: cuda without a GPU is one
    line, before anything is written. A plan need not run on this machine: it estimates a
    device that is not here from its FLOPs."""
    from ..build import resolve_device
    from ..config import DEVICES

    if device not in DEVICES:
        fail(f"--device: {quote(device)} is not one of {', '.join(DEVICES)}")
    if present:
        resolve_device(device)


@app.command()
@user_errors
def reproduce(
    name: str = typer.Argument(..., help="experiment (sgdlab list experiments)"),
    scale: str = typer.Option("cpu", help="smoke (seconds) | cpu (minutes) | full (GPU)"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="default runs/NAME-SCALE"),
    device: str = typer.Option("auto", help="cpu | cuda | auto"),
    only: Optional[str] = typer.Option(
        None,
        "--only",
        metavar="PATTERN",
        help="only the runs and parts matching PATTERN (a glob, or a substring such as an ablation name)",
    ),
    plan: bool = typer.Option(
        False,
        "--plan",
        help="print the runs this scale would train with a measured time estimate; write nothing",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Reproduce a published finding: runs, figures and a verdict per claim."""
    from ..experiments import SCALES, reproduction
    from ..experiments import reproduce as run_experiment

    reproduction(name)
    if scale not in SCALES:
        fail(f"--scale: {quote(scale)} is not one of {', '.join(SCALES)}")
    _check_device(device, present=not plan)
    if plan:
        print_plan(name, scale, device, only)
        return
    out = out or Path("runs") / f"{name}-{scale}"
    claims = run_experiment(
        name,
        out,
        scale,
        device,
        log=logger(quiet, f"[{name}] "),
        only=only,
        progress_factory=lambda label: ProgressReporter(None, quiet, label),
    )
    print_claims(claims, out)
    typer.echo(f"Report: {out / 'report.html'}", err=True)


@app.command()
@user_errors
def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", "-o", help="the tour's directory"),
    device: str = typer.Option("auto", help="cpu | cuda | auto"),
    only: Optional[str] = typer.Option(
        None, "--only", metavar="PATTERN", help="only the experiments matching PATTERN"
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """A tour of every reproduction at a scale of seconds, ending in OUT/report.html."""
    from ..experiments.tour import run_tour

    _check_device(device)
    t0 = time.perf_counter()
    stages = run_tour(
        out,
        device=device,
        only=only,
        log=logger(quiet),
        progress_factory=lambda label: ProgressReporter(None, quiet, label),
    )
    failed = [s["experiment"] for s in stages if s["status"] != "completed"]
    typer.echo(
        f"demo: {len(stages)} reproductions in {time.perf_counter() - t0:.0f} s. Open {out / 'report.html'}"
    )
    if failed:
        typer.echo(f"error: {len(failed)} stages stopped: {', '.join(failed)} (see the report)", err=True)
        raise typer.Exit(1)


@app.command("tune-init")
@user_errors
def tune_init(
    config: Path = typer.Argument(..., help="TOML config whose model has model.sigma"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="default runs/tune-init-CONFIG"),
    set_: Optional[list[str]] = SetOption,
    factor: float = typer.Option(0.7, help="σ of the next trial = factor × σ"),
    margin: float = typer.Option(
        0.05, help="continue only while the validation loss falls by at least this fraction"
    ),
    max_slowdown: float = typer.Option(
        10.0, help="a trial needing more than this × the standard σ's steps is too slow"
    ),
    max_trials: int = typer.Option(8, help="at most this many σ values"),
    validation: float = typer.Option(0.2, help="fraction of the training set held out"),
    stop_loss: Optional[float] = typer.Option(
        None, help="loss at which a trial counts as trained (default: train.stop_loss)"
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Choose the initialization scale σ by the procedure of Nonnenmacher, Reeb & Steinwart 2021."""
    from .. import tune_init as tuning
    from ..runner import as_config

    cfg = as_config(config, tuple(set_ or ()))
    log = logger(quiet, "[tune-init] ")
    result = tuning.tune_init(
        cfg,
        factor=factor,
        margin=margin,
        max_slowdown=max_slowdown,
        max_trials=max_trials,
        validation=validation,
        stop_loss=stop_loss,
        log=log,
    )
    out = out or Path("runs") / f"tune-init-{config.stem}"
    tuning.write(result, out, cfg)
    if not quiet:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"tune-init: {result.reason}")
        for col in ("σ", "steps", "trained", "val loss", "val error", "test loss", "test error", ""):
            table.add_column(col, justify="right")
        for i, t in enumerate(result.trials):
            table.add_row(
                f"{t.sigma:.4g}",
                str(t.steps),
                "yes" if t.practical else "too slow",
                f"{t.val_loss:.4g}",
                f"{t.val_error:.3g}",
                f"{t.test_loss:.4g}",
                f"{t.test_error:.3g}",
                "chosen" if i == result.chosen else "",
            )
        Console().print(table)
    typer.echo(
        f"chosen σ = {result.sigma:.4g}; wrote {out}/tune.json, tune-init.png, best.pt, best.toml", err=True
    )

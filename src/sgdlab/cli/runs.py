"""`sgdlab run`, `resume`, `show`, `report` and `export`: one run (or any result directory)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from .app import app
from .common import ProgressReporter, SetOption, fail, user_errors, warn
from .printing import print_dry_run, print_summary

if TYPE_CHECKING:  # the CLI imports torch only when a command needs it
    from ..runner import RunResult


def _total_steps(parts) -> int | None:
    from ..engine import last_step

    return last_step(parts.config.train, parts.sampler.steps_per_epoch)


def _resume_total(run_dir: Path) -> int | None:
    """The step a resumed run stops at by count, from its recorded config and summary (None
    when that is not known: no summary yet, or only a loss threshold stops it)."""
    from ..engine import last_step
    from ..errors import UserError
    from ..store import RunDir

    try:
        rd = RunDir(run_dir)
        per_epoch = rd.read_info().steps_per_epoch
        return last_step(rd.read_config().train, per_epoch) if per_epoch else None
    except (UserError, OSError):
        return None  # `resume` itself says what is wrong


@app.command()
@user_errors
def run(
    config: Path = typer.Argument(..., help="TOML config"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="run directory to create"),
    set_: Optional[list[str]] = SetOption,
    dry_run: bool = typer.Option(
        False,
        "--dry-run",
        help="validate and build; print the resolved config and the parameter count; write nothing",
    ),
    as_json: bool = typer.Option(
        False, "--json", help="with --dry-run: print {config, n_params} as one JSON object (for programs)"
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace an existing run in --out"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress output"),
) -> None:
    """Train the run CONFIG describes and write it to --out."""
    from .. import runner
    from ..config import config_to_toml, to_dict

    parts = runner.prepare(config, tuple(set_ or ()))
    if dry_run:
        if as_json:
            typer.echo(json.dumps({"config": to_dict(parts.config), "n_params": parts.n_params}))
        else:
            print_dry_run(config_to_toml(parts.config), parts.config.model.name, parts.n_params)
        return
    if as_json:
        fail("--json applies to --dry-run (a run's results are in its directory)")
    if out is None:
        fail("--out is required (the run directory to create); use --dry-run to only validate")
    with ProgressReporter(_total_steps(parts), quiet, "train") as progress:
        result = runner.start(parts, out, overwrite=overwrite, progress=progress)
    _report_end(result, quiet)


@app.command()
@user_errors
def resume(
    run_dir: Path = typer.Argument(..., metavar="DIR", help="run directory"),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Continue a killed or interrupted run from its latest saved state."""
    from .. import runner

    with ProgressReporter(_resume_total(run_dir), quiet, "resume") as progress:
        result = runner.resume(run_dir, progress=progress, warn=warn)
    if result.parts is None:
        typer.echo(f"{run_dir}: already {result.status}; nothing to resume", err=True)
        return
    _report_end(result, quiet)


@app.command()
@user_errors
def show(
    run_dir: Path = typer.Argument(..., metavar="DIR"),
    plot: bool = typer.Option(True, help="write DIR/figures/curves.png and each probe's figure"),
) -> None:
    """Summary of a run and PNGs of its loss and error curves (and of its probes' figures)."""
    from ..report.run_page import draw_run_figures
    from ..store import load_run

    run_ = load_run(run_dir)  # a run left `running` by a process that is gone reads `interrupted`
    print_summary(run_.path, run_.info)
    if plot:
        for path in draw_run_figures(run_):
            typer.echo(f"wrote {path}")


@app.command()
@user_errors
def report(
    path: Path = typer.Argument(..., metavar="DIR", help="a run, reproduction, sweep or demo directory"),
) -> None:
    """Write DIR/report.html: claims first, then figures, configs, environment and timings."""
    from ..report.html import write_report

    typer.echo(f"wrote {write_report(path)}")


@app.command()
@user_errors
def export(
    run_dir: Path = typer.Argument(..., metavar="RUN", help="a run (or a directory of runs)"),
    tensorboard: Path = typer.Option(
        ..., "--tensorboard", metavar="DIR", help="write TensorBoard event files under DIR/<run>"
    ),
) -> None:
    """Export a run's metrics for other tools (TensorBoard scalars)."""
    from ..export import export_tensorboard

    for logdir in export_tensorboard(run_dir, tensorboard):
        typer.echo(f"wrote {logdir}")
    typer.echo(f"view with: tensorboard --logdir {tensorboard}")


def _report_end(result: "RunResult", quiet: bool) -> None:
    """The summary of a run that trained (unless quiet); exit code 130 if it was interrupted."""
    if not quiet:
        print_summary(result.path, result.info)
    if result.status == "interrupted":
        raise typer.Exit(130)

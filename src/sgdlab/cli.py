"""The `sgdlab` command. Bad input ends with one line on stderr and exit code 2."""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, NoReturn, Optional

import typer

from .errors import UserError, clip, quote

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="A laboratory for how SGD and its relatives converge on over-parameterized models.",
)

SetOption = typer.Option(
    None, "--set", help="override a config key, e.g. --set train.epochs=5", metavar="KEY=VALUE"
)


def fail(message: str) -> NoReturn:
    """Print `error: MESSAGE` on stderr, as one line of at most about 1,000 characters, and
    exit with code 2 (bad input)."""
    typer.echo(f"error: {clip(message)}", err=True)
    raise typer.Exit(2)


def warn(message: str) -> None:
    """Print `warning: MESSAGE` on stderr, as one line."""
    typer.echo(f"warning: {clip(message)}", err=True)


def user_errors(fn: Callable) -> Callable:
    """Turn UserError, and an OSError about a file (permission denied, a read-only or full
    disk), into the one-line, exit-code-2 form."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            fail(str(exc))
        except OSError as exc:
            if exc.filename is None:
                raise
            fail(f"{exc.filename}: {exc.strerror or exc}")

    return wrapper


class ProgressReporter:
    """A rich progress bar on a terminal; plain lines every few seconds otherwise."""

    def __init__(self, total: int | None, quiet: bool, label: str):
        self.total, self.quiet, self.label = total, quiet, label
        self.rich = not quiet and sys.stderr.isatty()
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        self._last_line = 0.0
        self._t0 = time.monotonic()

    def __enter__(self) -> "ProgressReporter":
        if self.rich:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]}"),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                transient=False,
            )
            bar.start()
            self._task = bar.add_task(self.label, total=self.total, loss="-")
            self._bar = bar
        return self

    def __call__(self, step: int, loss: float) -> None:
        """Report `step` steps done and the last minibatch loss (the engine's Progress callback)."""
        if self.quiet:
            return
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=step, loss=f"{loss:.4g}")
            return
        now = time.monotonic()
        if now - self._last_line < 5.0 and not (self.total and step >= self.total):
            return
        self._last_line = now
        elapsed = now - self._t0
        if self.total:
            eta = elapsed / max(step, 1) * (self.total - step)
            typer.echo(
                f"{self.label}: step {step}/{self.total} ({100 * step / self.total:.0f}%) "
                f"loss {loss:.4g} eta {eta:.0f}s",
                err=True,
            )
        else:
            typer.echo(f"{self.label}: step {step} loss {loss:.4g}", err=True)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


def _total_steps(parts) -> int | None:
    from .engine import last_step

    return last_step(parts.config.train, parts.sampler.steps_per_epoch)


def print_summary(path: Path | None, summary: dict) -> None:
    """A run's summary as a table: status, counts, timings, error and final metrics."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=str(path) if path else "run", show_header=False)
    table.add_row("status", str(summary.get("status")))
    for key in ("steps", "epochs", "stop_reason", "diverged_at", "n_params", "wall_time_s", "error"):
        if summary.get(key) is not None:
            value = summary[key]
            table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    for key, value in (summary.get("final") or {}).items():
        table.add_row(key, "-" if value is None else f"{value:.6g}")
    Console().print(table)


@app.command()
@user_errors
def run(
    config: Path = typer.Argument(..., help="TOML config"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="run directory to create"),
    set_: Optional[list[str]] = SetOption,
    dry_run: bool = typer.Option(
        False,
        "--dry-run",
        help="validate, build, print the resolved config and n_params as JSON; write nothing",
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace an existing run in --out"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress output"),
) -> None:
    """Train the run CONFIG describes and write it to --out."""
    from . import runner
    from .config import to_dict

    parts = runner.prepare(config, tuple(set_ or ()))
    if dry_run:
        typer.echo(json.dumps({"config": to_dict(parts.config), "n_params": parts.n_params}))
        return
    if out is None:
        fail("--out is required (the run directory to create); use --dry-run to only validate")
    with ProgressReporter(_total_steps(parts), quiet, "train") as progress:
        result = runner.start(parts, out, overwrite=overwrite, progress=progress)
    if not quiet:
        print_summary(result.path, result.summary)
    if result.status == "interrupted":
        raise typer.Exit(130)


@app.command()
@user_errors
def resume(
    run_dir: Path = typer.Argument(..., metavar="DIR", help="run directory"),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Continue a killed or interrupted run from its latest saved state."""
    from . import runner

    with ProgressReporter(None, quiet, "resume") as progress:
        result = runner.resume(run_dir, progress=progress, warn=warn)
    if result.parts is None:
        typer.echo(f"{run_dir}: already {result.status}; nothing to resume", err=True)
        return
    if not quiet:
        print_summary(result.path, result.summary)
    if result.status == "interrupted":
        raise typer.Exit(130)


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
    from .build import resolve_device
    from .config import DEVICES
    from .experiments import SCALES, experiments
    from .experiments import reproduce as run_experiment

    experiments.get(name, "experiment")
    if scale not in SCALES:
        fail(f"--scale: {quote(scale)} is not one of {', '.join(SCALES)}")
    if device not in DEVICES:
        fail(f"--device: {quote(device)} is not one of {', '.join(DEVICES)}")
    if plan:  # writes nothing, and estimates a device that is not here from its FLOPs
        print_plan(name, scale, device, only)
        return
    resolve_device(device)  # cuda without a GPU: one line, before anything is written
    out = out or Path("runs") / f"{name}-{scale}"
    log = (lambda message: None) if quiet else (lambda message: typer.echo(f"[{name}] {message}", err=True))
    claims = run_experiment(
        name,
        out,
        scale,
        device,
        log=log,
        only=only,
        progress_factory=lambda label: ProgressReporter(None, quiet, label),
    )
    print_claims(claims, out)
    typer.echo(f"Report: {out / 'report.html'}", err=True)


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
    from . import tune_init as tuning
    from .runner import as_config

    cfg = as_config(config, tuple(set_ or ()))
    log = (
        (lambda message: None) if quiet else (lambda message: typer.echo(f"[tune-init] {message}", err=True))
    )
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


def print_plan(name: str, scale: str, device: str, only: str | None) -> None:
    """`reproduce --plan`: the runs an experiment would train, with measured time estimates."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from .experiments.planning import explain, plan, plan_device, wall_estimate

    device = plan_device(device)  # a plan may be for a device this machine lacks
    _, rows, sims = plan(name, scale, device, only)
    if not rows and not sims:
        fail(f"--only: {quote(only)} selects none of the runs of {name} at scale {scale}")
    table = Table(title=f"{name} at scale {scale} on {device}: {len(rows)} runs")
    for col in ("run", "model", "params", "train", "batch", "stops", "probes", "est. time"):
        table.add_column(col, justify="right" if col in ("params", "train", "batch", "est. time") else "left")
    for r in rows:
        when = f"= {r.same_as}" if r.same_as else _duration(r.seconds)
        table.add_row(
            escape(r.name),
            r.model,
            f"{r.n_params:,}",
            f"{r.n_train:,}",
            str(r.batch_size),
            r.stop,
            ", ".join(r.probes),
            when,
        )
    for sim, seconds in sims.items():
        table.add_row(escape(sim), "(simulation)", "", "", "", "", "", _duration(seconds))
    console = Console(width=max(140, Console().width))
    console.print(table)
    times = [r.seconds for r in rows if r.seconds is not None]
    unbounded = [r.name for r in rows if r.seconds is None]
    sim_total = sum(s for s in sims.values() if s is not None)
    total = sum(times) + sim_total
    wall = wall_estimate(times) + sim_total
    console.print(
        f"total: {_duration(total)} of compute; about {_duration(wall)} wall with "
        f"{min(os.cpu_count() or 1, max(len(times), 1))} parallel runs"
        + (f" (plus {len(unbounded)} runs with no step cap)" if unbounded else "")
        + ". "
        + explain(device)
    )


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unbounded"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def print_claims(claims, out: Path) -> None:
    """One line per claim: verdict, id and its headline number; the evidence stays in
    claims.json (and the report)."""
    from rich.console import Console
    from rich.markup import escape

    colors = {"holds": "green", "fails": "red", "not-applicable": "yellow"}
    console = Console(width=max(100, Console().width), soft_wrap=False)
    width = max((len(c.id) for c in claims), default=10)
    for c in claims:
        key = c.headline or _first_number(c.evidence)
        console.print(
            f"[{colors[c.verdict]}]{c.verdict:>14}[/]  {escape(c.id):<{width}}  {escape(key)}",
            overflow="ellipsis",
            no_wrap=True,
        )
    counts = {v: sum(c.verdict == v for c in claims) for v in colors}
    typer.echo(
        f"{len(claims)} claims: "
        + ", ".join(f"{n} {v}" for v, n in counts.items() if n)
        + f". Evidence: {out}/claims.json; figures: {out}/figures",
        err=True,
    )


def _first_number(evidence: dict) -> str:
    """A claim's first scalar evidence entry, "name=value", when it has no headline."""
    for key, value in evidence.items():
        if isinstance(value, (int, float, str)) and not isinstance(value, bool):
            return f"{key}={_short(value)}"
    return ""


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


KINDS = ("models", "datasets", "optimizers", "probes", "losses", "experiments", "config")


@app.command("list")
@user_errors
def list_(kind: str = typer.Argument("all", help=f"one of {', '.join(KINDS)}, or all")) -> None:
    """What exists: models, datasets, optimizers, probes, losses, config keys."""
    from rich.console import Console
    from rich.table import Table

    from . import datasets, losses, models, optimizers, probes
    from .config import field_help
    from .experiments import experiments
    from .registry import Registry

    tables: dict[str, Registry[Any]] = {
        "models": models,
        "datasets": datasets,
        "optimizers": optimizers,
        "probes": probes,
        "losses": losses,
        "experiments": experiments,
    }
    if kind not in KINDS + ("all",):
        fail(f"list: {quote(kind)} is not one of {', '.join(KINDS)}, all")
    console = Console()
    for name, registry in tables.items():
        if kind in (name, "all"):
            table = Table(title=name)
            table.add_column("name")
            table.add_column("description")
            table.add_column("options")
            for entry in registry:
                opts = ", ".join(f"{k}={v}" for k, v in entry.options.items())
                paper = entry.extra.get("paper")
                text = f"{entry.help} — {paper}" if paper is not None else entry.help
                table.add_row(entry.name, text, opts)
            console.print(table)
    if kind == "config":
        table = Table(title="config keys")
        for col in ("key", "default", "meaning"):
            table.add_column(col)
        for row in field_help():
            table.add_row(*row)
        console.print(table)


@app.command()
@user_errors
def show(
    run_dir: Path = typer.Argument(..., metavar="DIR"),
    plot: bool = typer.Option(True, help="write DIR/figures/curves.png"),
) -> None:
    """Summary of a run and a PNG of its loss and error curves."""
    from .report.curves import plot_curves
    from .store import RunDir, load_run

    run_ = load_run(run_dir)  # a run left `running` by a process that is gone reads `interrupted`
    print_summary(run_.path, run_.summary)
    if plot:
        path = plot_curves(run_, RunDir(run_dir).figures / "curves.png")
        typer.echo(f"wrote {path}")
        if "gamma_dist" in run_.metrics.column_names:
            from .report.gamma import gamma_figure

            path = gamma_figure(RunDir(run_dir).figures / "gamma.png", run_.path.name, {run_.path.name: run_})
            typer.echo(f"wrote {path}")


@app.command()
@user_errors
def report(
    path: Path = typer.Argument(..., metavar="DIR", help="a run, reproduction, sweep or demo directory"),
) -> None:
    """Write DIR/report.html: claims first, then figures, configs, environment and timings."""
    from .report.html import write_report

    typer.echo(f"wrote {write_report(path)}")


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
    from .sweep import run_sweep

    if workers is not None and workers < 1:
        fail(f"--workers: {workers} is not ≥ 1")
    if ray is not None and not ray.strip():  # else "" would quietly mean the local pool
        fail("--ray: an empty address; give auto, local or HOST:PORT")
    if workers is not None and ray:
        fail("--workers applies to the local pool; Ray places the runs on its cluster's CPUs")
    log = (lambda message: None) if quiet else (lambda message: typer.echo(message, err=True))
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
            report=report_,
        )
    except KeyboardInterrupt:
        typer.echo(f"interrupted; the index is in {out}; run the same command again to continue", err=True)
        raise typer.Exit(130) from None
    statuses = result.index["status"].to_pylist()
    counts = {s: statuses.count(s) for s in dict.fromkeys(statuses)}
    typer.echo(
        f"{len(statuses)} runs: "
        + ", ".join(f"{n} {s}" for s, n in counts.items())
        + f". Index: {result.path}/index.parquet"
        + (f"; report: {result.path}/report.html" if report_ else "")
    )


@app.command()
@user_errors
def export(
    run_dir: Path = typer.Argument(..., metavar="RUN", help="a run (or a directory of runs)"),
    tensorboard: Path = typer.Option(
        ..., "--tensorboard", metavar="DIR", help="write TensorBoard event files under DIR/<run>"
    ),
) -> None:
    """Export a run's metrics for other tools (TensorBoard scalars)."""
    from .export import export_tensorboard

    for logdir in export_tensorboard(run_dir, tensorboard):
        typer.echo(f"wrote {logdir}")
    typer.echo(f"view with: tensorboard --logdir {tensorboard}")


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
    from .build import resolve_device
    from .config import DEVICES
    from .experiments.tour import run_tour

    if device not in DEVICES:
        fail(f"--device: {quote(device)} is not one of {', '.join(DEVICES)}")
    resolve_device(device)
    log = (lambda message: None) if quiet else (lambda message: typer.echo(message, err=True))
    t0 = time.perf_counter()
    stages = run_tour(
        out,
        device=device,
        only=only,
        log=log,
        progress_factory=lambda label: ProgressReporter(None, quiet, label),
    )
    failed = [s["experiment"] for s in stages if s["status"] != "completed"]
    typer.echo(
        f"demo: {len(stages)} reproductions in {time.perf_counter() - t0:.0f} s. Open {out / 'report.html'}"
    )
    if failed:
        typer.echo(f"error: {len(failed)} stages stopped: {', '.join(failed)} (see the report)", err=True)
        raise typer.Exit(1)


def main() -> None:
    """The `sgdlab` console script."""
    app()


if __name__ == "__main__":
    main()

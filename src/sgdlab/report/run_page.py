"""A run's report page: its summary and final metrics, its figures (loss and error curves and
each probe's own figure, `Probe.figure`), its resolved config, environment and timings."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable

from ..probes import probes
from ..store import Run, RunDir, load_run
from .page import esc, figures, fmt, pre, table, verdict_badge
from .sections import environment_section, text_of

FACTS = ("seed", "steps", "epochs", "stop_reason", "diverged_at", "n_params", "error")
TIMINGS = ("started_at", "finished_at", "wall_time_s", "replay_wall_time_s", "resumes")


def probe_figure_drawers(run: Run) -> dict[str, Callable[[Run, Path], Path | None]]:
    """The figure drawer of every probe the run used that declares one (`Probe.figure`,
    "module:function"), by probe name."""
    drawers = {}
    for name in run.config.probes.use:
        spec: str | None = getattr(probes.get(name).factory, "figure", None) if name in probes else None
        if spec:
            module, function = spec.split(":")
            drawers[name] = getattr(importlib.import_module(module), function)
    return drawers


def draw_run_figures(run: Run) -> list[Path]:
    """The run's loss and error curves (figures/curves.png) and each probe's own figure
    (figures/<probe>.png), drawn from its metrics; the PNGs written."""
    from .curves import plot_curves

    figs = RunDir(run.path).figures
    made = [plot_curves(run, figs / "curves.png")]
    for name, draw in probe_figure_drawers(run).items():
        path = draw(run, figs / f"{name}.png")
        if path is not None:
            made.append(path)
    return made


def run_figures(path: Path) -> list[Path]:
    """The figures drawn from the run's metrics (`draw_run_figures`, when it has any), plus any
    other PNG in its figures/."""
    run = load_run(path)
    made = draw_run_figures(run) if run.metrics.num_rows else []
    figs = RunDir(path).figures
    others = sorted(p for p in figs.glob("*.png") if p not in made) if figs.is_dir() else []
    return made + others


def run_page(path: Path) -> tuple[str, str]:
    """(title, body) of a run's report: summary and final metrics, figures, the resolved config,
    environment and timings."""
    run_dir = RunDir(path)
    s = run_dir.read_info()
    head = (
        f"<h1>Run {esc(path.name)}</h1><p>{verdict_badge(s.status)} "
        f'<span class="muted">{esc(path.resolve())}</span></p>'
    )
    facts = [[esc(k), esc(fmt(getattr(s, k)))] for k in FACTS if getattr(s, k) is not None]
    summary = "<h2>Summary</h2>" + table(["", ""], facts) if facts else ""
    if s.final:
        summary += table(
            ["final metric", "value"], [[esc(k), esc(fmt(v))] for k, v in s.final.items()], numeric=[1]
        )
    figs = "<h2>Figures</h2>" + figures(run_figures(path), path)
    config = "<h2>Resolved config</h2>" + pre(text_of(run_dir.config_path))
    env = environment_section(
        s.versions,
        s.environment,
        {s.device} if s.device else set(),
        {s.threads} if s.threads is not None else set(),
    )
    timing_rows = [[esc(k), esc(fmt(getattr(s, k)))] for k in TIMINGS if getattr(s, k) is not None]
    timings = "<h2>Timings</h2>" + table(["", ""], timing_rows) if timing_rows else ""
    return f"run {path.name}", head + summary + figs + config + env + timings

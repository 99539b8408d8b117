"""What the commands print: a run's summary, a dry run's resolved config, a reproduction's
claims (one line each) and its plan."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from .common import fail

if TYPE_CHECKING:
    from ..store import RunSummary
    from ..store.claims import Claim

COLORS = {"holds": "green", "fails": "red", "not-applicable": "yellow"}
SUMMARY_KEYS = ("steps", "epochs", "stop_reason", "diverged_at", "n_params", "wall_time_s", "error")


def print_summary(path: Path | None, summary: RunSummary) -> None:
    """A run's summary as a table: status, counts, timings, error and final metrics."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=str(path) if path else "run", show_header=False)
    table.add_row("status", summary.status)
    for key in SUMMARY_KEYS:
        value = getattr(summary, key)
        if value is not None:
            table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    for key, value in summary.final.items():
        table.add_row(key, "-" if value is None else f"{value:.6g}")
    Console().print(table)


def print_dry_run(config_toml: str, model: str, n_params: int) -> None:
    """`run --dry-run`: the resolved config as TOML (every default filled in) and the model's
    size, for a person to read (`--json` prints the same as one JSON object)."""
    typer.echo("# The resolved config: every default filled in. Nothing was trained or written.")
    typer.echo(config_toml.rstrip())
    typer.echo(f"\n# model {model}: {n_params:,} trainable parameters")


def duration(seconds: float | None) -> str:
    """Seconds as "42 s", "3.5 min" or "1.2 h" ("unbounded" for None)."""
    if seconds is None:
        return "unbounded"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def print_plan(name: str, scale: str, device: str, only: str | None) -> None:
    """`reproduce --plan`: the runs an experiment would train, with measured time estimates."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from ..errors import quote
    from ..experiments.planning import plan, wall_estimate
    from ..experiments.step_cost import explain, plan_device

    device = plan_device(device)  # a plan may be for a device this machine lacks
    _, rows, sims = plan(name, scale, device, only)
    if not rows and not sims:
        fail(f"--only: {quote(only)} selects none of the runs of {name} at scale {scale}")
    table = Table(title=f"{name} at scale {scale} on {device}: {len(rows)} runs")
    for col in ("run", "model", "params", "train", "batch", "stops", "probes", "est. time"):
        table.add_column(col, justify="right" if col in ("params", "train", "batch", "est. time") else "left")
    for r in rows:
        when = f"= {r.same_as}" if r.same_as else duration(r.seconds)
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
        table.add_row(escape(sim), "(simulation)", "", "", "", "", "", duration(seconds))
    console = Console(width=max(140, Console().width))
    console.print(table)
    times = [r.seconds for r in rows if r.seconds is not None]
    unbounded = [r.name for r in rows if r.seconds is None]
    sim_total = sum(s for s in sims.values() if s is not None)
    total = sum(times) + sim_total
    wall = wall_estimate(times) + sim_total
    console.print(
        f"total: {duration(total)} of compute; about {duration(wall)} wall with "
        f"{min(os.cpu_count() or 1, max(len(times), 1))} parallel runs"
        + (f" (plus {len(unbounded)} runs with no step cap)" if unbounded else "")
        + ". "
        + explain(device)
    )


def print_claims(claims: list[Claim], out: Path) -> None:
    """One line per claim: verdict, id and its headline number; the evidence stays in
    claims.json (and the report)."""
    from rich.console import Console
    from rich.markup import escape

    from ..store.claims import count_verdicts

    console = Console(width=max(100, Console().width), soft_wrap=False)
    width = max((len(c.id) for c in claims), default=10)
    for c in claims:
        key = c.headline or first_number(c.evidence)
        console.print(
            f"[{COLORS[c.verdict]}]{c.verdict:>14}[/]  {escape(c.id):<{width}}  {escape(key)}",
            overflow="ellipsis",
            no_wrap=True,
        )
    counts = count_verdicts(claims)
    typer.echo(
        f"{len(claims)} claims: "
        + ", ".join(f"{n} {v}" for v, n in counts.items() if n)
        + f". Evidence: {out}/claims.json; figures: {out}/figures",
        err=True,
    )


def first_number(evidence: dict[str, Any]) -> str:
    """A claim's first scalar evidence entry, "name=value", when it has no headline."""
    for key, value in evidence.items():
        if isinstance(value, (int, float, str)) and not isinstance(value, bool):
            return f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
    return ""

"""`sgdlab list`: what exists — models, datasets, optimizers, probes, losses, experiments and
config keys. Fast in a fresh process (`cli.catalog`)."""

from __future__ import annotations

import typer

from ..errors import quote
from . import catalog
from .app import app
from .common import fail, user_errors

KINDS = ("models", "datasets", "optimizers", "probes", "losses", "experiments", "config")


@app.command("list")
@user_errors
def list_(kind: str = typer.Argument("all", help=f"one of {', '.join(KINDS)}, or all")) -> None:
    """What exists: models, datasets, optimizers, probes, losses, config keys."""
    from rich.console import Console
    from rich.table import Table

    if kind not in KINDS + ("all",):
        fail(f"list: {quote(kind)} is not one of {', '.join(KINDS)}, all")
    console = Console()
    for name in catalog.REGISTRIES:
        if kind in (name, "all"):
            table = Table(title=name)
            for column in ("name", "description", "options"):
                table.add_column(column)
            for row in catalog.rows(name):
                table.add_row(*row)
            console.print(table)
    if kind == "config":
        from ..config import field_help

        table = Table(title="config keys")
        for col in ("key", "default", "meaning"):
            table.add_column(col)
        for row in field_help():
            table.add_row(*row)
        console.print(table)

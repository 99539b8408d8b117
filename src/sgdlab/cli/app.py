"""The typer application every command registers on."""

from __future__ import annotations

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="A laboratory for how SGD and its relatives converge on over-parameterized models.",
)

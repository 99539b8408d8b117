"""`python -m sgdlab`: the same command line as `sgdlab` (see `sgdlab.cli`)."""

from .cli import main

main()

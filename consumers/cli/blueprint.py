"""`choreo blueprint` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="blueprint commands.", no_args_is_help=True)

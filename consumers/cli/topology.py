"""`choreo topology` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="topology commands.", no_args_is_help=True)

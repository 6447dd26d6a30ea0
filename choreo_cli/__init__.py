"""The ``choreo`` command line: one Typer app, one module per area."""

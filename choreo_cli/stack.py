"""`choreo stack`: the local PostgreSQL, Pub/Sub emulator and GCS emulator.

Exit codes: 0 success (``status``: every component running), 1 a component is missing or failed,
3 ``status`` found a component not running, or ``up`` left topology drift.
"""

from __future__ import annotations

import importlib
import importlib.util

import typer

from choreo_cli.local_stack import (
    STACK_PROJECT_ID,
    database_url,
    env_lines,
    stack_status,
    start_stack,
    stop_stack,
)
from choreo_cli.topology import EXIT_DRIFT, EXIT_ERROR, print_report
from producers.topology_apply import apply_all
from schemas.errors import ChoreoError
from schemas.settings import StackSettings, StorageSettings
from schemas.topology import build_topology

app = typer.Typer(
    help="The local stack: PostgreSQL, the Pub/Sub emulator and the GCS emulator.",
    no_args_is_help=True,
)

EXIT_NOT_RUNNING = 3


@app.command("up")
def up_command() -> None:
    """Start what is not running, migrate the database and apply the topology (idempotent)."""
    settings = StackSettings()
    try:
        start_stack(settings, typer.echo)
        run_migrations(database_url(settings))
        report = apply_all(
            build_topology(StorageSettings()),
            STACK_PROJECT_ID,
            pubsub_host=f"127.0.0.1:{settings.pubsub_port}",
            storage_host=f"http://127.0.0.1:{settings.gcs_port}",
        )
    except ChoreoError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(EXIT_ERROR) from error
    print_report(report)
    typer.echo('stack is up; load its settings with: eval "$(choreo stack env)"')
    if report.drifted:
        raise typer.Exit(EXIT_DRIFT)


def run_migrations(conninfo: str) -> None:
    """Run ``lifecycle.migrations.migrate(conninfo)`` when that module exists; say so when not."""
    if importlib.util.find_spec("lifecycle.migrations") is None:
        typer.echo("migrations: lifecycle.migrations not found; skipped")
        return
    migrate = getattr(importlib.import_module("lifecycle.migrations"), "migrate", None)
    if not callable(migrate):
        typer.echo("migrations: lifecycle.migrations has no migrate(conninfo); skipped")
        return
    migrate(conninfo)
    typer.echo("migrations: applied")


@app.command("down")
def down_command() -> None:
    """Stop exactly what `up` started (idempotent)."""
    stop_stack(StackSettings(), typer.echo)


@app.command("status")
def status_command() -> None:
    """One line per component; exit 0 when all are running, 3 otherwise."""
    statuses = stack_status(StackSettings())
    for status in statuses:
        pid = str(status.pid) if status.pid else "-"
        typer.echo(f"{status.name:<10} {status.state:<14} pid={pid:<8} {status.address}")
    if not all(status.running for status in statuses):
        raise typer.Exit(EXIT_NOT_RUNNING)


@app.command("env")
def env_command() -> None:
    """Print `export` lines for `eval "$(choreo stack env)"`."""
    for line in env_lines(StackSettings()):
        typer.echo(line)

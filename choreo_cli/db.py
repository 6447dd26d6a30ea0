"""`choreo db` commands: apply the schema migrations and show which are applied or pending.

Both read ``DATABASE_URL`` (and ``DB_CONNECT_TIMEOUT``) through ``DatabaseSettings``. A missing
or unreachable database is a one-line error naming ``DATABASE_URL``, exit status 1. psycopg is
imported inside the commands, so ``choreo --help`` works without the database extras.
"""

from __future__ import annotations

from typing import NoReturn

import typer

from schemas.errors import ChoreoError, ConfigurationError, TransientError
from schemas.settings import DatabaseSettings

app = typer.Typer(
    help="Database schema: apply migrations, list applied and pending ones.",
    no_args_is_help=True,
)


@app.command()
def migrate() -> None:
    """Apply every pending migration in order (safe to run twice, or from two processes)."""
    from lifecycle.migrations import migrate as apply_migrations  # noqa: PLC0415 - see module doc

    settings = _settings()
    try:
        applied = apply_migrations(
            settings.database_url, connect_timeout_s=settings.connect_timeout_s
        )
    except ChoreoError as error:
        _fail(error)
    for migration in applied:
        typer.echo(f"applied {migration.label}")
    if not applied:
        typer.echo("database schema is up to date: nothing to apply")


@app.command()
def status() -> None:
    """List applied migrations (with when) and pending ones, oldest first."""
    from lifecycle.migrations import status as migration_status  # noqa: PLC0415 - see module doc

    settings = _settings()
    try:
        current = migration_status(
            settings.database_url, connect_timeout_s=settings.connect_timeout_s
        )
    except ChoreoError as error:
        _fail(error)
    for row in current.applied:
        typer.echo(f"applied  {row.label}  {row.applied_at.isoformat(timespec='seconds')}")
    for migration in current.pending:
        typer.echo(f"pending  {migration.label}")
    if current.pending:
        typer.echo(f"{len(current.pending)} pending: run `choreo db migrate`")
    else:
        typer.echo("database schema is up to date")


def _settings() -> DatabaseSettings:
    settings = DatabaseSettings()  # an invalid value is one line from choreo_cli.errors
    if not settings.database_url:
        typer.echo(
            "error: DATABASE_URL is not set: point it at PostgreSQL, e.g. "
            "postgresql://choreo:choreo@127.0.0.1:5432/choreo (or load the local stack's "
            'settings with `eval "$(choreo stack env)"`)',
            err=True,
        )
        raise typer.Exit(1)
    return settings


def _fail(error: ChoreoError) -> NoReturn:
    # Unreachable or malformed means the setting is the first thing to check; a migration
    # history problem is about the files, and its message says so itself.
    hint = " (check DATABASE_URL)" if isinstance(error, ConfigurationError | TransientError) else ""
    typer.echo(f"error: {error}{hint}", err=True)
    raise typer.Exit(1) from error

"""`choreo tasks reap`: fail tasks stuck in a non-terminal state whose worker was lost.

Reads ``DATABASE_URL`` and the ``REAPER_*`` deadlines (``.env.example``). The same reaper runs
every ``REAPER_INTERVAL`` inside each consumer process and ``choreo relay``; this command is one
pass, for operators and for a scheduler (the Cloud Run reaper job in ``infra/terraform``).
"""

from __future__ import annotations

from typing import Annotated, NoReturn

import typer

from schemas.errors import ChoreoError

app = typer.Typer(help="Task maintenance: fail tasks whose worker was lost.", no_args_is_help=True)


@app.command()
def reap(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List the stale tasks; change nothing.")
    ] = False,
    publish: Annotated[
        bool,
        typer.Option(
            "--publish", help="Then run one outbox relay pass, so task.failed goes out at once."
        ),
    ] = False,
) -> None:
    """Fail every task past its state's deadline (REAPER_*_TIMEOUT) and print each one."""
    from producers.ops import run_reap  # noqa: PLC0415 - keep --help fast
    from schemas.logs import configure_logging  # noqa: PLC0415
    from schemas.settings import CoreSettings  # noqa: PLC0415

    core = CoreSettings()
    configure_logging(core.log_level, json_lines=core.log_json)
    try:
        run_reap(publish=publish, dry_run=dry_run)  # the reaper job's own pass
    except ChoreoError as error:
        _fail(str(error))


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)

"""`choreo tasks reap`: fail tasks stuck in a non-terminal state whose worker was lost.

Reads ``DATABASE_URL`` and the ``REAPER_*`` deadlines (``.env.example``). The same reaper runs
every ``REAPER_INTERVAL`` inside each consumer process and ``choreo relay``; this command is one
pass, for operators and for a scheduler (the Cloud Run reaper job in ``infra/terraform``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from schemas.errors import ChoreoError

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

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
    from lifecycle.database import open_pool  # noqa: PLC0415 - keep --help fast
    from lifecycle.task_reaper import TaskReaper  # noqa: PLC0415
    from schemas.logs import configure_logging  # noqa: PLC0415
    from schemas.settings import CoreSettings, DatabaseSettings, ReaperSettings  # noqa: PLC0415

    core = CoreSettings()
    configure_logging(core.log_level, json_lines=core.log_json)
    try:
        pool = open_pool(DatabaseSettings(), name="choreo-reaper")
    except ChoreoError as error:
        _fail(str(error))
    try:
        reaper = TaskReaper.from_settings(pool, ReaperSettings())
        stale = reaper.find_stale() if dry_run else reaper.reap()
        verb = "would fail" if dry_run else "failed"
        for task in stale:
            typer.echo(
                f"{verb} {task.task_id}  {task.state} -> failed ({task.stage}): {task.reason}"
            )
        typer.echo(f"{len(stale)} task(s) {verb}" if stale else "no stale tasks")
        if publish and stale and not dry_run:
            _relay_once(pool)
    finally:
        pool.close()


def _relay_once(pool: ConnectionPool) -> None:
    from producers.outbox_relay import relay_once  # noqa: PLC0415
    from producers.pubsub_publisher import build_pubsub_publisher  # noqa: PLC0415
    from schemas.settings import PublisherSettings, PubSubSettings  # noqa: PLC0415

    publisher = build_pubsub_publisher(PubSubSettings(), PublisherSettings())
    try:
        done = relay_once(pool, publisher)
    finally:
        publisher.close()
    typer.echo(f"published {done.published}, failed {done.failed}, deferred {done.deferred}")


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)

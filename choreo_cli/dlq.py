"""`choreo dlq`: inspect, replay and purge a dead-letter subscription (docs/RUNBOOK_DLQ.md).

``list`` and ``show`` never consume: what they pull is released at once. ``replay`` and ``purge``
take the subscription's advisory lock and write one ``dlq_replay_audit`` row per message they
touch, so they need ``DATABASE_URL``. Pub/Sub is reached through ``PUBSUB_EMULATOR_HOST`` when set
and ``PUBSUB_PROJECT_ID``; this module is the composition root for all of it.
"""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any, NoReturn

import typer

from schemas.errors import ChoreoError, InvalidInput

app = typer.Typer(
    help="Dead-letter subscriptions: list, show, replay to the original topic, purge.",
    no_args_is_help=True,
)

EXIT_ERROR = 1
EXIT_BUSY = 3
EXIT_REFUSED = 4

Subscription = Annotated[
    str, typer.Argument(help="Dead-letter subscription, e.g. choreography-requests-dead-letter-sub")
]
Project = Annotated[str | None, typer.Option(help="Pub/Sub project (default PUBSUB_PROJECT_ID).")]
EventType = Annotated[str | None, typer.Option("--type", help="Only this CloudEvent type.")]
TaskId = Annotated[str | None, typer.Option("--task-id", help="Only this task.")]
Since = Annotated[str | None, typer.Option(help="Published at or after (ISO 8601 with offset).")]
Until = Annotated[str | None, typer.Option(help="Published at or before (ISO 8601 with offset).")]
Attrs = Annotated[list[str] | None, typer.Option("--attr", help="Only with attribute key=value.")]
Limit = Annotated[int | None, typer.Option(min=1, help="At most this many messages.")]
Actor = Annotated[str | None, typer.Option(help="Who is acting, for the audit (default $USER).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


@app.command("list")
def list_command(
    subscription: Subscription,
    *,
    project: Project = None,
    event_type: EventType = None,
    task_id: TaskId = None,
    since: Since = None,
    until: Until = None,
    attr: Attrs = None,
    limit: Limit = None,
    as_json: AsJson = False,
) -> None:
    """List dead letters without consuming them (they are released at once)."""
    from producers.dlq import DeadLetterQueue  # noqa: PLC0415 - keep `choreo --help` fast

    selection = _selection(event_type, task_id, since, until, attr)
    with (
        _subscriber(project) as (subscriber, project_id),
        _errors(),
        DeadLetterQueue(subscriber, project_id, subscription) as queue,
    ):
        messages = queue.pull(selection, limit=limit)
        _warn_backoff(queue)
    summaries = [m.summary() for m in messages]
    if as_json:
        typer.echo(json.dumps(summaries, indent=2))
        return
    for s in summaries:
        typer.echo(
            f"{s['message_id']}  {s['publish_time']}  {s['event_type'] or '?'}  "
            f"task={s['task_id'] or '-'}  from={s['source_subscription'] or '-'}  "
            f"deliveries={s['delivery_count'] or '-'}  replays={s['replay_count']}"
        )
    typer.echo(f"{len(summaries)} message(s) in {subscription} (left in place)")


@app.command()
def show(
    subscription: Subscription,
    message_id: Annotated[str, typer.Argument(help="The Pub/Sub message id (from `list`).")],
    project: Project = None,
    as_json: AsJson = False,
) -> None:
    """Print one dead letter in full, data pretty-printed, without consuming it."""
    from producers.dlq import DeadLetterFilter, DeadLetterQueue, pretty_data  # noqa: PLC0415

    with (
        _subscriber(project) as (subscriber, project_id),
        _errors(),
        DeadLetterQueue(subscriber, project_id, subscription) as queue,
    ):
        found = [m for m in queue.pull(DeadLetterFilter()) if m.message_id == message_id]
        _warn_backoff(queue)
    if not found:
        _fail(f"no message {message_id} in {subscription} (it may be leased by a running replay)")
    message = found[0]
    if as_json:
        typer.echo(json.dumps({**message.summary(), "data": pretty_data(message.data)}, indent=2))
        return
    for key, value in message.summary().items():
        if key != "attributes":
            typer.echo(f"{key}: {value}")
    typer.echo("attributes:")
    for key, value in message.attributes.items():
        typer.echo(f"  {key}: {value}")
    typer.echo("data:")
    typer.echo(pretty_data(message.data))


@app.command("replay")
def replay_command(
    subscription: Subscription,
    *,
    to: Annotated[
        str | None, typer.Option(help="Topic to replay to (default: the source).")
    ] = None,
    project: Project = None,
    event_type: EventType = None,
    task_id: TaskId = None,
    since: Since = None,
    until: Until = None,
    attr: Attrs = None,
    limit: Limit = None,
    rate: Annotated[
        float | None, typer.Option(help="Messages per second (default DLQ_REPLAY_RATE).")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Say what would happen; change nothing.")] = False,
    actor: Actor = None,
    as_json: AsJson = False,
) -> None:
    """Republish dead letters to their original topic, then acknowledge them.

    Exits 4 when any message was refused (the replay cap, or no topic to replay to), 1 when a
    publish failed.
    """
    from producers.dlq import DeadLetterQueue  # noqa: PLC0415
    from producers.dlq_replay import ReplayOptions, replay  # noqa: PLC0415
    from producers.pubsub_publisher import build_pubsub_publisher  # noqa: PLC0415
    from schemas.settings import DeadLetterSettings, PubSubSettings  # noqa: PLC0415
    from schemas.topology import build_topology  # noqa: PLC0415

    settings = DeadLetterSettings()
    with _errors():
        options = ReplayOptions(
            actor=_actor(actor),
            cap=settings.replay_cap,
            to_topic=to,
            selection=_selection(event_type, task_id, since, until, attr),
            limit=limit,
            rate_per_s=rate if rate is not None else settings.replay_rate,
            dry_run=dry_run,
        )
    with _subscriber(project) as (subscriber, project_id), _database() as conn, _errors():
        pubsub = PubSubSettings().model_copy(update={"project_id": project_id})
        publisher = build_pubsub_publisher(pubsub)
        try:
            queue = DeadLetterQueue(subscriber, project_id, subscription)
            report = replay(conn, queue, publisher, build_topology(), options)
            _warn_backoff(queue)
        finally:
            publisher.close()
    _print_report(report, as_json)
    if report.failed:
        raise typer.Exit(EXIT_ERROR)
    if report.refused:
        typer.echo(
            f"{report.refused} of {len(report.touched)} message(s) refused and left in place: "
            "inspect them with `choreo dlq show`, then replay with --to TOPIC or purge",
            err=True,
        )
        raise typer.Exit(EXIT_REFUSED)


@app.command("purge")
def purge_command(
    subscription: Subscription,
    *,
    project: Project = None,
    event_type: EventType = None,
    task_id: TaskId = None,
    since: Since = None,
    until: Until = None,
    attr: Attrs = None,
    limit: Limit = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    actor: Actor = None,
    as_json: AsJson = False,
) -> None:
    """Delete dead letters for good (asks you to type the subscription name unless --yes)."""
    from producers.dlq import DeadLetterQueue  # noqa: PLC0415
    from producers.dlq_replay import purge  # noqa: PLC0415

    selection = _selection(event_type, task_id, since, until, attr)
    who = _actor(actor)
    if not yes:
        typed = typer.prompt(f"This deletes messages for good. Type {subscription!r} to confirm")
        if typed.strip() != subscription:
            _fail("confirmation did not match the subscription name: nothing purged")
    with _subscriber(project) as (subscriber, project_id), _database() as conn, _errors():
        queue = DeadLetterQueue(subscriber, project_id, subscription)
        report = purge(conn, queue, actor=who, selection=selection, limit=limit)
    _print_report(report, as_json)


@app.command()
def audit(
    subscription: Annotated[str | None, typer.Argument(help="Only this subscription.")] = None,
    project: Project = None,
    as_json: AsJson = False,
) -> None:
    """Show the replay/purge audit rows, oldest first."""
    from producers.dlq_replay import audit_rows  # noqa: PLC0415
    from schemas.settings import PubSubSettings  # noqa: PLC0415
    from schemas.topology import subscription_path  # noqa: PLC0415

    project_id = project or PubSubSettings().project_id
    path = None if subscription is None else subscription_path(project_id, subscription)
    with _database() as conn, _errors():
        rows = audit_rows(conn, subscription_path=path)
    if as_json:
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    for row in rows:
        typer.echo(
            f"{row['at'].isoformat(timespec='seconds')}  {row['actor']}  {row['action']:<8}  "
            f"{row['message_id']}  -> {row['to_topic'] or '-'}  {row['outcome']}"
        )


def _warn_backoff(queue: Any) -> None:
    from producers.dlq import release_backoff_s  # noqa: PLC0415

    delay = release_backoff_s(queue.subscriber, queue.path)
    if delay > 0:
        typer.echo(
            f"note: {queue.subscription} has a retry policy: the messages this command looked at "
            f"are redelivered only after {delay:g} s or more (doubling per look)",
            err=True,
        )


def _print_report(report: Any, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps([vars(t) for t in report.touched], indent=2))
        return
    for t in report.touched:
        target = f" -> {t.to_topic}" if t.to_topic else ""
        new_id = f" (new message {t.new_message_id})" if t.new_message_id else ""
        typer.echo(f"{t.action:<8} {t.message_id}{target}: {t.outcome}{new_id}")
    counts = {a: report.count(a) for a in ("replay", "dry-run", "refused", "purge")}
    typer.echo(", ".join(f"{n} {a}" for a, n in counts.items() if n) or "no message matched")


def _selection(
    event_type: str | None,
    task_id: str | None,
    since: str | None,
    until: str | None,
    attr: list[str] | None,
) -> Any:
    from producers.dlq import DeadLetterFilter, parse_attribute_filters  # noqa: PLC0415

    with _errors():
        return DeadLetterFilter(
            event_type=event_type,
            task_id=task_id,
            since=_time("--since", since),
            until=_time("--until", until),
            attributes=parse_attribute_filters(attr or []),
        )


def _time(option: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{option} {value!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise InvalidInput(f"{option} {value!r} needs a time zone offset (e.g. Z or +02:00)")
    return parsed


def _actor(actor: str | None) -> str:
    who = actor or os.environ.get("USER") or getpass.getuser()
    if not who.strip():
        _fail("say who you are with --actor (USER is not set)")
    return who


@contextmanager
def _subscriber(project: str | None) -> Iterator[tuple[Any, str]]:
    from producers.topology_apply import pubsub_admin_clients  # noqa: PLC0415
    from schemas.settings import PubSubSettings  # noqa: PLC0415

    settings = PubSubSettings()
    publisher, subscriber = pubsub_admin_clients(settings.emulator_host)
    try:
        yield subscriber, project or settings.project_id
    finally:
        subscriber.close()
        publisher.transport.close()


@contextmanager
def _database() -> Iterator[Any]:
    from lifecycle.database import connect  # noqa: PLC0415
    from schemas.settings import DatabaseSettings  # noqa: PLC0415

    settings = DatabaseSettings()
    if not settings.database_url:
        _fail("DATABASE_URL is not set: replay and purge record an audit row per message")
    with _errors():
        conn = connect(settings.database_url, timeout_s=settings.connect_timeout_s, autocommit=True)
    try:
        yield conn
    finally:
        conn.close()


@contextmanager
def _errors() -> Iterator[None]:
    from google.api_core import exceptions as gexc  # noqa: PLC0415

    from producers.dlq_replay import ReplayInProgress  # noqa: PLC0415

    try:
        yield
    except ReplayInProgress as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(EXIT_BUSY) from None
    except (ChoreoError, gexc.GoogleAPICallError) as error:
        _fail(str(error))


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_ERROR)

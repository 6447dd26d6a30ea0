"""``choreo rejected``: the poison messages receivers acknowledged and recorded.

A delivery that can never be handled (it does not decode, or it is over the size limit) is
acknowledged so the transport stops retrying it, and recorded in ``rejected_messages``
(:mod:`lifecycle.rejections`). This lists them, newest first, with the reason and the start of
the body, so an operator can tell a broken sender from an attack.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, NoReturn

import typer

from schemas.errors import ChoreoError

EXIT_ERROR = 1


def rejected(
    receiver: Annotated[
        str | None,
        typer.Option(help="Only this receiver (a consumer name, or 'producer')."),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(help="Only messages seen at or after this ISO 8601 time (with an offset)."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many rows.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """List rejected (poison) messages: receiver, transport, deliveries, reason, body excerpt."""
    import psycopg  # noqa: PLC0415

    from lifecycle.database import connect  # noqa: PLC0415
    from lifecycle.rejections import list_rejections  # noqa: PLC0415
    from schemas.settings import DatabaseSettings  # noqa: PLC0415

    settings = DatabaseSettings()
    if not settings.database_url:
        _fail("DATABASE_URL is not set: rejected messages live in the database")
    after = _time(since)
    try:
        conn = connect(settings.database_url, timeout_s=settings.connect_timeout_s, autocommit=True)
    except ChoreoError as error:
        _fail(str(error))
    try:
        rows = list_rejections(conn, receiver=receiver, since=after, limit=limit)
    except psycopg.errors.UndefinedTable:
        _fail("the database has no rejected_messages table: run `choreo db migrate`")
    except psycopg.Error as error:
        _fail(f"cannot list rejected messages: {' '.join(str(error).split())}")
    finally:
        conn.close()
    for row in rows:
        if as_json:
            typer.echo(json.dumps({**vars(row), **_times(row)}, ensure_ascii=False))
            continue
        typer.echo(
            f"{row.last_seen_at:%Y-%m-%d %H:%M:%S%z}  {row.receiver}  {row.transport}  "
            f"x{row.deliveries}  {row.body_bytes} B  {row.reason}"
        )
        if row.excerpt:
            typer.echo(f"    {row.excerpt[:160]}")
    if not rows and not as_json:
        typer.echo("no rejected messages", err=True)


def _times(row: object) -> dict[str, str]:
    return {name: getattr(row, name).isoformat() for name in ("first_seen_at", "last_seen_at")}


def _time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        _fail(f"--since {value!r} is not an ISO 8601 time")
    if parsed.tzinfo is None:
        _fail(f"--since {value!r} needs a time zone offset (e.g. Z or +02:00)")
    return parsed


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_ERROR)

"""The transactional outbox: write an event in the caller's transaction, publish it later.

A handler that changes state and announces it calls :func:`add_to_outbox` on the connection that
holds its transaction; if the transaction rolls back the event is gone too, and if it commits the
relay (:mod:`producers.outbox_relay`) publishes it, at least once. The row holds the exact bytes
and attributes of the CloudEvents binary-mode message, so publishing needs no schema code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from schemas.errors import TransientError
from schemas.event_codec import to_pubsub
from schemas.event_envelope import ChoreoEvent


@dataclass(frozen=True)
class OutboxRow:
    """An ``outbox`` row: what to publish, and how publishing it went so far."""

    id: int
    event_id: str
    topic: str
    ordering_key: str
    attributes: dict[str, str]
    data: bytes
    created_at: datetime
    published_at: datetime | None
    attempts: int
    last_error: str | None


def add_to_outbox(conn: psycopg.Connection, event: ChoreoEvent) -> int:
    """Insert ``event`` into the outbox in the caller's transaction; the row id.

    Idempotent on the CloudEvent id: adding the same event again returns the existing row's id,
    so a handler retried after a partial failure cannot announce one event twice.
    """
    data, attributes = to_pubsub(event)
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            "INSERT INTO outbox (event_id, topic, ordering_key, attributes, data) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (event_id) DO NOTHING RETURNING id",
            (event.id, event.topic, event.ordering_key, Jsonb(attributes), data),
        )
        inserted = cur.fetchone()
        if inserted is not None:
            return int(inserted[0])
        cur.execute("SELECT id FROM outbox WHERE event_id = %s", (event.id,))
        existing = cur.fetchone()
    if existing is None:
        # The conflicting row was deleted between the two statements; trying again re-inserts.
        raise TransientError(f"outbox row for event {event.id} was deleted while adding it")
    return int(existing[0])


def outbox_rows(conn: psycopg.Connection, *, unpublished_only: bool = False) -> list[OutboxRow]:
    """The outbox rows in id order (for the relay's callers, tests and operators)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT id, event_id, topic, ordering_key, attributes, data, created_at, "
            "published_at, attempts, last_error FROM outbox "
            "WHERE NOT %s OR published_at IS NULL ORDER BY id",
            (unpublished_only,),
        )
        return [OutboxRow(**{**row, "data": bytes(row["data"])}) for row in cur.fetchall()]

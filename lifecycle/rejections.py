"""Poison messages: deliveries that can never be handled, acknowledged and kept for operators.

A body that does not decode (or is over the size limit) fails the same way on every retry, so
redelivering it only fills the dead-letter topic, where no replay can help. Receivers therefore
acknowledge it (a 2xx on push and Eventarc, an ack on pull), log it, and record it here, in the
``rejected_messages`` table; ``choreo rejected`` lists the rows. The same bytes delivered again to
the same receiver bump ``deliveries`` on the existing row.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from schemas.text import visible

EXCERPT_BYTES = 2048
"""How much of a rejected body is kept (as escaped text) for an operator to read."""
_HEADER_PREFIXES = ("ce-", "content-", "x-goog-", "x-cloud")
_MAX_HEADER_CHARS = 512
_MAX_HEADERS = 32


@dataclass(frozen=True)
class Rejection:
    """One rejected message as received: who got it, over what, why, and its bytes."""

    receiver: str
    transport: str
    reason: str
    body: bytes
    headers: Mapping[str, str]
    """Pub/Sub attributes, or HTTP headers already passed through :func:`kept_headers`."""
    message_id: str | None = None
    body_bytes: int | None = None
    """The size when only part of the body was read (an oversize body); else ``len(body)``."""


@dataclass(frozen=True)
class RejectedMessage:
    """A ``rejected_messages`` row."""

    id: int
    receiver: str
    transport: str
    body_sha256: str
    body_bytes: int
    reason: str
    excerpt: str
    headers: dict[str, str]
    message_id: str | None
    first_seen_at: datetime
    last_seen_at: datetime
    deliveries: int


def record_rejection(conn: psycopg.Connection[Any], rejection: Rejection) -> int:
    """Insert the rejection, or count one more delivery of the same bytes; the row id."""
    row = conn.execute(
        """
        INSERT INTO rejected_messages
            (receiver, transport, body_sha256, body_bytes, reason, excerpt, headers, message_id)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
        ON CONFLICT (receiver, body_sha256) DO UPDATE
           SET deliveries = rejected_messages.deliveries + 1,
               last_seen_at = now(),
               reason = EXCLUDED.reason,
               message_id = COALESCE(EXCLUDED.message_id, rejected_messages.message_id)
        RETURNING id
        """,
        (
            rejection.receiver,
            rejection.transport,
            hashlib.sha256(rejection.body).hexdigest(),
            len(rejection.body) if rejection.body_bytes is None else rejection.body_bytes,
            visible(rejection.reason.strip() or "rejected")[:2000],
            excerpt(rejection.body),
            Jsonb(_bounded(rejection.headers)),
            None if rejection.message_id is None else visible(rejection.message_id)[:256],
        ),
    ).fetchone()
    assert row is not None  # noqa: S101 - INSERT ... RETURNING always returns the row
    return int(row[0])


def list_rejections(
    conn: psycopg.Connection[Any],
    *,
    receiver: str | None = None,
    since: datetime | None = None,
    limit: int = 50,
) -> list[RejectedMessage]:
    """The most recently seen rejections first, optionally for one receiver or since a time."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            """
            SELECT * FROM rejected_messages
             WHERE (%(receiver)s::text IS NULL OR receiver = %(receiver)s)
               AND (%(since)s::timestamptz IS NULL OR last_seen_at >= %(since)s)
             ORDER BY last_seen_at DESC, id DESC
             LIMIT %(limit)s
            """,
            {"receiver": receiver, "since": since, "limit": limit},
        ).fetchall()
    return [RejectedMessage(**row) for row in rows]


def excerpt(body: bytes) -> str:
    """The first :data:`EXCERPT_BYTES` of ``body`` as text an operator can read safely."""
    text = body[:EXCERPT_BYTES].decode("utf-8", "backslashreplace")
    return visible(text) + ("..." if len(body) > EXCERPT_BYTES else "")


def kept_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The HTTP headers worth keeping: CloudEvent, content, Google ones; never credentials."""
    return {
        name.lower(): value
        for name, value in headers.items()
        if name.lower().startswith(_HEADER_PREFIXES) or name.lower() == "user-agent"
    }


def _bounded(headers: Mapping[str, str]) -> dict[str, str]:
    kept: dict[str, str] = {}
    for name, value in list(headers.items())[:_MAX_HEADERS]:
        kept[visible(str(name))[:64]] = visible(str(value))[:_MAX_HEADER_CHARS]
    return kept

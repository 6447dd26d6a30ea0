"""Run an effect once per (consumer, CloudEvent id), committed with its dedupe record.

The ``processed_events`` row is inserted first, with ``ON CONFLICT DO NOTHING``: if it already
exists the event was handled and the effect is skipped. A concurrent delivery of the same event
waits on the first one's uncommitted row and then sees the conflict. If the effect raises, the
transaction (dedupe row included) rolls back, so a retry runs the effect again.
"""

from __future__ import annotations

from collections.abc import Callable

import psycopg
from psycopg_pool import ConnectionPool

Effect = Callable[[psycopg.Connection], None]


def claim_event(conn: psycopg.Connection, consumer: str, event_id: str) -> bool:
    """Insert the dedupe record in ``conn``'s transaction; False when it was already there."""
    row = conn.execute(
        "INSERT INTO processed_events (consumer, event_id) VALUES (%s, %s) "
        "ON CONFLICT DO NOTHING RETURNING event_id",
        (consumer, event_id),
    ).fetchone()
    return row is not None


def run_once(pool: ConnectionPool, consumer: str, event_id: str, effect: Effect) -> bool:
    """Run ``effect`` in one transaction with the dedupe record; False for a duplicate."""
    with pool.connection() as conn, conn.transaction():
        if not claim_event(conn, consumer, event_id):
            return False
        effect(conn)
    return True


def was_processed(conn: psycopg.Connection, consumer: str, event_id: str) -> bool:
    """True when ``consumer`` has committed the handling of ``event_id``."""
    row = conn.execute(
        "SELECT 1 FROM processed_events WHERE consumer = %s AND event_id = %s",
        (consumer, event_id),
    ).fetchone()
    return row is not None

"""The job and the outbox relays never both publish one outbox row."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from job.task_status import OutboxMessage, PostgresTaskStatus, RowNotPublished

pytestmark = pytest.mark.integration


def _row(conn: psycopg.Connection[Any], event_id: str) -> OutboxMessage:
    row = conn.execute(
        "INSERT INTO outbox (event_id, topic, ordering_key, attributes, data) "
        "VALUES (%s, 'video-done', 't-1', '{}', %s) RETURNING id",
        (event_id, b"{}"),
    ).fetchone()
    assert row is not None
    return OutboxMessage(int(row[0]), "video-done", "t-1", {}, b"{}")


def _published_at(conn: psycopg.Connection[Any], row_id: int) -> Any:
    found = conn.execute("SELECT published_at FROM outbox WHERE id = %s", (row_id,)).fetchone()
    assert found is not None
    return found[0]


def test_job_publishes_a_free_row_once_and_marks_it(database_url: str) -> None:
    """An unpublished, unlocked row is published by the job and then never again."""
    calls: list[int] = []
    with ConnectionPool(database_url, min_size=1, max_size=2) as pool:
        with pool.connection() as conn:
            message = _row(conn, "e-free")
        status = PostgresTaskStatus(pool)
        first = status.publish_once(message, lambda m: calls.append(m.id) or "msg-1")
        second = status.publish_once(message, lambda m: calls.append(m.id) or "msg-2")
        with pool.connection() as conn:
            assert _published_at(conn, message.id) is not None
    assert (first, second, calls) == ("msg-1", None, [message.id])


def test_job_leaves_a_row_a_relay_is_publishing(database_url: str) -> None:
    """While a relay holds the row's lock the job does not publish it (the relay will)."""
    calls: list[int] = []
    with ConnectionPool(database_url, min_size=1, max_size=2) as pool:
        with pool.connection() as conn:
            message = _row(conn, "e-locked")
        with psycopg.connect(database_url) as relay, relay.transaction():
            relay.execute("SELECT id FROM outbox WHERE id = %s FOR UPDATE", (message.id,))
            result = PostgresTaskStatus(pool).publish_once(
                message, lambda m: calls.append(m.id) or "msg"
            )
        assert result is None
        assert calls == []


def test_failed_publish_is_counted_and_left_for_the_relay(database_url: str) -> None:
    """A publisher error is recorded on the row, which stays unpublished for the relay."""

    def refuse(_message: OutboxMessage) -> str:
        raise RuntimeError("pubsub down")

    with ConnectionPool(database_url, min_size=1, max_size=2) as pool:
        with pool.connection() as conn:
            message = _row(conn, "e-fail")
        with pytest.raises(RowNotPublished, match="pubsub down"):
            PostgresTaskStatus(pool).publish_once(message, refuse)
        with pool.connection() as conn:
            row = conn.execute(
                "SELECT published_at, attempts, last_error FROM outbox WHERE id = %s",
                (message.id,),
            ).fetchone()
    assert row is not None
    assert row[0] is None and row[1] == 1 and "pubsub down" in row[2]

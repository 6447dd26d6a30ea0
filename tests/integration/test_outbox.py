"""The transactional outbox and its relay, on PostgreSQL and both message buses."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, datetime

import pytest
from psycopg_pool import ConnectionPool

from lifecycle.outbox import add_to_outbox, outbox_rows
from producers.outbox_relay import OutboxRelay
from schemas.event_codec import from_pubsub
from schemas.event_envelope import ChoreoEvent, new_event
from schemas.events import TaskFailed
from tests.fakes import RecordingPublisher
from tests.fixtures.messaging import BusDriver, pull_until

pytestmark = pytest.mark.integration


def _failed(task_id: str, reason: str = "boom") -> ChoreoEvent:
    payload = TaskFailed(
        task_id=task_id,
        stage="render",
        reason=reason,
        error_code="render-failed",
        failed_at=datetime.now(UTC),
    )
    return new_event(payload, source="//test")


_CRASHING_WRITER = """
import os, signal, sys, psycopg
from lifecycle.outbox import add_to_outbox
from schemas.event_envelope import ChoreoEvent
event = ChoreoEvent.model_validate_json(sys.argv[2])
with psycopg.connect(sys.argv[1]) as conn:
    add_to_outbox(conn, event)
    conn.commit()
    os.kill(os.getpid(), signal.SIGKILL)  # dies after the commit, before any publish
"""


def test_row_committed_by_a_crashed_process_is_published_on_restart(
    database_url: str, pool: ConnectionPool, choreo_bus: BusDriver
) -> None:
    """A writer killed after commit leaves its event unpublished; the next relay publishes it."""
    event = _failed("t-crash")
    writer = subprocess.run(
        [sys.executable, "-c", _CRASHING_WRITER, database_url, event.model_dump_json()],
        check=False,
        timeout=60,
        capture_output=True,
    )
    assert writer.returncode == -9, writer.stderr.decode()
    with pool.connection() as conn:
        [row] = outbox_rows(conn, unpublished_only=True)
    run = OutboxRelay(pool, choreo_bus.publisher).run_once()
    [got] = pull_until(choreo_bus, "status-recorder")
    assert (run.published, run.failed) == (1, 0)
    assert from_pubsub(got.data, got.attributes).event == event
    assert got.ordering_key == "t-crash"
    with pool.connection() as conn:
        [after] = outbox_rows(conn)
    assert (after.id, after.attempts, after.last_error) == (row.id, 1, None)
    assert after.published_at is not None
    assert OutboxRelay(pool, choreo_bus.publisher).run_once().published == 0


def test_rolled_back_transaction_leaves_no_event(pool: ConnectionPool) -> None:
    """An event added in a transaction that rolls back is never in the outbox."""
    with pool.connection() as conn:
        with pytest.raises(RuntimeError), conn.transaction():
            add_to_outbox(conn, _failed("t-rollback"))
            raise RuntimeError("the handler's effect failed")
        assert outbox_rows(conn) == []


def test_adding_one_event_twice_keeps_one_row(pool: ConnectionPool) -> None:
    """add_to_outbox is idempotent on the CloudEvent id."""
    event = _failed("t-twice")
    with pool.connection() as conn:
        first = add_to_outbox(conn, event)
        second = add_to_outbox(conn, event)
        assert first == second
        assert len(outbox_rows(conn)) == 1


def test_failed_publish_holds_back_its_key_only(pool: ConnectionPool) -> None:
    """A failing row stops later rows of its key, records the error, and others go out."""
    a1, a2, a3 = _failed("key-a", "a1"), _failed("key-a", "a2"), _failed("key-a", "a3")
    b1 = _failed("key-b", "b1")
    with pool.connection() as conn:
        for event in (a1, a2, b1, a3):
            add_to_outbox(conn, event)
    flaky = RecordingPublisher(fail_when=lambda attributes: attributes["ce-id"] == a2.id)
    run = OutboxRelay(pool, flaky).run_once()
    assert (run.published, run.failed, run.deferred) == (2, 1, 1)
    assert [p[2]["ce-id"] for p in flaky.published] == [a1.id, b1.id]
    with pool.connection() as conn:
        by_event = {row.event_id: row for row in outbox_rows(conn)}
    assert by_event[a2.id].attempts == 1
    assert by_event[a2.id].last_error == f"PublishFailed: refused {a2.id}"
    assert (by_event[a3.id].attempts, by_event[a3.id].published_at) == (0, None)
    # While a2 waits out its retry delay, a3 never overtakes it.
    assert OutboxRelay(pool, RecordingPublisher()).run_once().published == 0
    with pool.connection() as conn:
        conn.execute("UPDATE outbox SET next_attempt_at = now()")  # the delay has passed

    healthy = RecordingPublisher()
    assert OutboxRelay(pool, healthy).run_once().published == 2
    assert [p[2]["ce-id"] for p in healthy.published] == [a2.id, a3.id]
    with pool.connection() as conn:
        assert outbox_rows(conn, unpublished_only=True) == []


def test_concurrent_relays_never_publish_one_key_side_by_side(pool: ConnectionPool) -> None:
    """While one relay holds a key, another skips that key's later rows and publishes others."""
    k1, k2, other = _failed("key-k", "1"), _failed("key-k", "2"), _failed("key-z", "z")
    with pool.connection() as conn:
        for event in (k1, k2, other):
            add_to_outbox(conn, event)
    gate = threading.Event()
    slow = RecordingPublisher(gate=gate)
    first = OutboxRelay(pool, slow, batch_size=1)  # locks only k1's row, then blocks publishing
    worker = threading.Thread(target=first.run_once)
    worker.start()
    try:
        assert slow.entered.wait(10)
        fast = RecordingPublisher()
        run = OutboxRelay(pool, fast).run_once()
    finally:
        gate.set()
        worker.join(10)
    assert [p[2]["ce-id"] for p in fast.published] == [other.id]
    assert run.deferred == 1
    assert [p[2]["ce-id"] for p in slow.published] == [k1.id]


def test_relay_keeps_running_while_the_database_is_unreachable() -> None:
    """run_forever logs and retries when PostgreSQL refuses connections, and stops when asked."""
    pool = ConnectionPool(
        "postgresql://nobody@127.0.0.1:1/none", min_size=0, max_size=1, open=True, timeout=0.2
    )
    stop = threading.Event()
    relay = OutboxRelay(pool, RecordingPublisher(), poll_interval_s=0.05)
    thread = threading.Thread(target=relay.run_forever, args=(stop,))
    thread.start()
    try:
        thread.join(1.0)
        assert thread.is_alive(), "run_forever died on an unreachable database"
    finally:
        stop.set()
        thread.join(5)
        pool.close()
    assert not thread.is_alive()


def _requested_row(conn: object, task_id: str) -> None:
    """An unpublished row on choreography-requests (written by hand: only its topic matters)."""
    conn.execute(  # type: ignore[attr-defined]
        "INSERT INTO outbox (event_id, topic, ordering_key, data) "
        "VALUES (%s, 'choreography-requests', %s, '\\x7b7d')",
        (f"ev-{task_id}", task_id),
    )


def test_relay_locks_only_the_topics_it_may_publish(pool: ConnectionPool) -> None:
    """Finding 1: a relay limited by OUTBOX_TOPICS never takes (nor fails) another topic's row."""
    with pool.connection() as conn:
        _requested_row(conn, "t-foreign")
        add_to_outbox(conn, _failed("t-mine"))
    publisher = RecordingPublisher()
    run = OutboxRelay(pool, publisher, topics=["video-done"]).run_once()
    assert (run.published, run.failed, run.deferred) == (1, 0, 0)
    assert [topic for topic, *_ in publisher.published] == ["video-done"]
    with pool.connection() as conn:
        [left] = outbox_rows(conn, unpublished_only=True)
    assert (left.topic, left.attempts, left.last_error) == ("choreography-requests", 0, None)


def test_rows_that_cannot_be_published_back_off_and_do_not_fill_batches(
    pool: ConnectionPool,
) -> None:
    """Finding 1: refused rows wait before their next try, so a later good row still goes out."""
    with pool.connection() as conn:
        for number in range(5):
            add_to_outbox(conn, _failed(f"t-refused-{number}", reason="refused"))
        add_to_outbox(conn, _failed("t-good"))
    good_id = next(r.event_id for r in outbox_rows_of(pool) if r.ordering_key == "t-good")
    refuse = RecordingPublisher(fail_when=lambda attrs: attrs.get("ce-id") != good_id)
    first = OutboxRelay(pool, refuse, batch_size=5).run_once()
    assert (first.published, first.failed) == (0, 5)
    second = OutboxRelay(pool, refuse, batch_size=5).run_once()
    assert (second.published, second.failed) == (1, 0), "refused rows filled the batch again"
    with pool.connection() as conn:
        waiting = conn.execute(
            "SELECT count(*) FROM outbox WHERE published_at IS NULL AND next_attempt_at > now()"
        ).fetchone()
    assert waiting == (5,)


def outbox_rows_of(pool: ConnectionPool) -> list:  # type: ignore[type-arg]
    """Every outbox row."""
    with pool.connection() as conn:
        return outbox_rows(conn)


def test_relay_loop_survives_an_unexpected_error(pool: ConnectionPool) -> None:
    """Finding 2: an error that is not a database outage ends one pass, never the relay."""
    relay = OutboxRelay(pool, RecordingPublisher(), poll_interval_s=0.05)
    broken = {"left": 2}
    original = relay.run_once

    def flaky_run_once() -> object:
        if broken["left"]:
            broken["left"] -= 1
            raise RuntimeError("unexpected: not an OperationalError")
        return original()

    relay.run_once = flaky_run_once  # type: ignore[method-assign]
    with pool.connection() as conn:
        add_to_outbox(conn, _failed("t-survive"))
    stop = threading.Event()
    thread = threading.Thread(target=relay.run_forever, args=(stop,))
    thread.start()
    try:
        deadline = threading.Event()
        for _ in range(100):
            if not [r for r in outbox_rows_of(pool) if r.published_at is None]:
                break
            deadline.wait(0.05)
        assert thread.is_alive(), "the relay thread died"
        assert relay.alive()
    finally:
        stop.set()
        thread.join(5)
    assert [r for r in outbox_rows_of(pool) if r.published_at is None] == []

"""The pull worker on both buses: dedupe, retries, dead letters, permanent failures, bad input."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from psycopg_pool import ConnectionPool

from consumers.runtime.handler import EventHandler, EventProcessor
from consumers.runtime.pull_worker import PullWorker
from delivery.error_mapping import Outcome, Verdict
from lifecycle.outbox import outbox_rows
from lifecycle.rejections import list_rejections
from lifecycle.task_store import get_task
from producers.outbox_relay import OutboxRelay
from schemas.errors import NotFound, TransientError
from schemas.event_codec import from_pubsub
from schemas.events import TaskFailed
from schemas.settings import WorkerSettings
from schemas.task_state import State
from tests.fixtures.messaging import (
    EFFECT_CONSUMER,
    MAX_ATTEMPTS,
    BusDriver,
    create_queued_task,
    effect_count,
    effect_handler,
    pull_until,
    requested_event,
)

pytestmark = pytest.mark.integration
SUBSCRIPTION = "blueprint-consumer"
DEAD_LETTER_SUB = "choreography-requests-dead-letter-sub"


class RecordingProcessor(EventProcessor):
    """The real processor, remembering every verdict it gave."""

    def __init__(self, pool: ConnectionPool, handler: EventHandler) -> None:
        super().__init__(pool, handler)
        self.verdicts: list[Verdict] = []

    def process(self, delivery: Any) -> Verdict:
        verdict = super().process(delivery)
        self.verdicts.append(verdict)
        return verdict

    def reject(self, error: Any, rejection: Any) -> Verdict:
        verdict = super().reject(error, rejection)
        self.verdicts.append(verdict)
        return verdict

    def outcomes(self) -> list[Outcome]:
        return [v.outcome for v in self.verdicts]


@contextmanager
def running(driver: BusDriver, processor: EventProcessor) -> Iterator[PullWorker]:
    settings = WorkerSettings(max_messages=5, shutdown_grace_s=5, health_port=0)
    worker = PullWorker(
        driver.subscriber, driver.subscription_path(SUBSCRIPTION), processor, settings
    )
    worker.start()
    try:
        yield worker
    finally:
        assert worker.stop(), "worker did not stop within its grace period"


def wait_for(condition: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_duplicate_and_redelivered_event_has_one_effect(
    choreo_bus: BusDriver, pool: ConnectionPool
) -> None:
    """One event published twice, each copy nacked once, commits its effect exactly once."""
    event = requested_event("t-dup")
    with pool.connection() as conn:
        create_queued_task(conn, "t-dup")

    def fail_first_attempt(delivery: Any) -> None:
        if delivery.delivery_attempt == 1:
            raise TransientError("first attempt fails after the effect")

    processor = RecordingProcessor(pool, effect_handler(fail_first_attempt))
    first = choreo_bus.publisher.publish(event)
    second = choreo_bus.publisher.publish(event)
    with running(choreo_bus, processor):
        wait_for(lambda: len([o for o in processor.outcomes() if o is not Outcome.RETRY]) >= 2)
    assert first != second
    assert sorted(processor.outcomes()) == sorted(
        [Outcome.RETRY, Outcome.RETRY, Outcome.PROCESSED, Outcome.DUPLICATE]
    )
    with pool.connection() as conn:
        assert effect_count(conn, event.id) == 1
        processed = conn.execute(
            "SELECT consumer FROM processed_events WHERE event_id = %s", (event.id,)
        ).fetchall()
    assert processed == [(EFFECT_CONSUMER,)]


def test_poison_message_dead_letters_after_exactly_max_attempts(
    choreo_bus: BusDriver, pool: ConnectionPool
) -> None:
    """A handler that always fails transiently sends the event to the dead-letter topic."""
    event = requested_event("t-poison")
    attempts: list[int | None] = []

    def always_fail(delivery: Any) -> None:
        attempts.append(delivery.delivery_attempt)
        raise TransientError("dependency down")

    with pool.connection() as conn:
        create_queued_task(conn, "t-poison")
    choreo_bus.publisher.publish(event)
    with running(choreo_bus, RecordingProcessor(pool, effect_handler(always_fail))):
        [dead] = pull_until(choreo_bus, DEAD_LETTER_SUB, timeout_s=20)
    assert attempts == list(range(1, MAX_ATTEMPTS + 1))
    assert dead.attributes["CloudPubSubDeadLetterSourceSubscription"] == SUBSCRIPTION
    assert dead.attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == str(MAX_ATTEMPTS)
    assert from_pubsub(dead.data, dead.attributes).event == event
    assert dead.ordering_key == "t-poison"
    with pool.connection() as conn:
        assert effect_count(conn, event.id) == 0


def test_permanent_error_fails_the_task_and_announces_it(
    choreo_bus: BusDriver, pool: ConnectionPool
) -> None:
    """A permanent error moves the task to failed, queues task.failed and is not retried."""
    event = requested_event("t-perm")
    with pool.connection() as conn:
        create_queued_task(conn, "t-perm")

    def unknown_song(_delivery: Any) -> None:
        raise NotFound("unknown song 'song-1'")

    processor = RecordingProcessor(pool, effect_handler(unknown_song))
    choreo_bus.publisher.publish(event)
    with running(choreo_bus, processor):
        wait_for(lambda: bool(processor.verdicts))
        time.sleep(0.5)  # a retry, if there were one, would arrive now
    assert processor.outcomes() == [Outcome.FAILED_PERMANENTLY]
    with pool.connection() as conn:
        task = get_task(conn, "t-perm")
        [row] = outbox_rows(conn)
        assert effect_count(conn, event.id) == 0
    assert (task.state, task.error, task.error_stage) == (
        State.FAILED,
        "unknown song 'song-1'",
        "analysis",
    )
    assert OutboxRelay(pool, choreo_bus.publisher).run_once().published == 1
    [got] = pull_until(choreo_bus, "status-recorder")
    failed = from_pubsub(got.data, got.attributes).event
    assert isinstance(failed.data, TaskFailed)
    assert (failed.id, failed.data.error_code, failed.data.stage) == (
        row.event_id,
        "not-found",
        "analysis",
    )


def test_undecodable_message_is_acked_once_and_never_handled(
    choreo_bus: BusDriver, pool: ConnectionPool
) -> None:
    """A message that cannot decode is acknowledged and logged, not retried or dead-lettered."""
    bad = {"ce-id": "x1", "ce-source": "//t", "ce-specversion": "1.0", "ce-type": "com.nope.v1"}
    processor = RecordingProcessor(pool, effect_handler())
    choreo_bus.publisher.publish_raw("choreography-requests", b"{}", bad, "")
    with running(choreo_bus, processor):
        wait_for(lambda: bool(processor.verdicts))
        time.sleep(1.0)
    assert processor.outcomes() == [Outcome.UNDECODABLE]
    assert "unknown event type com.nope.v1" in processor.verdicts[0].reason
    assert pull_until(choreo_bus, DEAD_LETTER_SUB, timeout_s=0.5) == []
    with pool.connection() as conn:
        [row] = list_rejections(conn)
    assert (row.transport, row.deliveries, row.headers["ce-type"]) == ("pull", 1, "com.nope.v1")
    assert "unknown event type com.nope.v1" in row.reason

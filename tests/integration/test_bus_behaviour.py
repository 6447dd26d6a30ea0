"""The same behavioural suite on the in-process bus and on the Pub/Sub emulator."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from producers.publishing import current_traceparent
from schemas.event_codec import from_pubsub
from schemas.event_envelope import new_event
from schemas.events import TaskFailed
from tests.fixtures.messaging import (
    BUS_DEAD_LETTER_SUB,
    BUS_TOPIC,
    MAX_ATTEMPTS,
    BusDriver,
    pull_until,
)

pytestmark = pytest.mark.integration
ATTRS = {"ce-id": "evt-1", "ce-type": "test", "content-type": "application/json"}


def _quiet(driver: BusDriver, subscription: str, seconds: float = 1.0) -> bool:
    """True when nothing is delivered on ``subscription`` for ``seconds``."""
    return not pull_until(driver, subscription, 1, timeout_s=seconds)


def test_topic_fans_out_to_every_subscription(bus_driver: BusDriver) -> None:
    """One publish reaches both subscriptions with the same id, data, attributes and key."""
    message_id = bus_driver.publisher.publish_raw(BUS_TOPIC, b'{"a":1}', ATTRS, "task-1")
    for subscription in ("sub-one", "sub-two"):
        [got] = pull_until(bus_driver, subscription)
        assert (got.message_id, got.data, got.attributes, got.ordering_key) == (
            message_id,
            b'{"a":1}',
            ATTRS,
            "task-1",
        )
        bus_driver.ack(subscription, [got.ack_id])


def test_ack_removes_the_message(bus_driver: BusDriver) -> None:
    """An acknowledged message is not delivered again."""
    bus_driver.publisher.publish_raw(BUS_TOPIC, b"x", ATTRS, "")
    [got] = pull_until(bus_driver, "sub-one")
    bus_driver.ack("sub-one", [got.ack_id])
    assert _quiet(bus_driver, "sub-one")


def test_nack_redelivers_with_the_attempt_counted(bus_driver: BusDriver) -> None:
    """A nacked message comes back with delivery attempt 2, same message id."""
    bus_driver.publisher.publish_raw(BUS_TOPIC, b"x", ATTRS, "k")
    [first] = pull_until(bus_driver, "sub-one")
    bus_driver.modify("sub-one", [first.ack_id], 0)
    [second] = pull_until(bus_driver, "sub-one")
    assert (first.delivery_attempt, second.delivery_attempt) == (1, 2)
    assert second.message_id == first.message_id
    assert second.ack_id != first.ack_id


def test_expired_lease_redelivers(bus_driver: BusDriver) -> None:
    """A message whose ack deadline passes without an ack is delivered again."""
    bus_driver.publisher.publish_raw(BUS_TOPIC, b"x", ATTRS, "")
    [first] = pull_until(bus_driver, "sub-one")
    bus_driver.modify("sub-one", [first.ack_id], 1)
    assert not bus_driver.pull("sub-one"), "redelivered while the lease still held"
    [second] = pull_until(bus_driver, "sub-one", timeout_s=5)
    assert second.delivery_attempt == 2


def test_dead_letter_after_exactly_max_attempts(bus_driver: BusDriver) -> None:
    """After MAX_ATTEMPTS nacks the message moves to the dead-letter topic with source info."""
    published = bus_driver.publisher.publish_raw(BUS_TOPIC, b"poison", ATTRS, "task-9")
    attempts = []
    for _ in range(MAX_ATTEMPTS):
        [got] = pull_until(bus_driver, "sub-one")
        attempts.append(got.delivery_attempt)
        bus_driver.modify("sub-one", [got.ack_id], 0)
    # The emulator forwards when it would deliver again, so keep the source subscription pulled.
    extra, dead_letters = [], []
    deadline = time.monotonic() + 10
    while not dead_letters and time.monotonic() < deadline:
        extra += bus_driver.pull("sub-one")
        dead_letters = bus_driver.pull(BUS_DEAD_LETTER_SUB)
        time.sleep(0.05)
    assert extra == [], "delivered more than MAX_ATTEMPTS times"
    [dead] = dead_letters
    assert attempts == list(range(1, MAX_ATTEMPTS + 1))
    assert (dead.data, dead.ordering_key) == (b"poison", "task-9")
    assert {k: v for k, v in dead.attributes.items() if k in ATTRS} == ATTRS
    assert dead.attributes["CloudPubSubDeadLetterSourceSubscription"] == "sub-one"
    assert dead.attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == str(MAX_ATTEMPTS)
    assert dead.attributes["CloudPubSubDeadLetterSourceSubscriptionProject"] == (
        bus_driver.project_id
    )
    assert "CloudPubSubDeadLetterSourceTopicPublishTime" in dead.attributes
    assert dead.message_id != published


def test_messages_of_one_key_arrive_in_publish_order(bus_driver: BusDriver) -> None:
    """Five messages published with one ordering key are pulled in publish order."""
    for index in range(5):
        bus_driver.publisher.publish_raw(BUS_TOPIC, str(index).encode(), ATTRS, "task-7")
    got = pull_until(bus_driver, "sub-one", 5)
    assert [m.data for m in got] == [b"0", b"1", b"2", b"3", b"4"]


def test_publish_event_round_trips_with_trace_context(choreo_bus: BusDriver) -> None:
    """publish(event) sends binary mode, key = task id, and the handled event's traceparent."""
    event = new_event(
        TaskFailed(
            task_id="t-42",
            stage="render",
            reason="ffmpeg exited 1",
            error_code="render-failed",
            failed_at=datetime.now(UTC),
        ),
        source="//test",
    )
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    token = current_traceparent.set(traceparent)
    try:
        message_id = choreo_bus.publisher.publish(event)
    finally:
        current_traceparent.reset(token)
    [got] = pull_until(choreo_bus, "status-recorder")
    delivery = from_pubsub(got.data, got.attributes, message_id=got.message_id)
    assert got.message_id == message_id
    assert got.ordering_key == "t-42"
    assert got.attributes["ce-traceparent"] == traceparent
    assert delivery.event == event.model_copy(update={"traceparent": traceparent})

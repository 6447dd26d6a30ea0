"""The in-process bus on a controlled clock: leases, backoff, stale acks, streaming, threads."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from producers.inprocess_bus import InProcessBus
from schemas.errors import InvalidInput
from schemas.topology import DeadLetterPolicy, RetryPolicy, Subscription, Topic, Topology


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def topology(min_backoff: int = 0, max_backoff: int = 0) -> Topology:
    retry = RetryPolicy(min_backoff, max_backoff)
    return Topology(
        topics=(Topic("orders", ("t",)), Topic("orders-dl", dead_letter_of="orders")),
        subscriptions=(
            Subscription("work", "orders", 10, DeadLetterPolicy("orders-dl", 5), retry),
            Subscription("plain", "orders-dl", 10, None, retry),
        ),
    )


def test_lease_expiry_redelivers_only_after_the_ack_deadline() -> None:
    """A pulled message stays invisible for its ack deadline, then comes back as attempt 2."""
    clock = Clock()
    bus = InProcessBus(topology(), clock=clock)
    bus.publish_raw("orders", b"x", {}, "")
    [first] = bus.pull("work")
    clock.now += 9.9
    assert bus.pull("work") == []
    clock.now += 0.2
    [second] = bus.pull("work")
    assert (first.delivery_attempt, second.delivery_attempt) == (1, 2)


def test_stale_ack_after_lease_expiry_does_not_remove_the_redelivery() -> None:
    """Acking with an expired lease's ack id is ignored, as on Pub/Sub."""
    clock = Clock()
    bus = InProcessBus(topology(), clock=clock)
    bus.publish_raw("orders", b"x", {}, "")
    [first] = bus.pull("work")
    clock.now += 11
    [second] = bus.pull("work")
    first.ack()
    assert bus.backlog_size("work") == 1
    second.ack()
    assert bus.backlog_size("work") == 0


def test_retry_backoff_doubles_up_to_the_maximum() -> None:
    """After a nack the message waits minimum * 2^(attempt-1) seconds, capped at the maximum."""
    clock = Clock()
    bus = InProcessBus(topology(min_backoff=10, max_backoff=25), clock=clock)
    bus.publish_raw("orders", b"x", {}, "")
    [message] = bus.pull("work")
    waits = []
    for _ in range(3):
        message.nack()
        waited = 0
        while not (pulled := bus.pull("work")):
            clock.now += 1
            waited += 1
        [message] = pulled
        waits.append(waited)
    assert waits == [10, 20, 25]


def test_subscription_without_dead_letter_policy_reports_attempt_zero() -> None:
    """As on Pub/Sub, delivery_attempt is only counted where a dead-letter policy exists."""
    bus = InProcessBus(topology())
    bus.publish_raw("orders-dl", b"x", {}, "")
    [message] = bus.pull("plain")
    assert message.delivery_attempt == 0


def test_unknown_names_and_bad_input_are_refused_by_name() -> None:
    """Unknown topics and subscriptions, non-bytes data and bad deadlines raise InvalidInput."""
    bus = InProcessBus(topology())
    with pytest.raises(InvalidInput, match="unknown topic 'nope'"):
        bus.publish_raw("nope", b"x", {}, "")
    with pytest.raises(InvalidInput, match="unknown subscription 'nope'"):
        bus.pull("projects/p/subscriptions/nope")
    with pytest.raises(InvalidInput, match="data must be bytes"):
        bus.publish_raw("orders", "text", {}, "")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match=r"0\.\.600"):
        bus.modify_ack_deadline("work", [], 601)


def test_concurrent_publishers_lose_nothing() -> None:
    """Eight threads publishing 200 messages each: every message arrives once, ids unique."""
    bus = InProcessBus(topology())

    def publish() -> None:
        for _ in range(200):
            bus.publish_raw("orders", b"x", {}, "")

    threads = [threading.Thread(target=publish) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    pulled = bus.pull("work", max_messages=10_000)
    assert len(pulled) == 1600
    assert len({m.message_id for m in pulled}) == 1600


def test_streaming_cancel_nacks_messages_the_callback_never_got() -> None:
    """On cancel, messages queued behind busy callbacks go back at once; running ones finish."""
    bus = InProcessBus(topology())
    for index in range(12):
        bus.publish_raw("orders", str(index).encode(), {}, "")
    release = threading.Event()
    handled: list[bytes] = []
    entered = threading.Semaphore(0)

    class Flow:  # 12 held at once, but only 10 callback threads: two wait in the queue
        max_messages = 12
        max_lease_duration = 60

    def callback(message: Any) -> None:
        entered.release()
        release.wait(5)
        handled.append(message.data)
        message.ack()

    stream = bus.subscribe("work", callback, Flow(), await_callbacks_on_shutdown=True)
    for _ in range(10):
        assert entered.acquire(timeout=5)
    time.sleep(0.2)  # the pump also pulls the two that wait for a thread
    stream.cancel()
    time.sleep(0.3)  # the pump stops and cancels the two queued callbacks
    release.set()
    stream.result(timeout=5)
    assert len(handled) == 10
    assert len(bus.pull("work")) == 2  # nacked, so available at once (no lease to wait out)

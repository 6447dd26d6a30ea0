"""Dead-letter selection, replay attributes, destinations and leases, on a fake subscriber."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from producers.dlq import (
    REPLAY_COUNT,
    DeadLetterFilter,
    DeadLetterQueue,
    parse_attribute_filters,
    pretty_data,
    to_dead_letter,
)
from producers.dlq_replay import ReplayOptions, destination_for
from schemas.errors import InvalidInput
from schemas.topology import build_topology

T0 = datetime(2024, 5, 1, 12, tzinfo=UTC)
BOOKKEEPING = {
    "CloudPubSubDeadLetterSourceSubscription": "blueprint-consumer",
    "CloudPubSubDeadLetterSourceSubscriptionProject": "proj",
    "CloudPubSubDeadLetterSourceDeliveryCount": "5",
    "CloudPubSubDeadLetterSourceTopicPublishTime": "2024-05-01T12:00:00Z",
}


def received(
    message_id: str,
    attributes: dict[str, str] | None = None,
    *,
    data: bytes = b'{"task_id": "t1"}',
    at: datetime = T0,
) -> Any:
    """A ReceivedMessage-shaped object."""
    message = SimpleNamespace(
        message_id=message_id,
        publish_time=at,
        data=data,
        attributes={**BOOKKEEPING, **(attributes or {})},
        ordering_key="t1",
    )
    return SimpleNamespace(ack_id=f"ack-{message_id}", message=message)


@dataclass
class FakeSubscriber:
    """Serves a backlog once per pull and records acks and deadline changes."""

    backlog: list[Any]
    acked: list[str] = field(default_factory=list)
    deadlines: list[tuple[list[str], int]] = field(default_factory=list)

    def pull(self, request: dict[str, Any]) -> Any:
        """Everything not yet handed out, up to max_messages."""
        batch, self.backlog = (
            self.backlog[: request["max_messages"]],
            self.backlog[request["max_messages"] :],
        )
        return SimpleNamespace(received_messages=batch)

    def acknowledge(self, request: dict[str, Any]) -> None:
        """Record acks."""
        self.acked += request["ack_ids"]

    def modify_ack_deadline(self, request: dict[str, Any]) -> None:
        """Record deadline changes."""
        self.deadlines.append((request["ack_ids"], request["ack_deadline_seconds"]))


def test_replay_attributes_strip_bookkeeping_and_count_replays() -> None:
    """CloudPubSubDeadLetter* attributes go, others stay as they are, the counter goes up."""
    message = to_dead_letter(received("1", {"ce-id": "e1", "Custom": "v", REPLAY_COUNT: "1"}))
    assert message.replay_attributes() == {"ce-id": "e1", "Custom": "v", REPLAY_COUNT: "2"}
    assert (message.delivery_count, message.source_subscription) == (5, "blueprint-consumer")


def test_a_poison_message_keeps_what_its_attributes_say() -> None:
    """A message that is not a valid CloudEvent still lists its ce-type, id and ordering key."""
    message = to_dead_letter(received("1", {"ce-type": "weird", "ce-id": "e9"}, data=b"\xff"))
    assert (message.event_type, message.event_id, message.task_id) == ("weird", "e9", "t1")
    assert "not UTF-8" in pretty_data(message.data)


def test_filters_combine_every_condition() -> None:
    """Type, task, time window and attributes must all match."""
    message = to_dead_letter(received("1", {"k": "v"}))
    assert DeadLetterFilter().matches(message)
    assert DeadLetterFilter(task_id="t1", attributes={"k": "v"}).matches(message)
    assert not DeadLetterFilter(attributes={"k": "other"}).matches(message)
    assert not DeadLetterFilter(event_type="com.choreo.blueprint.ready.v1").matches(message)
    assert DeadLetterFilter(since=T0, until=T0 + timedelta(seconds=1)).matches(message)
    assert not DeadLetterFilter(since=T0 + timedelta(seconds=1)).matches(message)


def test_bad_filters_are_refused_with_the_reason() -> None:
    """Naive times, an inverted window and malformed key=value pairs are errors."""
    with pytest.raises(InvalidInput, match="time zone"):
        DeadLetterFilter(since=datetime(2024, 1, 1))
    with pytest.raises(InvalidInput, match="later than"):
        DeadLetterFilter(since=T0, until=T0 - timedelta(1))
    with pytest.raises(InvalidInput, match="key=value"):
        parse_attribute_filters(["novalue"])
    assert parse_attribute_filters(["a=b=c", "e="]) == {"a": "b=c", "e": ""}


def test_inspecting_releases_everything_and_acks_nothing() -> None:
    """Pulling through the queue and leaving releases every message with deadline 0."""
    subscriber = FakeSubscriber([received(str(i), at=T0 - timedelta(minutes=i)) for i in range(3)])
    with DeadLetterQueue(subscriber, "proj", "dl-sub") as queue:
        listed = queue.pull(DeadLetterFilter())
    assert [m.message_id for m in listed] == ["2", "1", "0"]  # oldest first
    assert subscriber.acked == []
    assert subscriber.deadlines == [(["ack-0", "ack-1", "ack-2"], 0)]


def test_limit_stops_at_the_matches_but_still_releases_all_held() -> None:
    """With a limit, the extra messages pulled in the same batch are released too."""
    subscriber = FakeSubscriber([received(str(i)) for i in range(5)])
    with DeadLetterQueue(subscriber, "proj", "dl-sub") as queue:
        assert len(queue.pull(DeadLetterFilter(), limit=2)) == 2
    assert sorted(subscriber.deadlines[0][0]) == [f"ack-{i}" for i in range(5)]


def test_the_destination_is_the_source_subscriptions_topic() -> None:
    """The source subscription maps to its topic; cap, foreign project and unknown are refused."""
    topology = build_topology()
    queue = DeadLetterQueue(FakeSubscriber([]), "proj", "choreography-requests-dead-letter-sub")
    options = ReplayOptions(actor="me", cap=3)
    fresh = to_dead_letter(received("1"))
    assert destination_for(fresh, queue, topology, options) == ("choreography-requests", None)
    capped = to_dead_letter(received("2", {REPLAY_COUNT: "3"}))
    assert "cap" in (destination_for(capped, queue, topology, options)[1] or "")
    foreign = to_dead_letter(received("3", {"CloudPubSubDeadLetterSourceSubscriptionProject": "x"}))
    assert destination_for(foreign, queue, topology, options)[0] is None
    unknown = to_dead_letter(received("4", {"CloudPubSubDeadLetterSourceSubscription": "nope"}))
    assert "not in the topology" in (destination_for(unknown, queue, topology, options)[1] or "")
    explicit = ReplayOptions(actor="me", to_topic="blueprint-ready")
    assert destination_for(unknown, queue, topology, explicit) == ("blueprint-ready", None)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"actor": " "}, "actor"),
        ({"actor": "me", "cap": 0}, "cap"),
        ({"actor": "me", "limit": 0}, "limit"),
        ({"actor": "me", "rate_per_s": 0}, "rate"),
    ],
)
def test_replay_options_refuse_nonsense(kwargs: dict[str, Any], message: str) -> None:
    """A blank actor, a zero cap, limit or rate are refused, naming the option."""
    with pytest.raises(InvalidInput, match=message):
        ReplayOptions(**kwargs)

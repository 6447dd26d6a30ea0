"""The topology as data: what it contains, and what construction rejects."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from choreo_cli.main import app
from producers.topology_apply import desired_subscription, subscription_differences
from schemas.errors import InvalidInput
from schemas.settings import StorageSettings
from schemas.topology import (
    DeadLetterPolicy,
    RetryPolicy,
    Subscription,
    Topic,
    Topology,
    build_topology,
    topic_path,
)

TOPICS = (Topic("orders", ("com.example.order.v1",)), Topic("orders-dl", dead_letter_of="orders"))


def consumer(**overrides: object) -> Subscription:
    """A valid consumer subscription on ``orders``, with some fields overridden."""
    fields: dict[str, object] = {
        "name": "order-consumer",
        "topic": "orders",
        "ack_deadline_s": 30,
        "dead_letter": DeadLetterPolicy("orders-dl"),
        "retry": RetryPolicy(),
    }
    return Subscription(**{**fields, **overrides})  # type: ignore[arg-type]


def test_design_topics_and_subscriptions_are_present() -> None:
    """The topology has the three event topics, their dead-letter topics and six subscriptions."""
    topology = build_topology()
    assert {t.name for t in topology.topics} == {
        "choreography-requests",
        "choreography-requests-dead-letter",
        "blueprint-ready",
        "blueprint-ready-dead-letter",
        "video-done",
        "video-done-dead-letter",
    }
    assert {s.name: s.topic for s in topology.subscriptions} == {
        "blueprint-consumer": "choreography-requests",
        "dispatcher": "blueprint-ready",
        "status-recorder": "video-done",
        "choreography-requests-dead-letter-sub": "choreography-requests-dead-letter",
        "blueprint-ready-dead-letter-sub": "blueprint-ready-dead-letter",
        "video-done-dead-letter-sub": "video-done-dead-letter",
    }


def test_every_consumer_subscription_dead_letters_to_its_own_topics_dlq() -> None:
    """Each consumer subscription forwards to its topic's dead-letter topic after 5 attempts."""
    topology = build_topology()
    consumers = topology.consumer_subscriptions()
    assert {s.name for s in consumers} == {"blueprint-consumer", "dispatcher", "status-recorder"}
    for sub in consumers:
        assert sub.dead_letter is not None
        assert sub.dead_letter.topic == topology.dead_letter_topic_of(sub.topic).name
        assert sub.dead_letter.max_delivery_attempts == 5
        assert 0 < sub.retry.minimum_backoff_s < sub.retry.maximum_backoff_s <= 600


def test_message_ordering_is_disabled_on_every_subscription() -> None:
    """No subscription enables message ordering (it would block dead-lettering)."""
    assert not any(s.enable_message_ordering for s in build_topology().subscriptions)


def test_an_ordered_subscription_is_rejected() -> None:
    """Construction rejects a subscription that enables message ordering."""
    with pytest.raises(InvalidInput, match="enable_message_ordering"):
        Topology(TOPICS, (consumer(enable_message_ordering=True),))


def test_dead_letter_subscriptions_keep_messages_a_week() -> None:
    """The dead-letter subscriptions exist for replay and keep the maximum retention."""
    topology = build_topology()
    for topic in topology.topics:
        if topic.is_dead_letter:
            sub = topology.subscription(f"{topic.dead_letter_of}-dead-letter-sub")
            assert sub.topic == topic.name
            assert sub.retention_s == 7 * 24 * 3600


def test_video_done_carries_completion_and_failure() -> None:
    """video-done carries both video.completed and task.failed CloudEvent types."""
    topology = build_topology()
    assert topology.topic("video-done").event_types == (
        "com.choreo.video.completed.v1",
        "com.choreo.task.failed.v1",
    )
    assert topology.topic_for_event_type("com.choreo.task.failed.v1").name == "video-done"
    assert topology.topic_for_event_type("com.choreo.blueprint.ready.v1").name == "blueprint-ready"


def test_lookups_find_topics_and_paths() -> None:
    """Lookups give a subscription's topic, a topic's dead-letter topic and resource paths."""
    topology = build_topology()
    assert topology.topic_of("dispatcher").name == "blueprint-ready"
    assert topology.dead_letter_topic_of("video-done").name == "video-done-dead-letter"
    assert topic_path("p1", "video-done") == "projects/p1/topics/video-done"


@pytest.mark.parametrize(
    ("lookup", "argument"),
    [
        ("topic", "nope"),
        ("subscription", "nope"),
        ("topic_of", "nope"),
        ("dead_letter_topic_of", "video-done-dead-letter"),
        ("topic_for_event_type", "com.example.unknown.v1"),
    ],
)
def test_lookups_of_unknown_names_raise_naming_them(lookup: str, argument: str) -> None:
    """A lookup of something the topology lacks raises InvalidInput naming it."""
    with pytest.raises(InvalidInput, match=argument):
        getattr(build_topology(), lookup)(argument)


def test_a_subscription_on_an_unknown_topic_is_rejected() -> None:
    """Construction rejects a subscription whose topic is not in the topology."""
    with pytest.raises(InvalidInput, match="'payments' is not in the topology"):
        Topology(TOPICS, (consumer(topic="payments"),))


def test_a_dead_letter_topic_outside_the_topology_is_rejected() -> None:
    """Construction rejects a dead-letter policy naming an unknown topic."""
    with pytest.raises(InvalidInput, match="dead-letter topic 'missing-dl'"):
        Topology(TOPICS, (consumer(dead_letter=DeadLetterPolicy("missing-dl")),))


def test_a_consumer_subscription_without_dead_letter_is_rejected() -> None:
    """Construction rejects a subscription on an event topic with no dead-letter policy."""
    with pytest.raises(InvalidInput, match="needs a dead-letter policy"):
        Topology(TOPICS, (consumer(dead_letter=None),))


@pytest.mark.parametrize("attempts", [0, 4, 101])
def test_delivery_attempts_outside_pubsub_bounds_are_rejected(attempts: int) -> None:
    """Construction rejects max_delivery_attempts outside Pub/Sub's 5..100."""
    with pytest.raises(InvalidInput, match=f"max_delivery_attempts={attempts} is outside 5..100"):
        Topology(TOPICS, (consumer(dead_letter=DeadLetterPolicy("orders-dl", attempts)),))


@pytest.mark.parametrize("attempts", [5, 100])
def test_delivery_attempts_at_the_bounds_are_accepted(attempts: int) -> None:
    """The bounds 5 and 100 themselves are valid."""
    sub = consumer(dead_letter=DeadLetterPolicy("orders-dl", attempts))
    assert Topology(TOPICS, (sub,)).subscription("order-consumer") == sub


def test_backoff_minimum_above_maximum_is_rejected() -> None:
    """Construction rejects a retry policy whose minimum backoff exceeds its maximum."""
    with pytest.raises(InvalidInput, match="retry backoff"):
        Topology(TOPICS, (consumer(retry=RetryPolicy(60, 30)),))


def test_duplicate_names_are_rejected() -> None:
    """Construction rejects two subscriptions with the same name."""
    with pytest.raises(InvalidInput, match="duplicate subscription name 'order-consumer'"):
        Topology(TOPICS, (consumer(), consumer(topic="orders")))


def test_buckets_come_from_storage_settings() -> None:
    """The bucket names are the ones StorageSettings declares."""
    storage = StorageSettings(
        songs_bucket="s", moves_bucket="m", videos_bucket="v", blueprints_bucket="b"
    )
    assert build_topology(storage).buckets == ("s", "m", "v", "b")


def test_desired_subscription_differences_name_each_changed_field() -> None:
    """Comparing an existing subscription with the wanted one names exactly the changed fields."""
    sub = build_topology().subscription("dispatcher")
    want = desired_subscription(sub, "p1")
    have = desired_subscription(dataclasses.replace(sub, ack_deadline_s=10), "p1")
    have.retry_policy.minimum_backoff = timedelta(seconds=1)
    assert subscription_differences(want, want) == {}
    assert subscription_differences(have, want) == {
        "ack_deadline_seconds": (10, 30),
        "retry_policy": ((1.0, 600.0), (10.0, 600.0)),
    }


def test_show_json_lists_the_topology() -> None:
    """`choreo topology show --json` prints every topic, subscription and bucket."""
    result = CliRunner().invoke(app, ["topology", "show", "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    topology = build_topology()
    assert [t["name"] for t in shown["topics"]] == [t.name for t in topology.topics]
    assert shown["subscriptions"][0]["dead_letter"] == {
        "topic": "choreography-requests-dead-letter",
        "max_delivery_attempts": 5,
    }
    assert shown["buckets"] == list(topology.buckets)

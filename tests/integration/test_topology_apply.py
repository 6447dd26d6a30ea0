"""apply_topology and apply_buckets against the real Pub/Sub and GCS emulators."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest

from blobstore.gcs import gcs_client as storage_client
from producers.topology_apply import (
    PubSubUnreachable,
    StorageUnreachable,
    apply_buckets,
    apply_topology,
    pubsub_admin_clients,
)
from schemas.settings import StorageSettings
from schemas.topology import build_topology
from tests.fixtures.pubsub import PubSubProject

pytestmark = pytest.mark.integration


def apply(project: PubSubProject) -> Any:
    """Apply choreo's topology to the test's own project."""
    return apply_topology(
        build_topology(),
        project.project_id,
        publisher=project.publisher,
        subscriber=project.subscriber,
    )


def free_port() -> int:
    """A TCP port nothing listens on (bound and released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_apply_creates_every_topic_and_subscription(pubsub_project: PubSubProject) -> None:
    """A first apply creates every topic and subscription, and the emulator lists them all."""
    topology = build_topology()
    report = apply(pubsub_project)
    assert {(o.kind, o.name) for o in report.actions("created")} == {
        *(("topic", t.name) for t in topology.topics),
        *(("subscription", s.name) for s in topology.subscriptions),
    }
    project = f"projects/{pubsub_project.project_id}"
    listed = {t.name for t in pubsub_project.publisher.list_topics(request={"project": project})}
    assert listed == {pubsub_project.topic_path(t.name) for t in topology.topics}
    listed_subs = pubsub_project.subscriber.list_subscriptions(request={"project": project})
    assert {s.name for s in listed_subs} == {
        pubsub_project.subscription_path(s.name) for s in topology.subscriptions
    }


def test_subscriptions_read_back_with_their_policies(pubsub_project: PubSubProject) -> None:
    """Each subscription reads back with its topic, dead-letter and retry policies and deadline."""
    topology = build_topology()
    apply(pubsub_project)
    for sub in topology.subscriptions:
        got = pubsub_project.subscriber.get_subscription(
            request={"subscription": pubsub_project.subscription_path(sub.name)}
        )
        assert got.topic == pubsub_project.topic_path(sub.topic)
        assert got.ack_deadline_seconds == sub.ack_deadline_s
        assert got.enable_message_ordering is False
        assert got.retry_policy.minimum_backoff.total_seconds() == sub.retry.minimum_backoff_s
        assert got.retry_policy.maximum_backoff.total_seconds() == sub.retry.maximum_backoff_s
        assert got.message_retention_duration.total_seconds() == sub.retention_s
        if sub.dead_letter is None:
            assert got.dead_letter_policy.dead_letter_topic == ""
        else:
            assert got.dead_letter_policy.dead_letter_topic == pubsub_project.topic_path(
                sub.dead_letter.topic
            )
            assert got.dead_letter_policy.max_delivery_attempts == 5


def test_a_second_apply_finds_everything_in_place(pubsub_project: PubSubProject) -> None:
    """Applying twice creates nothing the second time and reports no drift."""
    apply(pubsub_project)
    second = apply(pubsub_project)
    assert {o.action for o in second.outcomes} == {"existed"}
    assert len(second.outcomes) == len(build_topology().topics) + len(
        build_topology().subscriptions
    )


def test_mutable_drift_is_updated_in_place(pubsub_project: PubSubProject) -> None:
    """A subscription whose ack deadline and backoff were changed is updated back in place."""
    apply(pubsub_project)
    path = pubsub_project.subscription_path("dispatcher")
    pubsub_project.subscriber.update_subscription(
        request={
            "subscription": {
                "name": path,
                "ack_deadline_seconds": 11,
                "retry_policy": {
                    "minimum_backoff": {"seconds": 1},
                    "maximum_backoff": {"seconds": 5},
                },
            },
            "update_mask": {"paths": ["ack_deadline_seconds", "retry_policy"]},
        }
    )
    report = apply(pubsub_project)
    updated = report.actions("updated")
    assert [o.name for o in updated] == ["dispatcher"]
    assert "ack_deadline_seconds: 11 -> 30" in updated[0].detail
    got = pubsub_project.subscriber.get_subscription(request={"subscription": path})
    assert got.ack_deadline_seconds == 30
    assert got.retry_policy.minimum_backoff.total_seconds() == 10
    assert not report.drifted


def test_immutable_drift_is_reported_not_changed(pubsub_project: PubSubProject) -> None:
    """A subscription attached to the wrong topic is reported as drift and left as it is."""
    wrong_topic = pubsub_project.topic_path("video-done")
    pubsub_project.publisher.create_topic(request={"name": wrong_topic})
    path = pubsub_project.subscription_path("dispatcher")
    pubsub_project.subscriber.create_subscription(request={"name": path, "topic": wrong_topic})
    report = apply(pubsub_project)
    drifted = report.actions("drifted")
    assert [o.name for o in drifted] == ["dispatcher"]
    assert "immutable: topic" in drifted[0].detail
    assert report.drifted
    got = pubsub_project.subscriber.get_subscription(request={"subscription": path})
    assert got.topic == wrong_topic


def test_an_unreachable_emulator_fails_fast_naming_the_variable() -> None:
    """With nothing listening, apply fails within seconds naming PUBSUB_EMULATOR_HOST."""
    publisher, subscriber = pubsub_admin_clients(f"127.0.0.1:{free_port()}")
    started = time.monotonic()
    with pytest.raises(PubSubUnreachable, match="PUBSUB_EMULATOR_HOST"):
        apply_topology(
            build_topology(), "p1", publisher=publisher, subscriber=subscriber, timeout_s=1.0
        )
    assert time.monotonic() - started < 15
    subscriber.close()


def test_buckets_are_created_on_the_gcs_emulator(gcs_client: Any, bucket_prefix: str) -> None:
    """apply_buckets creates every bucket the topology names, and a second run finds them."""
    storage = StorageSettings(
        songs_bucket=f"{bucket_prefix}-songs",
        moves_bucket=f"{bucket_prefix}-moves",
        videos_bucket=f"{bucket_prefix}-videos",
        blueprints_bucket=f"{bucket_prefix}-blueprints",
    )
    topology = build_topology(storage)
    first = apply_buckets(topology, gcs_client)
    assert [(o.name, o.action) for o in first.outcomes] == [
        (b, "created") for b in topology.buckets
    ]
    for name in topology.buckets:
        assert gcs_client.lookup_bucket(name) is not None
    second = apply_buckets(topology, gcs_client)
    assert {o.action for o in second.outcomes} == {"existed"}


def test_an_unreachable_storage_emulator_fails_fast_naming_the_variable() -> None:
    """With nothing listening, bucket creation fails within seconds naming STORAGE_EMULATOR_HOST."""
    client = storage_client(f"http://127.0.0.1:{free_port()}", "p1")
    started = time.monotonic()
    with pytest.raises(StorageUnreachable, match="STORAGE_EMULATOR_HOST"):
        apply_buckets(build_topology(), client, timeout_s=1.0)
    assert time.monotonic() - started < 15

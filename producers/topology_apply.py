"""Create the topology on Pub/Sub and Cloud Storage (or their emulators), idempotently.

A resource that already exists is compared with what the topology wants: a difference in a
mutable subscription field is fixed with ``update_subscription`` and a field mask; a difference
in an immutable one (topic, message ordering) is reported as drift, because fixing it means
deleting the subscription and losing its backlog, which is an operator's decision.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from google.api_core import exceptions as gexc
from google.api_core.retry import Retry, if_exception_type
from google.cloud.pubsub_v1 import types as pubsub_types

from blobstore.gcs import gcs_client
from schemas.errors import TransientError
from schemas.topology import Subscription, Topology, subscription_path, topic_path

DEFAULT_TIMEOUT_S = 10.0
# Fields update_subscription accepts; topic and enable_message_ordering are immutable.
MUTABLE_FIELDS = frozenset(
    {"ack_deadline_seconds", "message_retention_duration", "retry_policy", "dead_letter_policy"}
)
_UNREACHABLE = (gexc.ServiceUnavailable, gexc.DeadlineExceeded, gexc.RetryError)


class PubSubUnreachable(TransientError):
    """Pub/Sub (or its emulator) did not answer."""


class StorageUnreachable(TransientError):
    """Cloud Storage (or its emulator) did not answer."""


@dataclass(frozen=True)
class ResourceOutcome:
    """What applying did to one resource: created, existed, updated or drifted."""

    kind: str
    name: str
    action: str
    detail: str = ""


@dataclass
class ApplyReport:
    """Every resource the topology names, with what applying did to it."""

    outcomes: list[ResourceOutcome] = field(default_factory=list)

    def actions(self, action: str) -> list[ResourceOutcome]:
        """The outcomes with ``action``."""
        return [o for o in self.outcomes if o.action == action]

    @property
    def drifted(self) -> bool:
        """True when something differs from the topology and could not be fixed."""
        return bool(self.actions("drifted"))

    def lines(self) -> list[str]:
        """One line per resource: kind, name, what happened, and any difference found."""
        return [
            f"{o.kind:<12} {o.name:<40} {o.action}{f'  {o.detail}' if o.detail else ''}"
            for o in self.outcomes
        ]

    def extend(self, other: ApplyReport) -> ApplyReport:
        """This report followed by ``other``'s outcomes."""
        return ApplyReport([*self.outcomes, *other.outcomes])


def desired_subscription(sub: Subscription, project_id: str) -> pubsub_types.Subscription:
    """The Pub/Sub resource a topology subscription describes."""
    dead_letter = (
        {
            "dead_letter_topic": topic_path(project_id, sub.dead_letter.topic),
            "max_delivery_attempts": sub.dead_letter.max_delivery_attempts,
        }
        if sub.dead_letter
        else None
    )
    return pubsub_types.Subscription(
        name=subscription_path(project_id, sub.name),
        topic=topic_path(project_id, sub.topic),
        ack_deadline_seconds=sub.ack_deadline_s,
        enable_message_ordering=sub.enable_message_ordering,
        message_retention_duration=timedelta(seconds=sub.retention_s),
        retry_policy={
            "minimum_backoff": timedelta(seconds=sub.retry.minimum_backoff_s),
            "maximum_backoff": timedelta(seconds=sub.retry.maximum_backoff_s),
        },
        dead_letter_policy=dead_letter,
        # No expiry: a subscription without traffic for 31 days would otherwise be deleted.
        expiration_policy={},
    )


def subscription_differences(
    have: pubsub_types.Subscription, want: pubsub_types.Subscription
) -> dict[str, tuple[Any, Any]]:
    """Field name -> (existing, wanted) for every field the topology sets that differs."""
    pairs = {
        "topic": (have.topic, want.topic),
        "ack_deadline_seconds": (have.ack_deadline_seconds, want.ack_deadline_seconds),
        "enable_message_ordering": (have.enable_message_ordering, want.enable_message_ordering),
        "message_retention_duration": (
            _seconds(have.message_retention_duration),
            _seconds(want.message_retention_duration),
        ),
        "retry_policy": (_retry(have), _retry(want)),
        "dead_letter_policy": (_dead_letter(have), _dead_letter(want)),
    }
    return {name: pair for name, pair in pairs.items() if pair[0] != pair[1]}


def apply_topology(
    topology: Topology,
    project_id: str,
    *,
    publisher: Any,
    subscriber: Any,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> ApplyReport:
    """Create every topic and subscription; fix or report what differs; safe to repeat."""
    call = {"retry": _retry_for(timeout_s), "timeout": timeout_s}
    report = ApplyReport()
    try:
        for topic in topology.topics:
            path = topic_path(project_id, topic.name)
            try:
                publisher.create_topic(request={"name": path}, **call)
                report.outcomes.append(ResourceOutcome("topic", topic.name, "created"))
            except gexc.AlreadyExists:
                report.outcomes.append(ResourceOutcome("topic", topic.name, "existed"))
        for sub in topology.subscriptions:
            report.outcomes.append(_apply_subscription(sub, project_id, subscriber, call))
    except _UNREACHABLE as error:
        raise PubSubUnreachable(
            f"Pub/Sub did not answer within {timeout_s:.0f} s for project {project_id!r}: is the "
            f"emulator running and PUBSUB_EMULATOR_HOST set (`choreo stack up`)? ({error})"
        ) from error
    return report


def apply_buckets(
    topology: Topology, storage_client: Any, *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> ApplyReport:
    """Create every bucket the topology names; an existing bucket is fine."""
    import requests  # noqa: PLC0415 - the storage client's transport, only needed here
    from google.cloud.storage.retry import DEFAULT_RETRY  # noqa: PLC0415

    retry = DEFAULT_RETRY.with_timeout(timeout_s)
    report = ApplyReport()
    for name in topology.buckets:
        try:
            storage_client.create_bucket(name, timeout=timeout_s, retry=retry)
            report.outcomes.append(ResourceOutcome("bucket", name, "created"))
        except gexc.Conflict:  # AlreadyExists is a Conflict (409)
            report.outcomes.append(ResourceOutcome("bucket", name, "existed"))
        except (requests.ConnectionError, requests.Timeout, gexc.RetryError) as error:
            raise StorageUnreachable(
                f"Cloud Storage did not answer within {timeout_s:.0f} s creating bucket "
                f"{name!r}: is the emulator running and STORAGE_EMULATOR_HOST set "
                f"(`choreo stack up`)? ({error})"
            ) from error
    return report


def _apply_subscription(
    sub: Subscription, project_id: str, subscriber: Any, call: dict[str, Any]
) -> ResourceOutcome:
    want = desired_subscription(sub, project_id)
    try:
        subscriber.create_subscription(request=want, **call)
        return ResourceOutcome("subscription", sub.name, "created")
    except gexc.AlreadyExists:
        pass
    have = subscriber.get_subscription(request={"subscription": want.name}, **call)
    differences = subscription_differences(have, want)
    if not differences:
        return ResourceOutcome("subscription", sub.name, "existed")
    described = "; ".join(f"{k}: {h!r} -> {w!r}" for k, (h, w) in differences.items())
    immutable = sorted(set(differences) - MUTABLE_FIELDS)
    if immutable:
        return ResourceOutcome(
            "subscription",
            sub.name,
            "drifted",
            f"{described} (immutable: {', '.join(immutable)}; delete and re-apply to fix)",
        )
    subscriber.update_subscription(
        request={"subscription": want, "update_mask": {"paths": sorted(differences)}}, **call
    )
    return ResourceOutcome("subscription", sub.name, "updated", described)


def _retry_for(timeout_s: float) -> Retry:
    # Retry only "unavailable", and only for timeout_s: a missing emulator fails in seconds.
    return Retry(
        predicate=if_exception_type(gexc.ServiceUnavailable),
        initial=0.2,
        maximum=2.0,
        timeout=timeout_s,
    )


def _seconds(value: timedelta | None) -> float:
    return value.total_seconds() if value else 0.0


def _retry(sub: pubsub_types.Subscription) -> tuple[float, float]:
    policy = sub.retry_policy
    return (_seconds(policy.minimum_backoff), _seconds(policy.maximum_backoff))


def _dead_letter(sub: pubsub_types.Subscription) -> tuple[str, int]:
    policy = sub.dead_letter_policy
    return (policy.dead_letter_topic, policy.max_delivery_attempts)


def pubsub_admin_clients(emulator_host: str) -> tuple[Any, Any]:
    """Publisher and subscriber clients: on the emulator at ``emulator_host``, else on GCP."""
    from google.cloud import pubsub_v1  # noqa: PLC0415 - keep `choreo --help` fast

    if not emulator_host:
        return pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    import grpc  # noqa: PLC0415
    from google.pubsub_v1.services.publisher.transports import (  # noqa: PLC0415
        PublisherGrpcTransport,
    )
    from google.pubsub_v1.services.subscriber.transports import (  # noqa: PLC0415
        SubscriberGrpcTransport,
    )

    # The emulator speaks plain gRPC without credentials; an explicit channel means this works
    # whatever PUBSUB_EMULATOR_HOST says in the environment.
    publisher = pubsub_v1.PublisherClient(
        transport=PublisherGrpcTransport(channel=grpc.insecure_channel(emulator_host))
    )
    subscriber = pubsub_v1.SubscriberClient(
        transport=SubscriberGrpcTransport(channel=grpc.insecure_channel(emulator_host))
    )
    return publisher, subscriber


def apply_all(
    topology: Topology, project_id: str, *, pubsub_host: str, storage_host: str | None
) -> ApplyReport:
    """Apply topics and subscriptions, then buckets unless ``storage_host`` is None.

    The storage client is made first, so missing credentials stop the run before any change.
    """
    storage = None if storage_host is None else gcs_client(storage_host, project_id)
    publisher, subscriber = pubsub_admin_clients(pubsub_host)
    try:
        report = apply_topology(topology, project_id, publisher=publisher, subscriber=subscriber)
    finally:
        subscriber.close()
        publisher.transport.close()
    if storage is None:
        return report
    return report.extend(apply_buckets(topology, storage))

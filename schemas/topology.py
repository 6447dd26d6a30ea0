"""The messaging and storage topology as data: the one source of truth for code and set-up.

Topics, the CloudEvent types each carries, subscriptions with their dead-letter and retry
policies, and buckets. ``producers.topology_apply`` creates it on Pub/Sub (or the emulator) and
Cloud Storage (or its emulator); Terraform under ``infra/`` is checked against it. Message
ordering is disabled on every subscription: each topic carries one event per task, an ordered
subscription would block a task behind a poison message, and the emulator never dead-letters from
an ordered subscription (DESIGN.md section 2).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from schemas.errors import InvalidInput
from schemas.settings import StorageSettings

CHOREOGRAPHY_REQUESTS = "choreography-requests"
BLUEPRINT_READY = "blueprint-ready"
VIDEO_DONE = "video-done"

CHOREOGRAPHY_REQUESTED_V1 = "com.choreo.choreography.requested.v1"
REVISION_REQUESTED_V1 = "com.choreo.choreography.revision.requested.v1"
BLUEPRINT_READY_V1 = "com.choreo.blueprint.ready.v1"
VIDEO_COMPLETED_V1 = "com.choreo.video.completed.v1"
TASK_FAILED_V1 = "com.choreo.task.failed.v1"

DEAD_LETTER_SUFFIX = "-dead-letter"
DEAD_LETTER_SUBSCRIPTION_SUFFIX = "-dead-letter-sub"

# Pub/Sub's own bounds (API reference): delivery attempts, backoff, ack deadline, retention.
MIN_DELIVERY_ATTEMPTS, MAX_DELIVERY_ATTEMPTS = 5, 100
MAX_BACKOFF_LIMIT_S = 600
MIN_ACK_DEADLINE_S, MAX_ACK_DEADLINE_S = 10, 600
MIN_RETENTION_S, MAX_RETENTION_S = 600, 7 * 24 * 3600

DEFAULT_DELIVERY_ATTEMPTS = 5
DEFAULT_MIN_BACKOFF_S = 10
DEFAULT_MAX_BACKOFF_S = 600
# Consumer subscriptions keep a day of backlog; dead-letter subscriptions keep the maximum so an
# operator has a week to replay.
CONSUMER_RETENTION_S = 24 * 3600
DEAD_LETTER_RETENTION_S = MAX_RETENTION_S


@dataclass(frozen=True)
class DeadLetterPolicy:
    """Where a subscription forwards a message it gave up on, and after how many attempts."""

    topic: str
    max_delivery_attempts: int = DEFAULT_DELIVERY_ATTEMPTS


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential redelivery backoff between a nack (or expired deadline) and the next try."""

    minimum_backoff_s: int = DEFAULT_MIN_BACKOFF_S
    maximum_backoff_s: int = DEFAULT_MAX_BACKOFF_S


@dataclass(frozen=True)
class Topic:
    """A Pub/Sub topic and the CloudEvent types published on it (empty for dead-letter topics)."""

    name: str
    event_types: tuple[str, ...] = ()
    dead_letter_of: str | None = None

    @property
    def is_dead_letter(self) -> bool:
        """True for a topic that receives what a subscription gave up on."""
        return self.dead_letter_of is not None


@dataclass(frozen=True)
class Subscription:
    """A pull subscription on a topic, with its delivery policies."""

    name: str
    topic: str
    ack_deadline_s: int
    dead_letter: DeadLetterPolicy | None
    retry: RetryPolicy
    retention_s: int = CONSUMER_RETENTION_S
    enable_message_ordering: bool = False


@dataclass(frozen=True)
class Topology:
    """Topics, subscriptions and buckets; construction rejects an inconsistent topology."""

    topics: tuple[Topic, ...]
    subscriptions: tuple[Subscription, ...]
    buckets: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        _reject_duplicates("topic", (t.name for t in self.topics))
        _reject_duplicates("subscription", (s.name for s in self.subscriptions))
        _reject_duplicates("bucket", self.buckets)
        topic_names = {t.name for t in self.topics}
        for topic in self.topics:
            if topic.dead_letter_of is not None and topic.dead_letter_of not in topic_names:
                raise InvalidInput(
                    f"topic {topic.name!r}: dead_letter_of names unknown topic "
                    f"{topic.dead_letter_of!r}"
                )
        dead_letter_topics = {t.name for t in self.topics if t.is_dead_letter}
        for sub in self.subscriptions:
            _validate_subscription(sub, topic_names, dead_letter_topics)

    def topic(self, name: str) -> Topic:
        """The topic called ``name``."""
        for topic in self.topics:
            if topic.name == name:
                return topic
        raise InvalidInput(f"unknown topic {name!r}")

    def subscription(self, name: str) -> Subscription:
        """The subscription called ``name``."""
        for sub in self.subscriptions:
            if sub.name == name:
                return sub
        raise InvalidInput(f"unknown subscription {name!r}")

    def topic_of(self, subscription: str) -> Topic:
        """The topic a subscription is attached to."""
        return self.topic(self.subscription(subscription).topic)

    def dead_letter_topic_of(self, topic: str) -> Topic:
        """The dead-letter topic that receives what ``topic``'s subscriptions gave up on."""
        self.topic(topic)
        for candidate in self.topics:
            if candidate.dead_letter_of == topic:
                return candidate
        raise InvalidInput(f"topic {topic!r} has no dead-letter topic")

    def topic_for_event_type(self, event_type: str) -> Topic:
        """The topic that carries CloudEvents of ``event_type``."""
        for topic in self.topics:
            if event_type in topic.event_types:
                return topic
        raise InvalidInput(f"no topic carries CloudEvent type {event_type!r}")

    def consumer_subscriptions(self) -> tuple[Subscription, ...]:
        """Subscriptions on topics that carry events (not the dead-letter ones)."""
        return tuple(s for s in self.subscriptions if not self.topic(s.topic).is_dead_letter)


def topic_path(project_id: str, topic: str) -> str:
    """The Pub/Sub resource path ``projects/P/topics/T``."""
    return f"projects/{_require_name('project_id', project_id)}/topics/{topic}"


def subscription_path(project_id: str, subscription: str) -> str:
    """The Pub/Sub resource path ``projects/P/subscriptions/S``."""
    return f"projects/{_require_name('project_id', project_id)}/subscriptions/{subscription}"


def build_topology(storage: StorageSettings | None = None) -> Topology:
    """choreo's topology: three event topics, their consumers, dead letters and the buckets."""
    storage = storage or StorageSettings()
    # Ack deadlines, per consumer. blueprint-consumer: analysis and planning take seconds (budget
    # under 10 s) and the pull client extends leases, so 60 s covers a slow first run (index
    # load) without delaying redelivery long after a crash. dispatcher: it only starts a Cloud Run
    # Job execution (one API call), so 30 s. status-recorder: one database write, so the minimum
    # that still tolerates a slow connection, 20 s.
    consumers = (
        # A revision is planned by the same consumer (same song analysis cache, move index and
        # planner), so it travels on the requests topic and shares its dead-letter handling.
        (
            CHOREOGRAPHY_REQUESTS,
            (CHOREOGRAPHY_REQUESTED_V1, REVISION_REQUESTED_V1),
            "blueprint-consumer",
            60,
        ),
        (BLUEPRINT_READY, (BLUEPRINT_READY_V1,), "dispatcher", 30),
        (VIDEO_DONE, (VIDEO_COMPLETED_V1, TASK_FAILED_V1), "status-recorder", 20),
    )
    topics: list[Topic] = []
    subscriptions: list[Subscription] = []
    for topic_name, event_types, consumer, ack_deadline_s in consumers:
        dead_letter = topic_name + DEAD_LETTER_SUFFIX
        topics += [Topic(topic_name, event_types), Topic(dead_letter, dead_letter_of=topic_name)]
        subscriptions.append(
            Subscription(
                name=consumer,
                topic=topic_name,
                ack_deadline_s=ack_deadline_s,
                dead_letter=DeadLetterPolicy(dead_letter),
                retry=RetryPolicy(),
            )
        )
        # Dead-letter subscriptions are read by the replay tool, by hand: a long deadline so an
        # operator's inspection does not trigger redelivery, maximum retention, no dead letter
        # of their own (a message that cannot be replayed stays here). Zero retry backoff: the
        # tool releases what it only looked at (a nack), and with the default 10 s backoff the
        # message would then hide from the next `choreo dlq list` for 10, 20, 40 s (measured on
        # the emulator).
        subscriptions.append(
            Subscription(
                name=topic_name + DEAD_LETTER_SUBSCRIPTION_SUFFIX,
                topic=dead_letter,
                ack_deadline_s=MAX_ACK_DEADLINE_S,
                dead_letter=None,
                retry=RetryPolicy(minimum_backoff_s=0, maximum_backoff_s=0),
                retention_s=DEAD_LETTER_RETENTION_S,
            )
        )
    buckets = (
        storage.songs_bucket,
        storage.moves_bucket,
        storage.videos_bucket,
        storage.blueprints_bucket,
    )
    return Topology(tuple(topics), tuple(subscriptions), buckets)


def _validate_subscription(
    sub: Subscription, topic_names: set[str], dead_letter_topics: set[str]
) -> None:
    where = f"subscription {sub.name!r}"
    if sub.topic not in topic_names:
        raise InvalidInput(f"{where}: topic {sub.topic!r} is not in the topology")
    if sub.enable_message_ordering:
        raise InvalidInput(
            f"{where}: enable_message_ordering must be False (an ordered subscription blocks a "
            "task behind a poison message and the emulator never dead-letters from it)"
        )
    if not MIN_ACK_DEADLINE_S <= sub.ack_deadline_s <= MAX_ACK_DEADLINE_S:
        raise InvalidInput(
            f"{where}: ack_deadline_s={sub.ack_deadline_s} is outside "
            f"{MIN_ACK_DEADLINE_S}..{MAX_ACK_DEADLINE_S}"
        )
    if not MIN_RETENTION_S <= sub.retention_s <= MAX_RETENTION_S:
        raise InvalidInput(
            f"{where}: retention_s={sub.retention_s} is outside "
            f"{MIN_RETENTION_S}..{MAX_RETENTION_S}"
        )
    retry = sub.retry
    if not 0 <= retry.minimum_backoff_s <= retry.maximum_backoff_s <= MAX_BACKOFF_LIMIT_S:
        raise InvalidInput(
            f"{where}: retry backoff must satisfy 0 <= minimum ({retry.minimum_backoff_s}) <= "
            f"maximum ({retry.maximum_backoff_s}) <= {MAX_BACKOFF_LIMIT_S} seconds"
        )
    if sub.dead_letter is None:
        if sub.topic not in dead_letter_topics:
            raise InvalidInput(f"{where}: a consumer subscription needs a dead-letter policy")
        return
    if sub.dead_letter.topic not in topic_names:
        raise InvalidInput(
            f"{where}: dead-letter topic {sub.dead_letter.topic!r} is not in the topology"
        )
    if sub.dead_letter.topic not in dead_letter_topics:
        raise InvalidInput(
            f"{where}: {sub.dead_letter.topic!r} is not a dead-letter topic (set dead_letter_of)"
        )
    attempts = sub.dead_letter.max_delivery_attempts
    if not MIN_DELIVERY_ATTEMPTS <= attempts <= MAX_DELIVERY_ATTEMPTS:
        raise InvalidInput(
            f"{where}: max_delivery_attempts={attempts} is outside "
            f"{MIN_DELIVERY_ATTEMPTS}..{MAX_DELIVERY_ATTEMPTS} (Pub/Sub's bounds)"
        )


def _reject_duplicates(kind: str, names: Iterable[str]) -> None:
    seen: set[str] = set()
    for name in names:
        _require_name(kind, name)
        if name in seen:
            raise InvalidInput(f"duplicate {kind} name {name!r}")
        seen.add(name)


def _require_name(kind: str, name: str) -> str:
    if not name or "/" in name:
        raise InvalidInput(f"{kind} name {name!r} must be non-empty and contain no '/'")
    return name

"""Dead letters: read a dead-letter subscription without consuming it, and select messages.

A :class:`DeadLetterQueue` pulls messages and holds their leases; it either acknowledges one (it
is gone) or releases the rest with ``modify_ack_deadline`` 0 (they are delivered again at once),
so inspecting a dead-letter subscription leaves it as it was. Replay and purge, which change it,
are in :mod:`producers.dlq_replay`.

Pulls use ``return_immediately``: Pub/Sub deprecates it because it can return nothing while
messages exist, which for this tool means a listing may stop short on a quiet backlog (pulling a
few times before concluding); a waiting pull instead may lease messages to a call that already
gave up, hiding them for the whole 10-minute ack deadline of a dead-letter subscription.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from schemas.errors import InvalidInput
from schemas.event_codec import decode_pubsub
from schemas.event_envelope import EventDecodeError
from schemas.topology import subscription_path

BOOKKEEPING_PREFIX = "CloudPubSubDeadLetter"
SOURCE_SUBSCRIPTION = "CloudPubSubDeadLetterSourceSubscription"
SOURCE_PROJECT = "CloudPubSubDeadLetterSourceSubscriptionProject"
SOURCE_DELIVERY_COUNT = "CloudPubSubDeadLetterSourceDeliveryCount"
REPLAY_COUNT = "choreo-replay-count"

PULL_BATCH = 100
EMPTY_PULLS_BEFORE_DONE = 3
EMPTY_PULL_PAUSE_S = 0.1
# Leases are renewed this often while a long (rate-limited) replay holds messages, well inside
# the 10-second minimum ack deadline; each renewal asks for ``lease_s`` (the maximum, 600 s, by
# default, so a crashed run's messages come back within ten minutes).
LEASE_RENEW_EVERY_S = 5.0
LEASE_S = 600


@dataclass(frozen=True)
class DeadLetter:
    """One dead-lettered message as pulled, with the facts an operator filters on."""

    ack_id: str
    message_id: str
    publish_time: datetime
    data: bytes
    attributes: dict[str, str]
    ordering_key: str
    event_type: str | None
    event_id: str | None
    task_id: str | None

    @property
    def source_subscription(self) -> str | None:
        """The subscription that gave up on the message (its short name)."""
        return self.attributes.get(SOURCE_SUBSCRIPTION)

    @property
    def source_project(self) -> str | None:
        """The project of that subscription."""
        return self.attributes.get(SOURCE_PROJECT)

    @property
    def delivery_count(self) -> int | None:
        """How many times the source subscription delivered it before giving up."""
        return _int_or_none(self.attributes.get(SOURCE_DELIVERY_COUNT))

    @property
    def replay_count(self) -> int:
        """How many times choreo replayed it already (0 for a first-time dead letter)."""
        return _int_or_none(self.attributes.get(REPLAY_COUNT)) or 0

    def replay_attributes(self) -> dict[str, str]:
        """Attributes to republish with: dead-letter bookkeeping stripped, replay count + 1."""
        kept = {k: v for k, v in self.attributes.items() if not k.startswith(BOOKKEEPING_PREFIX)}
        kept[REPLAY_COUNT] = str(self.replay_count + 1)
        return kept

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description (data as text when it is UTF-8, else base64 length)."""
        return {
            "message_id": self.message_id,
            "publish_time": self.publish_time.isoformat(),
            "event_type": self.event_type,
            "event_id": self.event_id,
            "task_id": self.task_id,
            "ordering_key": self.ordering_key,
            "source_subscription": self.source_subscription,
            "source_project": self.source_project,
            "delivery_count": self.delivery_count,
            "replay_count": self.replay_count,
            "attributes": dict(sorted(self.attributes.items())),
            "data_bytes": len(self.data),
        }


@dataclass(frozen=True)
class DeadLetterFilter:
    """Which dead letters an operation applies to; an empty filter matches all."""

    event_type: str | None = None
    task_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise InvalidInput(f"{name} must carry a time zone offset (e.g. ...Z)")
        if self.since and self.until and self.since > self.until:
            raise InvalidInput("since is later than until: no message can match")

    def matches(self, message: DeadLetter) -> bool:
        """True when ``message`` passes every condition that is set."""
        return (
            (self.event_type is None or message.event_type == self.event_type)
            and (self.task_id is None or message.task_id == self.task_id)
            and (self.since is None or message.publish_time >= self.since)
            and (self.until is None or message.publish_time <= self.until)
            and all(message.attributes.get(k) == v for k, v in self.attributes.items())
        )


def parse_attribute_filters(pairs: Iterable[str]) -> dict[str, str]:
    """``["k=v", ...]`` as a dict; an item without ``=`` or with an empty key is refused."""
    parsed: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInput(f"--attr {pair!r} must look like key=value")
        parsed[key] = value
    return parsed


class DeadLetterQueue:
    """Pulls from one dead-letter subscription and holds the leases until ack or release."""

    def __init__(
        self, subscriber: Any, project_id: str, subscription: str, *, lease_s: int = LEASE_S
    ) -> None:
        self.subscriber = subscriber
        self.lease_s = lease_s
        self.project_id = project_id
        self.subscription = subscription
        self.path = subscription_path(project_id, subscription)
        self._held: dict[str, DeadLetter] = {}
        self._renewed_at = time.monotonic()

    def pull(self, selection: DeadLetterFilter, *, limit: int | None = None) -> list[DeadLetter]:
        """Lease every message (or until ``limit`` match); the matches, oldest first."""
        matched: list[DeadLetter] = []
        for message in self._pull_all():
            if selection.matches(message):
                matched.append(message)
                if limit is not None and len(matched) >= limit:
                    break
        return sorted(matched, key=lambda m: m.publish_time)

    def ack(self, message: DeadLetter) -> None:
        """Acknowledge ``message``: it leaves the dead-letter subscription for good."""
        self.subscriber.acknowledge(
            request={"subscription": self.path, "ack_ids": [message.ack_id]}
        )
        self._held.pop(message.message_id, None)

    def keep_leases(self) -> None:
        """Renew the held leases when due, so a slow replay does not see them redelivered."""
        if not self._held or time.monotonic() - self._renewed_at < LEASE_RENEW_EVERY_S:
            return
        self._modify([m.ack_id for m in self._held.values()], self.lease_s)
        self._renewed_at = time.monotonic()

    def release_all(self) -> None:
        """Give every held message back (deadline 0), unchanged and deliverable at once."""
        ack_ids = [m.ack_id for m in self._held.values()]
        self._held.clear()
        self._modify(ack_ids, 0)

    def __enter__(self) -> DeadLetterQueue:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release_all()

    def _pull_all(self) -> Iterator[DeadLetter]:
        empty = 0
        while empty < EMPTY_PULLS_BEFORE_DONE:
            with warnings.catch_warnings():
                # The client warns that return_immediately is deprecated; the module docstring
                # says why this tool uses it anyway.
                warnings.simplefilter("ignore", DeprecationWarning)
                response = self.subscriber.pull(
                    request={
                        "subscription": self.path,
                        "max_messages": PULL_BATCH,
                        "return_immediately": True,
                    }
                )
            held = (self._hold(received) for received in response.received_messages)
            fresh = [m for m in held if m is not None]
            if not fresh:
                empty += 1
                time.sleep(EMPTY_PULL_PAUSE_S)
                continue
            empty = 0
            yield from fresh
            self.keep_leases()

    def _hold(self, received: Any) -> DeadLetter | None:
        message = to_dead_letter(received)
        if message.message_id in self._held:
            # Seen already in this run (an expired lease came back): refresh the ack id only.
            self._held[message.message_id] = message
            return None
        self._held[message.message_id] = message
        return message

    def _modify(self, ack_ids: list[str], seconds: int) -> None:
        for start in range(0, len(ack_ids), PULL_BATCH):
            self.subscriber.modify_ack_deadline(
                request={
                    "subscription": self.path,
                    "ack_ids": ack_ids[start : start + PULL_BATCH],
                    "ack_deadline_seconds": seconds,
                }
            )


def release_backoff_s(subscriber: Any, path: str) -> float:
    """The subscription's minimum retry backoff: how long a released message stays invisible."""
    subscription = subscriber.get_subscription(request={"subscription": path})
    policy = subscription.retry_policy
    # No retry policy means immediate redelivery; with one, a release (a nack) waits it out,
    # doubling per release up to the maximum.
    if "retry_policy" not in subscription:
        return 0.0
    return float(policy.minimum_backoff.total_seconds())


def to_dead_letter(received: Any) -> DeadLetter:
    """A ``ReceivedMessage`` as a :class:`DeadLetter`; undecodable events keep what is known."""
    message = received.message
    data = bytes(message.data)
    attributes = dict(message.attributes)
    event_type, event_id, task_id = _event_facts(data, attributes)
    publish_time = message.publish_time
    return DeadLetter(
        ack_id=received.ack_id,
        message_id=message.message_id,
        publish_time=datetime.fromtimestamp(publish_time.timestamp(), UTC),
        data=data,
        attributes=attributes,
        ordering_key=message.ordering_key,
        event_type=event_type,
        event_id=event_id,
        task_id=task_id or message.ordering_key or None,
    )


def pretty_data(data: bytes) -> str:
    """The message data for humans: indented JSON, else text, else a hex dump's first line."""
    try:
        return json.dumps(json.loads(data), indent=2, ensure_ascii=False)
    except (ValueError, UnicodeDecodeError):
        pass
    try:
        return data.decode()
    except UnicodeDecodeError:
        return f"<{len(data)} bytes, not UTF-8> {data[:32].hex()}..."


def _event_facts(data: bytes, attributes: dict[str, str]) -> tuple[str | None, str | None, Any]:
    try:
        event = decode_pubsub(data, attributes).event
    except EventDecodeError:
        # A poison message may not be a valid event at all; keep whatever attributes say.
        lowered = {k.lower(): v for k, v in attributes.items()}
        return lowered.get("ce-type"), lowered.get("ce-id"), None
    task_id = event.data.get("task_id") if isinstance(event.data, dict) else None
    return event.type, event.id, task_id if isinstance(task_id, str) else None


def _int_or_none(value: str | None) -> int | None:
    try:
        return None if value is None else int(value)
    except ValueError:
        return None

"""The ``Publisher`` port: how producers, the outbox relay and dead-letter replay publish.

Two adapters implement it: :class:`producers.pubsub_publisher.PubSubPublisher` (Cloud Pub/Sub or
its emulator) and :class:`producers.inprocess_bus.InProcessBus` (the embedded default). Both put
a :class:`ChoreoEvent` on the wire in CloudEvents binary mode, on the event's topic, with the task
id as ordering key; ``publish_raw`` republishes stored bytes exactly (outbox rows, dead letters).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from schemas.errors import TransientError
from schemas.event_envelope import ChoreoEvent


class PublishFailed(TransientError):
    """The broker did not accept a message; publishing it again later may succeed."""


@runtime_checkable
class Publisher(Protocol):
    """Publishes choreo events, or exact bytes, and returns the broker's message id."""

    def publish(self, event: ChoreoEvent) -> str:
        """Publish ``event`` (binary mode, on its topic, ordering key = task id); the message id."""
        ...

    def publish_raw(
        self, topic: str, data: bytes, attributes: dict[str, str], ordering_key: str = ""
    ) -> str:
        """Publish ``data`` with ``attributes`` on ``topic`` unchanged; the message id."""
        ...

    def close(self) -> None:
        """Flush pending messages and release the client's resources."""
        ...

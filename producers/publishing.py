"""The ``Publisher`` port: how producers, the outbox relay and dead-letter replay publish.

Two adapters implement it: :class:`producers.pubsub_publisher.PubSubPublisher` (Cloud Pub/Sub or
its emulator) and :class:`producers.inprocess_bus.InProcessBus` (the embedded default). Both put
a :class:`ChoreoEvent` on the wire in CloudEvents binary mode, on the event's topic, with the task
id as ordering key; ``publish_raw`` republishes stored bytes exactly (outbox rows, dead letters).
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Protocol, runtime_checkable

from schemas.errors import TransientError
from schemas.event_codec import to_pubsub
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


# The trace context of the event being handled in this context (set by the consumer runtime), so
# that events published while handling it join its trace.
current_traceparent: ContextVar[str | None] = ContextVar("current_traceparent", default=None)


def with_current_trace(event: ChoreoEvent) -> ChoreoEvent:
    """``event`` carrying the handled event's ``traceparent`` when it has none of its own."""
    traceparent = current_traceparent.get()
    if event.traceparent is not None or traceparent is None:
        return event
    return event.model_copy(update={"traceparent": traceparent})


class RawPublisher:
    """Base of the adapters: :meth:`publish` encodes the event once, then :meth:`publish_raw`."""

    def publish(self, event: ChoreoEvent) -> str:
        """Publish ``event`` in binary mode on its topic, ordering key = task id; the message id."""
        data, attributes = to_pubsub(with_current_trace(event))
        return self.publish_raw(event.topic, data, attributes, event.ordering_key)

    def publish_raw(
        self, topic: str, data: bytes, attributes: dict[str, str], ordering_key: str = ""
    ) -> str:
        """Publish exactly these bytes and attributes on ``topic``; the message id."""
        raise NotImplementedError

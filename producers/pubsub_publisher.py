"""The ``Publisher`` adapter for Google Cloud Pub/Sub (or its emulator).

Events go out in CloudEvents binary mode (``ce-*`` attributes, payload JSON as data) with the
task id as ordering key, so the publisher keeps one task's events in order. An ordering key that
failed is paused by the client library until ``resume_publish``; this adapter resumes it right
after reporting the failure, so the caller's retry (or the outbox relay's next run) can go out.
The key is resumed only once the failed publish is over: a publish that merely timed out on
our side may still be in flight (resuming it then raises ``RuntimeError``), so a timeout leaves
the key alone, and the next publish with it, finding it paused
(``PublishToPausedOrderingKeyException``), resumes it and reports a retryable failure.
The client honours ``PUBSUB_EMULATOR_HOST`` by itself; it is built in a composition root by
:func:`build_pubsub_publisher`, never at import time.
"""

from __future__ import annotations

import logging
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1

from producers.publishing import PublishFailed, RawPublisher
from schemas.errors import InvalidInput
from schemas.settings import PublisherSettings, PubSubSettings
from schemas.topology import topic_path

log = logging.getLogger(__name__)
PausedKey = pubsub_v1.publisher.exceptions.PublishToPausedOrderingKeyException


class PubSubPublisher(RawPublisher):
    """Publishes to Pub/Sub topics of one project through a ``PublisherClient``."""

    def __init__(self, client: Any, project_id: str, *, timeout_s: float = 30.0) -> None:
        self._client = client
        self._project_id = project_id
        self._timeout_s = timeout_s

    def publish_raw(
        self, topic: str, data: bytes, attributes: dict[str, str], ordering_key: str = ""
    ) -> str:
        """Publish exactly these bytes and attributes on ``topic``; the message id."""
        path = topic_path(self._project_id, topic)
        try:
            future = self._client.publish(path, data, ordering_key=ordering_key, **attributes)
        except PausedKey as error:
            # An earlier publish with this key failed after we stopped waiting for it.
            self._client.resume_publish(path, ordering_key)
            raise PublishFailed(
                f"publishing to {path} failed: ordering key {ordering_key!r} was paused by an "
                "earlier failure; resumed, retry"
            ) from error
        except pubsub_v1.publisher.exceptions.MessageTooLargeError as error:
            raise InvalidInput(f"message for {path} is too large: {error}") from error
        try:
            return str(future.result(timeout=self._timeout_s))
        except FutureTimeout as error:
            # Still in flight: resuming now would raise; if it later fails, the key pauses and
            # the next publish with it resumes it (above).
            raise PublishFailed(
                f"publishing to {path} timed out after {self._timeout_s:.0f} s"
            ) from error
        except (gexc.GoogleAPICallError, gexc.RetryError) as error:
            if ordering_key:
                # The library paused this key after the error; without resuming, every later
                # publish with it fails at once, even after Pub/Sub recovers.
                self._client.resume_publish(path, ordering_key)
            raise PublishFailed(f"publishing to {path} failed: {error}") from error

    def close(self) -> None:
        """Send what is still batched, then stop the client."""
        self._client.stop()


def build_pubsub_publisher(
    pubsub: PubSubSettings, batching: PublisherSettings | None = None
) -> PubSubPublisher:
    """A publisher with batching and message ordering enabled (composition roots call this)."""
    batching = batching or PublisherSettings()
    client = pubsub_v1.PublisherClient(
        batch_settings=pubsub_v1.types.BatchSettings(
            max_messages=batching.batch_max_messages,
            max_bytes=batching.batch_max_bytes,
            max_latency=batching.batch_max_latency_s,
        ),
        publisher_options=pubsub_v1.types.PublisherOptions(enable_message_ordering=True),
    )
    return PubSubPublisher(client, pubsub.project_id, timeout_s=batching.publish_timeout_s)

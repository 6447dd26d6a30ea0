"""Publish the job's outbox row straight to Pub/Sub (``JOB_PUBLISH=direct``)."""

from __future__ import annotations

from typing import Any, Protocol

from job.task_status import OutboxMessage

PUBLISH_TIMEOUT_S = 30.0


class JobPublisher(Protocol):
    """Sends one outbox message; raises on failure."""

    def publish(self, message: OutboxMessage) -> str:
        """Publish and wait for the server's message id."""
        ...

    def close(self) -> None:
        """Release the client."""
        ...


class OutboxRowPublisher:
    """google-cloud-pubsub, on the emulator when ``emulator_host`` is set."""

    def __init__(self, project_id: str, emulator_host: str = "") -> None:
        from google.cloud import pubsub_v1  # noqa: PLC0415 - only a publishing run pays for it

        options = pubsub_v1.types.PublisherOptions(enable_message_ordering=True)
        if emulator_host:
            import grpc  # noqa: PLC0415
            from google.pubsub_v1.services.publisher.transports import (  # noqa: PLC0415
                PublisherGrpcTransport,
            )

            # An explicit plain channel: works whatever the environment says about the emulator.
            transport = PublisherGrpcTransport(channel=grpc.insecure_channel(emulator_host))
            self.client: Any = pubsub_v1.PublisherClient(
                publisher_options=options, transport=transport
            )
        else:
            self.client = pubsub_v1.PublisherClient(publisher_options=options)
        self.project_id = project_id

    def publish(self, message: OutboxMessage) -> str:
        """Publish with the row's attributes and ordering key; the Pub/Sub message id."""
        topic = self.client.topic_path(self.project_id, message.topic)
        future = self.client.publish(
            topic, message.data, ordering_key=message.ordering_key, **message.attributes
        )
        return str(future.result(timeout=PUBLISH_TIMEOUT_S))

    def close(self) -> None:
        """Stop the client's background threads."""
        self.client.stop()

"""The Pub/Sub adapter's handling of a paused ordering key (finding 3 of the crash-proof issue)."""

from __future__ import annotations

from concurrent.futures import Future

import pytest
from google.api_core import exceptions as gexc
from google.cloud.pubsub_v1.publisher.exceptions import PublishToPausedOrderingKeyException

from producers.publishing import PublishFailed
from producers.pubsub_publisher import PubSubPublisher


class OrderingClient:
    """A PublisherClient stand-in with the library's ordering-key rules.

    A key whose publish failed is paused until ``resume_publish``; publishing to a paused key
    raises ``PublishToPausedOrderingKeyException``; resuming a key while a publish with it is
    still in flight raises ``RuntimeError`` (as the library's sequencer does).
    """

    def __init__(self) -> None:
        self.paused: set[str] = set()
        self.in_flight: dict[str, Future[str]] = {}
        self.resumed: list[str] = []
        self.sent = 0

    def publish(self, topic: str, data: bytes, ordering_key: str = "", **attrs: str) -> Future[str]:
        if ordering_key in self.paused:
            raise PublishToPausedOrderingKeyException(ordering_key)
        future: Future[str] = Future()
        self.in_flight[ordering_key] = future
        return future

    def resume_publish(self, topic: str, ordering_key: str) -> None:
        future = self.in_flight.get(ordering_key)
        if future is not None and not future.done():
            raise RuntimeError("cannot resume an ordering key with a publish in flight")
        self.paused.discard(ordering_key)
        self.resumed.append(ordering_key)

    def finish(self, key: str, *, error: Exception | None = None) -> None:
        future = self.in_flight.pop(key)
        if error is None:
            self.sent += 1
            future.set_result(str(self.sent))
        else:
            self.paused.add(key)
            future.set_exception(error)


class TimingOutClient(OrderingClient):
    """The first publish never answers within the adapter's timeout."""

    def publish(self, topic: str, data: bytes, ordering_key: str = "", **attrs: str) -> Future[str]:
        future = super().publish(topic, data, ordering_key, **attrs)
        if self.sent == 0 and len(self.resumed) == 0 and not hasattr(self, "first"):
            self.first = future
            return future
        self.finish(ordering_key)
        return future


def test_timeout_then_late_failure_does_not_leave_the_key_paused() -> None:
    """A publish that times out and later fails: the next publish resumes the key, then succeeds.

    Before the fix the timeout called resume_publish on an in-flight key (RuntimeError instead of
    PublishFailed), and the late failure left the key paused for the life of the process.
    """
    client = TimingOutClient()
    adapter = PubSubPublisher(client, "p", timeout_s=0.01)
    with pytest.raises(PublishFailed, match="timed out"):
        adapter.publish_raw("video-done", b"{}", {}, "task-1")
    client.finish("task-1", error=gexc.ServiceUnavailable("late failure"))
    assert "task-1" in client.paused
    with pytest.raises(PublishFailed, match="paused"):
        adapter.publish_raw("video-done", b"{}", {}, "task-1")
    assert client.resumed == ["task-1"]
    assert adapter.publish_raw("video-done", b"{}", {}, "task-1") == "1"


def test_api_error_resumes_the_key_at_once() -> None:
    """A failed publish (not a timeout) resumes its key, so the retry goes out."""

    class FailingOnce(OrderingClient):
        def publish(self, topic: str, data: bytes, ordering_key: str = "", **a: str) -> Future[str]:
            future = super().publish(topic, data, ordering_key, **a)
            self.finish(
                ordering_key, error=gexc.ServiceUnavailable("x") if not self.resumed else None
            )
            return future

    client = FailingOnce()
    adapter = PubSubPublisher(client, "p", timeout_s=1)
    with pytest.raises(PublishFailed, match="failed"):
        adapter.publish_raw("video-done", b"{}", {}, "task-2")
    assert client.resumed == ["task-2"]
    assert adapter.publish_raw("video-done", b"{}", {}, "task-2") == "1"

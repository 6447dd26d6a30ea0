"""The pull worker: streaming pull into an :class:`EventProcessor`, until SIGTERM or SIGINT.

Flow control bounds the messages held at once (``WORKER_MAX_MESSAGES``); the client library
extends each lease while its handler runs (``WORKER_LEASE_EXTENSION`` seconds at a time), up to
``WORKER_MAX_LEASE_DURATION``. On SIGTERM or
SIGINT the worker stops pulling, nacks what it received but has not started, waits up to
``WORKER_SHUTDOWN_GRACE`` for running handlers to finish (and ack or nack), then exits; a handler
still running after that is abandoned and its lease lapses, which redelivers it like a nack.
Health: ``GET /healthz`` on ``WORKER_HEALTH_HOST:WORKER_HEALTH_PORT`` (200 while pulling, 503
once the stream has stopped or shutdown began).

Run one with ``python -m consumers.runtime.pull_worker module:handler subscription``.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from consumers.runtime.handler import EventProcessor
from consumers.runtime.health import HealthServer
from schemas.event_codec import from_pubsub
from schemas.event_envelope import EventDecodeError
from schemas.settings import WorkerSettings

log = logging.getLogger(__name__)


class PullWorker:
    """Streams one subscription into one processor; ``run`` blocks until a stop signal."""

    def __init__(
        self,
        subscriber: Any,
        subscription_path: str,
        processor: EventProcessor,
        settings: WorkerSettings | None = None,
        *,
        alive: Callable[[], bool] | None = None,
    ) -> None:
        self.subscriber = subscriber
        self.subscription_path = subscription_path
        self.processor = processor
        self.settings = settings or WorkerSettings()
        self.stopping = threading.Event()
        self._future: Any = None
        self._alive = alive or (lambda: True)

    def start(self) -> None:
        """Open the streaming pull (returns at once; callbacks run on the client's threads)."""
        from google.cloud.pubsub_v1.types import FlowControl  # noqa: PLC0415 - worker-only dep

        # Without a cap on each extension the client leases for 60 s at a time, so a crashed
        # worker's messages would wait that long, whatever the subscription's ack deadline.
        flow = FlowControl(
            max_messages=self.settings.max_messages,
            max_lease_duration=self.settings.max_lease_duration_s,
            max_duration_per_lease_extension=self.settings.lease_extension_s,
        )
        self._future = self.subscriber.subscribe(
            self.subscription_path,
            self._on_message,
            flow_control=flow,
            await_callbacks_on_shutdown=True,
        )
        log.info("pulling", extra={"subscription": self.subscription_path})

    def healthy(self) -> bool:
        """True while the stream is open, the process's loops run and no shutdown was asked for."""
        if self._future is None or self._future.done() or self.stopping.is_set():
            return False
        return self._alive()

    def stop(self) -> bool:
        """Stop pulling, let running handlers finish within the grace period; True if they did."""
        self.stopping.set()
        if self._future is None:
            return True
        self._future.cancel()
        try:
            self._future.result(timeout=self.settings.shutdown_grace_s)
        except TimeoutError:
            log.warning("handlers still running after the grace period; their leases will lapse")
            return False
        except Exception:
            log.exception("streaming pull ended with an error")
            return False
        return True

    def run(self) -> int:
        """Start, serve /healthz, block until SIGTERM/SIGINT or a dead stream, stop; exit code."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        health = HealthServer(self.settings.health_host, self.settings.health_port, self.healthy)
        health.start()
        self.start()
        while not self.stopping.wait(0.5):
            if self._future.done():
                log.error("streaming pull stopped on its own", extra={"error": self._error()})
                break
        clean = self.stop()
        health.stop()
        log.info("worker stopped", extra={"clean": clean})
        return 0 if clean and self.stopping.is_set() else 1

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: shutting down", signal.Signals(signum).name)
        self.stopping.set()

    def _on_message(self, message: Any) -> None:
        if self.stopping.is_set():
            message.nack()  # arrived during shutdown: another worker takes it now
            return
        context = {"message_id": message.message_id, "delivery_attempt": message.delivery_attempt}
        try:
            delivery = from_pubsub(
                message.data,
                dict(message.attributes),
                message_id=message.message_id,
                ordering_key=message.ordering_key,
                delivery_attempt=message.delivery_attempt,
                publish_time=message.publish_time,
                subscription=self.subscription_path,
            )
        except EventDecodeError as error:
            # It can never decode: acking keeps it out of the retry loop (it is logged whole).
            self.processor.reject(error, **context, attributes=dict(message.attributes))
            message.ack()
            return
        verdict = self.processor.process(delivery)
        if verdict.ack:
            message.ack()
        else:
            message.nack()

    def _error(self) -> str | None:
        exception = self._future.exception(timeout=0) if self._future is not None else None
        return None if exception is None else repr(exception)

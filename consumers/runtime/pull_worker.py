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
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from consumers.runtime.handler import EventProcessor
from consumers.runtime.health import HealthServer
from lifecycle.rejections import Rejection
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
        options: dict[str, Any] = {}
        if _is_pubsub_client(self.subscriber):
            from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

            from google.cloud.pubsub_v1.subscriber.scheduler import ThreadScheduler  # noqa: PLC0415

            # As many callback threads as messages in hand (the library's default is 10): a
            # callback never waits for a thread while its lease is extended.
            options["scheduler"] = ThreadScheduler(
                ThreadPoolExecutor(max_workers=self.settings.max_messages)
            )
        self._future = self.subscriber.subscribe(
            self.subscription_path,
            self._on_message,
            flow_control=flow,
            await_callbacks_on_shutdown=True,
            **options,
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
            if self._pull_ended():
                break
        clean = self.stop()
        health.stop()
        log.info("worker stopped", extra={"clean": clean})
        return 0 if clean and self.stopping.is_set() else 1

    def _pull_ended(self) -> bool:
        """Whether pulling stopped by itself (logged when it did)."""
        if not self._future.done():
            return False
        log.error("streaming pull stopped on its own", extra={"error": self._error()})
        return True

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
            # It can never decode: acking keeps it out of the retry loop; it is logged and
            # recorded in rejected_messages (or nacked if the record cannot be written).
            rejection = Rejection(
                receiver=self.processor.handler.consumer,
                transport="pull",
                reason=str(error),
                body=bytes(message.data),
                headers=dict(message.attributes),
                message_id=message.message_id,
            )
            verdict = self.processor.reject(error, rejection)
        except Exception:  # a decoder bug: redeliver, and let the dead-letter topic keep it
            log.exception("decoding failed unexpectedly", extra=context)
            message.nack()
            return
        else:
            verdict = self.processor.process(delivery)
        if verdict.ack:
            message.ack()
        else:
            message.nack()

    def _error(self) -> str | None:
        exception = self._future.exception(timeout=0) if self._future is not None else None
        return None if exception is None else repr(exception)


def _is_pubsub_client(subscriber: Any) -> bool:
    return type(subscriber).__module__.startswith("google.")


class UnaryMessage:
    """A message from a unary pull, with the ``ack``/``nack`` of a streaming-pull message."""

    def __init__(self, subscriber: Any, path: str, received: Any, done: Callable[[str], None]):
        message = received.message
        self._subscriber, self._path, self._done = subscriber, path, done
        self.ack_id = received.ack_id
        self.data = message.data
        self.attributes = dict(message.attributes)
        self.message_id = message.message_id
        self.ordering_key = message.ordering_key
        self.publish_time = message.publish_time
        self.delivery_attempt = received.delivery_attempt or None

    def ack(self) -> None:
        """Acknowledge, and stop extending the lease."""
        self._done(self.ack_id)
        self._subscriber.acknowledge(request={"subscription": self._path, "ack_ids": [self.ack_id]})

    def nack(self) -> None:
        """Hand the message back at once (ack deadline 0)."""
        self._done(self.ack_id)
        self._subscriber.modify_ack_deadline(
            request={
                "subscription": self._path,
                "ack_ids": [self.ack_id],
                "ack_deadline_seconds": 0,
            }
        )


class UnaryPullWorker(PullWorker):
    """A pull worker that asks only for as many messages as it has free handler slots.

    The Pub/Sub emulator ignores a streaming pull's flow control and keeps sending to streams
    whose worker died or stopped (measured: after one kill -9, a restarted worker received 3 of
    20 new messages; the rest came back only as redeliveries, attempt by attempt, until they were
    dead-lettered). With unary pulls the worker never holds a message it is not working on: a
    kill costs each message in hand one attempt, nothing else. ``WORKER_PULL_MODE`` picks it
    (``auto``: on the emulator).
    """

    def __init__(self, *args: Any, ack_deadline_s: int = 60, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ack_deadline_s = ack_deadline_s
        self._slots = threading.Semaphore(self.settings.max_messages)
        self._in_hand: dict[str, float] = {}
        self._hand_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._pool: Any = None
        self._pulling = threading.Event()

    def start(self) -> None:
        """Start the pull loop and the lease loop (returns at once)."""
        from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

        self._pool = ThreadPoolExecutor(
            max_workers=self.settings.max_messages, thread_name_prefix="handler"
        )
        self._pulling.set()
        for target, name in ((self._pull_loop, "pull"), (self._lease_loop, "lease")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("pulling (unary)", extra={"subscription": self.subscription_path})

    def healthy(self) -> bool:
        """True while the pull loop runs and no shutdown was asked for."""
        if self.stopping.is_set() or not self._threads or not self._threads[0].is_alive():
            return False
        return self._alive()

    def stop(self) -> bool:
        """Stop pulling; let handlers in hand finish within the grace period; True if they did."""
        self.stopping.set()
        self._pulling.clear()
        if self._pool is None:
            return True
        deadline = time.monotonic() + self.settings.shutdown_grace_s
        while self._in_hand and time.monotonic() < deadline:
            time.sleep(0.1)
        self._pool.shutdown(wait=False, cancel_futures=True)
        clean = not self._in_hand
        if not clean:
            log.warning("handlers still running after the grace period; their leases will lapse")
        return clean

    def _pull_ended(self) -> bool:
        if self._threads[0].is_alive():
            return False
        log.error("pull loop stopped on its own")
        return True

    def _pull_loop(self) -> None:
        while self._pulling.is_set():
            if not self._slots.acquire(timeout=0.5):
                continue
            free = 1
            while free < self.settings.max_messages and self._slots.acquire(blocking=False):
                free += 1
            received = self._pull(free)
            for _ in range(free - len(received)):
                self._slots.release()
            for item in received:
                message = UnaryMessage(self.subscriber, self.subscription_path, item, self._done)
                with self._hand_lock:
                    self._in_hand[message.ack_id] = time.monotonic()
                self._pool.submit(self._handle, message)
            if not received:
                time.sleep(0.5)

    def _pull(self, count: int) -> list[Any]:
        try:
            response = self.subscriber.pull(
                request={"subscription": self.subscription_path, "max_messages": count},
                timeout=30,
            )
        except Exception as error:  # the emulator restarting, a network blip: pull again
            log.warning("pull failed: %s", error)
            time.sleep(1.0)
            return []
        return list(response.received_messages)

    def _handle(self, message: UnaryMessage) -> None:
        try:
            self._on_message(message)
        except Exception:
            log.exception("handling a message failed; it will be redelivered")
            self._done(message.ack_id)

    def _done(self, ack_id: str) -> None:
        with self._hand_lock:
            if self._in_hand.pop(ack_id, None) is None:
                return
        self._slots.release()

    def _lease_loop(self) -> None:
        interval = max(1.0, self.ack_deadline_s / 3)
        while not self.stopping.wait(interval):
            now = time.monotonic()
            with self._hand_lock:
                renew = [
                    ack_id
                    for ack_id, since in self._in_hand.items()
                    if now - since < self.settings.max_lease_duration_s
                ]
            if not renew:
                continue
            try:
                self.subscriber.modify_ack_deadline(
                    request={
                        "subscription": self.subscription_path,
                        "ack_ids": renew,
                        "ack_deadline_seconds": self.ack_deadline_s,
                    }
                )
            except Exception as error:
                log.warning("lease extension failed: %s", error)

"""The in-process message bus: the embedded default, with Pub/Sub's observable semantics.

Topics fan out to their subscriptions (from :mod:`schemas.topology`). A pulled message is leased
for the subscription's ack deadline under a fresh ack id; ``nack`` (a zero deadline) or an expired
lease makes it available again after the retry policy's backoff, with the delivery attempt
counted. After ``max_delivery_attempts`` failed deliveries it is forwarded to the dead-letter
topic with the ``CloudPubSubDeadLetterSource*`` attributes the real service adds, data,
attributes and ordering key intact. An ack with a stale ack id (lease expired) does nothing, as on
Pub/Sub. Delivery is first in, first out, so one ordering key's messages arrive in publish order.
``subscribe`` mirrors ``SubscriberClient.subscribe``: flow control, lease extension up to
``max_lease_duration``, and on ``cancel`` the messages not yet handed to the callback are nacked.
Thread-safe: one lock guards all state.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from producers.publishing import RawPublisher
from schemas.errors import InvalidInput
from schemas.event_pubsub import format_attribute
from schemas.topology import Subscription, Topology

Clock = Callable[[], float]
log = logging.getLogger(__name__)


@dataclass
class _Stored:
    """One message in one subscription's backlog."""

    message_id: str
    data: bytes
    attributes: dict[str, str]
    ordering_key: str
    publish_time: datetime
    attempts: int = 0
    ack_id: str | None = None
    lease_until: float = 0.0
    available_at: float = 0.0


@dataclass
class _Backlog:
    spec: Subscription
    messages: list[_Stored] = field(default_factory=list)


@dataclass
class BusMessage:
    """A delivered message, shaped like ``pubsub_v1.subscriber.message.Message``."""

    data: bytes
    attributes: dict[str, str]
    message_id: str
    ordering_key: str
    publish_time: datetime
    delivery_attempt: int
    ack_id: str
    subscription: str
    _bus: InProcessBus = field(repr=False)
    _on_settle: Callable[[BusMessage], None] | None = field(default=None, repr=False)

    def ack(self) -> None:
        """Acknowledge: the subscription will not deliver this message again."""
        self._bus.acknowledge(self.subscription, [self.ack_id])
        self._settled()

    def nack(self) -> None:
        """Give the message back for redelivery (or dead-lettering) now."""
        self._bus.modify_ack_deadline(self.subscription, [self.ack_id], 0)
        self._settled()

    def modify_ack_deadline(self, seconds: int) -> None:
        """Set the lease to expire ``seconds`` from now (0 is a nack)."""
        self._bus.modify_ack_deadline(self.subscription, [self.ack_id], seconds)
        if seconds == 0:
            self._settled()

    def _settled(self) -> None:
        if self._on_settle is not None:
            self._on_settle(self)


class InProcessBus(RawPublisher):
    """Topics, subscriptions, leases and dead letters in memory; a ``Publisher`` too."""

    def __init__(
        self, topology: Topology, *, project_id: str = "choreo-local", clock: Clock = time.monotonic
    ) -> None:
        self.topology = topology
        self.project_id = project_id
        self._clock = clock
        self._lock = threading.Condition()
        self._ids = itertools.count(1)
        self._backlogs = {s.name: _Backlog(s) for s in topology.subscriptions}
        self._closed = False

    # --- publishing (the Publisher port) ---

    def publish_raw(
        self, topic: str, data: bytes, attributes: dict[str, str], ordering_key: str = ""
    ) -> str:
        """Put a copy of the message in the backlog of every subscription on ``topic``."""
        name = _short(topic, "topics")
        self.topology.topic(name)  # InvalidInput naming an unknown topic
        if not isinstance(data, bytes):
            raise InvalidInput(f"message data must be bytes, got {type(data).__name__}")
        with self._lock:
            if self._closed:
                raise InvalidInput("the in-process bus is closed")
            message_id = str(next(self._ids))
            stamp = datetime.now(UTC)
            for backlog in self._backlogs.values():
                if backlog.spec.topic == name:
                    backlog.messages.append(
                        _Stored(message_id, data, dict(attributes), ordering_key, stamp)
                    )
            self._lock.notify_all()
        return message_id

    def close(self) -> None:
        """Refuse further publishes; backlogs stay readable."""
        with self._lock:
            self._closed = True

    # --- consuming (the pull API of SubscriberClient) ---

    def pull(self, subscription: str, max_messages: int = 10, timeout_s: float = 0.0) -> list[Any]:
        """Lease up to ``max_messages`` available messages, waiting up to ``timeout_s`` for one."""
        backlog = self._backlog(subscription)
        deadline = self._clock() + timeout_s
        with self._lock:
            while True:
                now = self._clock()
                self._expire_leases(backlog, now)
                available = self._available(backlog, now)[:max_messages]
                leased = [self._lease(backlog, m, now) for m in available]
                if leased or now >= deadline:
                    return leased
                self._lock.wait(timeout=min(0.05, max(0.0, deadline - now)))

    def acknowledge(self, subscription: str, ack_ids: Iterable[str]) -> None:
        """Remove the messages leased under ``ack_ids``; stale ids are ignored."""
        backlog = self._backlog(subscription)
        wanted = set(ack_ids)
        with self._lock:
            backlog.messages = [m for m in backlog.messages if m.ack_id not in wanted]

    def modify_ack_deadline(self, subscription: str, ack_ids: Iterable[str], seconds: int) -> None:
        """Move the lease deadline of ``ack_ids`` to ``seconds`` from now; 0 releases them."""
        if not 0 <= seconds <= 600:
            raise InvalidInput(f"ack deadline must be 0..600 seconds, got {seconds}")
        backlog = self._backlog(subscription)
        wanted = set(ack_ids)
        with self._lock:
            now = self._clock()
            for message in list(backlog.messages):
                if message.ack_id in wanted:
                    message.lease_until = now + seconds
            self._expire_leases(backlog, now)
            self._lock.notify_all()

    def subscribe(
        self,
        subscription: str,
        callback: Callable[[BusMessage], Any],
        flow_control: Any = None,
        await_callbacks_on_shutdown: bool = False,
    ) -> StreamingPull:
        """Stream messages to ``callback`` on worker threads, as ``SubscriberClient.subscribe``."""
        spec = self._backlog(subscription).spec
        return StreamingPull(self, spec, callback, flow_control, await_callbacks_on_shutdown)

    def subscription_spec(self, subscription: str) -> Subscription:
        """The topology entry of ``subscription`` (a name or ``projects/P/subscriptions/S``)."""
        return self._backlog(subscription).spec

    def backlog_size(self, subscription: str) -> int:
        """Messages not yet acknowledged (leased or not) on ``subscription``."""
        backlog = self._backlog(subscription)
        with self._lock:
            return len(backlog.messages)

    # --- internals, called with the lock held ---

    def _backlog(self, subscription: str) -> _Backlog:
        name = _short(subscription, "subscriptions")
        backlog = self._backlogs.get(name)
        if backlog is None:
            raise InvalidInput(f"unknown subscription {name!r}")
        return backlog

    def _available(self, backlog: _Backlog, now: float) -> list[_Stored]:
        return [m for m in backlog.messages if m.ack_id is None and m.available_at <= now]

    def _lease(self, backlog: _Backlog, message: _Stored, now: float) -> BusMessage:
        message.attempts += 1
        message.ack_id = f"{backlog.spec.name}:{message.message_id}:{message.attempts}"
        message.lease_until = now + backlog.spec.ack_deadline_s
        # Pub/Sub reports 0 attempts on a subscription without a dead-letter policy.
        attempt = message.attempts if backlog.spec.dead_letter is not None else 0
        return BusMessage(
            data=message.data,
            attributes=dict(message.attributes),
            message_id=message.message_id,
            ordering_key=message.ordering_key,
            publish_time=message.publish_time,
            delivery_attempt=attempt,
            ack_id=message.ack_id,
            subscription=backlog.spec.name,
            _bus=self,
        )

    def _expire_leases(self, backlog: _Backlog, now: float) -> None:
        policy = backlog.spec.dead_letter
        for message in list(backlog.messages):
            if message.ack_id is None or message.lease_until > now:
                continue
            message.ack_id = None
            if policy is not None and message.attempts >= policy.max_delivery_attempts:
                backlog.messages.remove(message)
                self._dead_letter(backlog.spec, message, policy.topic)
            else:
                message.available_at = now + _backoff(backlog.spec, message.attempts)

    def _dead_letter(self, spec: Subscription, message: _Stored, topic: str) -> None:
        attributes = {
            **message.attributes,
            "CloudPubSubDeadLetterSourceSubscription": spec.name,
            "CloudPubSubDeadLetterSourceSubscriptionProject": self.project_id,
            "CloudPubSubDeadLetterSourceDeliveryCount": str(message.attempts),
            "CloudPubSubDeadLetterSourceTopicPublishTime": format_attribute(message.publish_time),
        }
        message_id = str(next(self._ids))
        stamp = datetime.now(UTC)
        for backlog in self._backlogs.values():
            if backlog.spec.topic == topic:
                backlog.messages.append(
                    _Stored(message_id, message.data, attributes, message.ordering_key, stamp)
                )


class StreamingPull:
    """The handle ``subscribe`` returns, like ``StreamingPullFuture``: ``cancel`` and ``result``."""

    def __init__(
        self,
        bus: InProcessBus,
        spec: Subscription,
        callback: Callable[[BusMessage], Any],
        flow_control: Any,
        await_callbacks: bool,
    ) -> None:
        # flow_control is a pubsub_v1.types.FlowControl or anything with the same two fields.
        self._max_messages = int(getattr(flow_control, "max_messages", 10))
        self._max_lease_s = float(getattr(flow_control, "max_lease_duration", 3600))
        extension = int(getattr(flow_control, "max_duration_per_lease_extension", 0))
        self._extension_s = extension or spec.ack_deadline_s
        self._bus, self._spec, self._callback = bus, spec, callback
        self._await_callbacks = await_callbacks
        self._lock = threading.Lock()
        self._in_flight: dict[str, tuple[BusMessage, float, Future[None]]] = {}
        self._stopping = threading.Event()
        self._done = threading.Event()
        self._executor = ThreadPoolExecutor(
            max_workers=min(self._max_messages, 10), thread_name_prefix=f"bus-{spec.name}"
        )
        threading.Thread(target=self._pump, name=f"bus-pull-{spec.name}", daemon=True).start()

    def cancel(self) -> bool:
        """Stop pulling and shut down in the background; ``result`` waits for the end."""
        self._stopping.set()
        return True

    def result(self, timeout: float | None = None) -> bool:
        """Block until the stream has shut down (``TimeoutError`` after ``timeout``)."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"streaming pull on {self._spec.name} still shutting down")
        return True

    def done(self) -> bool:
        """True once the stream has shut down."""
        return self._done.is_set()

    def _pump(self) -> None:
        try:
            while not self._stopping.is_set():
                self._extend_leases()
                with self._lock:
                    room = self._max_messages - len(self._in_flight)
                if room <= 0:
                    self._stopping.wait(0.02)
                    continue
                for message in self._bus.pull(self._spec.name, room, timeout_s=0.05):
                    message._on_settle = self._settle
                    with self._lock:
                        future = self._executor.submit(self._run, message)
                        self._in_flight[message.ack_id] = (message, time.monotonic(), future)
        finally:
            self._shut_down()

    def _run(self, message: BusMessage) -> None:
        try:
            self._callback(message)
        except Exception:
            # The client library only logs this; nacking here just redelivers sooner.
            log.exception("callback failed on message %s; nacking it", message.message_id)
            message.nack()

    def _settle(self, message: BusMessage) -> None:
        with self._lock:
            self._in_flight.pop(message.ack_id, None)

    def _extend_leases(self) -> None:
        # Extend while the handler runs, until max_lease_duration; then the lease may lapse.
        now = time.monotonic()
        with self._lock:
            held = [m.ack_id for m, since, _ in self._in_flight.values()]
            held = [a for a in held if now - self._in_flight[a][1] < self._max_lease_s]
        if held:
            self._bus.modify_ack_deadline(self._spec.name, held, self._extension_s)

    def _shut_down(self) -> None:
        with self._lock:
            waiting = [(m, f) for m, _, f in self._in_flight.values()]
        for message, future in waiting:
            if future.cancel():
                message.nack()  # never handed to the callback: give it back at once
        self._executor.shutdown(wait=self._await_callbacks)
        self._done.set()


def _backoff(spec: Subscription, attempts: int) -> float:
    """Exponential backoff from the retry policy: minimum doubled per attempt, capped."""
    minimum, maximum = spec.retry.minimum_backoff_s, spec.retry.maximum_backoff_s
    return float(min(maximum, minimum * 2 ** max(0, attempts - 1)))


def _short(name: str, kind: str) -> str:
    """``projects/P/<kind>/N`` or ``N`` -> ``N``."""
    prefix, _, short = name.rpartition(f"/{kind}/")
    return short if prefix else name

"""Composition roots for consumer processes: a pull worker or an HTTP server around a handler.

``python -m consumers.runtime worker module:handler SUBSCRIPTION`` or
``python -m consumers.runtime http module:handler``. ``module:handler`` names an
:class:`EventHandler`, or a function of no arguments returning one. Both processes open the
database pool, run the outbox relay on a background thread (``OUTBOX_RELAY_ENABLED``) and the
task reaper on another (every ``REAPER_INTERVAL``; 0 turns it off), and log JSON lines; all
settings come from the environment (``.env.example``).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from psycopg_pool import ConnectionPool

from consumers.runtime.handler import EventHandler, EventProcessor
from consumers.runtime.http_app import create_app
from consumers.runtime.pull_worker import PullWorker, UnaryPullWorker
from delivery.http import serve
from delivery.oidc import push_verifier
from lifecycle.database import open_pool
from lifecycle.task_reaper import TaskReaper
from producers.outbox_relay import OutboxRelay
from producers.pubsub_publisher import build_pubsub_publisher
from schemas.errors import ConfigurationError
from schemas.logs import configure_logging
from schemas.settings import (
    CoreSettings,
    DatabaseSettings,
    HttpSettings,
    OutboxSettings,
    PublisherSettings,
    PubSubSettings,
    PushAuthSettings,
    ReaperSettings,
    WorkerSettings,
)
from schemas.topology import build_topology, subscription_path

log = logging.getLogger(__name__)


def load_handler(spec: str) -> EventHandler:
    """The handler named by ``package.module:attribute`` (or returned by calling it)."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigurationError(f"handler {spec!r} must look like package.module:attribute")
    try:
        target = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise ConfigurationError(f"cannot load handler {spec!r}: {error}") from error
    handler = target if isinstance(target, EventHandler) else target()
    if not isinstance(handler, EventHandler):
        raise ConfigurationError(f"{spec!r} is not an EventHandler (got {type(handler)!r})")
    return handler


@dataclass
class ProcessHealth:
    """The process's background loops, as /healthz sees them: all must be alive."""

    checks: list[Callable[[], bool]] = field(default_factory=list)

    def ok(self) -> bool:
        """True while every loop is running."""
        return all(check() for check in self.checks)


@contextmanager
def consumer_process(
    services: Sequence[Callable[[threading.Event], None]] = (),
) -> Iterator[tuple[ConnectionPool, ProcessHealth]]:
    """Logging, the pool, the relay, reaper and ``services`` threads for one process's life."""
    core = CoreSettings()
    configure_logging(core.log_level, json_lines=core.log_json)
    pool = open_pool(DatabaseSettings(), name="choreo-consumer")
    outbox, reaper = OutboxSettings(), ReaperSettings()
    health = ProcessHealth()
    stop = threading.Event()
    threads: list[threading.Thread] = []
    publisher = None
    if outbox.relay_enabled:
        publisher = build_pubsub_publisher(PubSubSettings(), PublisherSettings())
        relay = OutboxRelay.from_settings(pool, publisher, outbox)
        health.checks.append(relay.alive)
        relay_thread = threading.Thread(target=relay.run_forever, args=(stop,), name="outbox")
        relay_thread.start()
        threads.append(relay_thread)
    reaper_thread = start_reaper(pool, reaper, stop)
    if reaper_thread is not None:
        threads.append(reaper_thread)
    for index, service in enumerate(services):
        thread = threading.Thread(target=service, args=(stop,), name=f"service-{index}")
        thread.start()
        threads.append(thread)
    # A background loop that died (a bug) makes the process unhealthy instead of silently idle.
    health.checks.extend(thread.is_alive for thread in list(threads))
    try:
        yield pool, health
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
        if publisher is not None:
            publisher.close()
        pool.close()


def start_reaper(
    pool: ConnectionPool, settings: ReaperSettings, stop: threading.Event
) -> threading.Thread | None:
    """Start the task reaper's loop until ``stop``; None when ``REAPER_INTERVAL`` is 0."""
    if settings.interval_s == 0:
        return None
    reaper = TaskReaper.from_settings(pool, settings)
    thread = threading.Thread(target=reaper.run_forever, args=(stop,), name="reaper", daemon=True)
    thread.start()
    return thread


def capped_to_pool(
    settings: WorkerSettings, database: DatabaseSettings, *, reserved: int
) -> WorkerSettings:
    """``settings`` with at most as many messages in hand as the pool has connections for.

    Each handler holds a connection for its transaction; the relay and the recoverer take
    ``reserved`` more. A message waiting for a connection past the pool's timeout would be
    nacked for nothing and burn a delivery attempt.
    """
    room = max(1, database.pool_max_size - reserved)
    if settings.max_messages <= room:
        return settings
    log.warning(
        "WORKER_MAX_MESSAGES=%d exceeds what DB_POOL_MAX_SIZE=%d serves; using %d",
        settings.max_messages,
        database.pool_max_size,
        room,
    )
    return settings.model_copy(update={"max_messages": room})


def run_worker(handler_spec: str, subscription: str) -> int:
    """Pull ``subscription`` into the handler until SIGTERM/SIGINT; the exit code."""
    from google.cloud import pubsub_v1  # noqa: PLC0415 - only workers need the subscriber

    handler = load_handler(handler_spec)
    with consumer_process(handler.services) as (pool, health):
        subscriber = pubsub_v1.SubscriberClient()
        try:
            path = subscription_path(PubSubSettings().project_id, subscription)
            settings = WorkerSettings()
            ack_deadline = build_topology().subscription(subscription).ack_deadline_s
            if settings.lease_extension_s == 0:
                settings = settings.model_copy(update={"lease_extension_s": ack_deadline})
            settings = capped_to_pool(settings, DatabaseSettings(), reserved=2)
            processor = EventProcessor(pool, handler)
            worker: PullWorker
            if settings.pull_mode == "unary" or (
                settings.pull_mode == "auto" and PubSubSettings().emulator_host
            ):
                worker = UnaryPullWorker(
                    subscriber, path, processor, settings, alive=health.ok,
                    ack_deadline_s=ack_deadline,
                )  # fmt: skip
            else:
                worker = PullWorker(subscriber, path, processor, settings, alive=health.ok)
            return worker.run()
        finally:
            subscriber.close()


def run_http(handler_spec: str) -> int:
    """Serve the push / Eventarc endpoint for the handler until SIGTERM; the exit code."""
    handler = load_handler(handler_spec)
    verifier = push_verifier(PushAuthSettings())  # refuses a half-configured start, up front
    http = HttpSettings()
    with consumer_process(handler.services) as (pool, health):
        processor = EventProcessor(pool, handler)
        app = create_app(processor, verifier, max_body_bytes=http.max_body_bytes, alive=health.ok)
        serve(app, http)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``worker HANDLER SUBSCRIPTION`` or ``http HANDLER`` and run it."""
    parser = argparse.ArgumentParser(prog="python -m consumers.runtime")
    commands = parser.add_subparsers(dest="command", required=True)
    worker = commands.add_parser("worker", help="streaming pull from a subscription")
    worker.add_argument("handler", help="package.module:attribute naming an EventHandler")
    worker.add_argument("subscription", help="subscription name (project from PUBSUB_PROJECT_ID)")
    http = commands.add_parser("http", help="push / Eventarc endpoint on HTTP_HOST:PORT")
    http.add_argument("handler", help="package.module:attribute naming an EventHandler")
    args = parser.parse_args(argv)
    if args.command == "worker":
        return run_worker(args.handler, args.subscription)
    return run_http(args.handler)

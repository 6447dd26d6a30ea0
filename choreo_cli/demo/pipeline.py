"""The whole pipeline in one process: the three consumers as pull workers on one bus.

The handlers are the ones ``choreo worker`` runs (same use cases, same ``EventProcessor``,
same ``PullWorker``); only the bus differs: the in-process bus by default, or the Pub/Sub
emulator / a project when configured. An outbox relay thread publishes what the consumers and
the video job (``JOB_PUBLISH=outbox``) write to the outbox; the dispatcher's local runner starts
the job as a subprocess. This module is the demo's composition root.
"""

from __future__ import annotations

import logging
import threading
from contextlib import ExitStack
from types import TracebackType
from typing import Any

from blobstore.configured import build_storage
from choreography.planner.gemini import gemini_parser_from_settings
from consumers.blueprint_consumer.app import as_event_handler as blueprint_handler
from consumers.blueprint_consumer.app import build_blueprint_consumer
from consumers.dispatcher.app import as_event_handler as dispatcher_handler
from consumers.dispatcher.app import local_runner
from consumers.dispatcher.handler import Dispatcher
from consumers.dispatcher.launcher import StorageBlueprintStash
from consumers.runtime.handler import EventHandler, EventProcessor
from consumers.runtime.pull_worker import PullWorker
from consumers.services import SERVICES
from consumers.status_recorder.app import status_recorder
from lifecycle.database import open_pool
from producers.outbox_relay import OutboxRelay
from producers.publishing import Publisher
from producers.requests import SubmittedRequest, submit_request
from schemas.settings import (
    DatabaseSettings,
    DispatcherSettings,
    GeminiSettings,
    PubSubSettings,
    SongSettings,
    StorageSettings,
    WorkerSettings,
)
from schemas.topology import build_topology, subscription_path

log = logging.getLogger(__name__)

RELAY_POLL_S = 0.2
WORKER_SETTINGS = WorkerSettings(
    max_messages=2, shutdown_grace_s=10, health_port=0, lease_extension_s=30
)


class EmbeddedPipeline:
    """Consumers, relay and job runner for the lifetime of a ``with`` block."""

    def __init__(self, bus_kind: str) -> None:
        self.bus_kind = bus_kind
        self._stack = ExitStack()
        self._stop = threading.Event()
        self._workers: list[PullWorker] = []
        self.publisher: Publisher | None = None
        self.pool: Any = None

    def __enter__(self) -> EmbeddedPipeline:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stack.close()

    def submit(self, document: dict[str, Any]) -> SubmittedRequest:
        """Store the request and its event, and publish it at once."""
        return submit_request(self.pool, document, publisher=self.publisher)

    def _start(self) -> None:
        database = DatabaseSettings()
        pool_settings = database.model_copy(update={"pool_min_size": 1, "pool_max_size": 8})
        self.pool = open_pool(pool_settings, name="choreo-demo")
        self._stack.callback(self.pool.close)
        side_settings = database.model_copy(update={"pool_min_size": 1, "pool_max_size": 3})
        side_pool = open_pool(side_settings, name="choreo-demo-side")
        self._stack.callback(side_pool.close)
        subscriber, project_id, publisher = self._bus()
        self.publisher = publisher
        handlers = self._handlers(side_pool, project_id)
        self._start_relay(publisher)
        for name, handler in handlers.items():
            path = subscription_path(project_id, SERVICES[name].subscription)
            worker = PullWorker(
                subscriber, path, EventProcessor(self.pool, handler), WORKER_SETTINGS
            )
            worker.start()
            self._stack.callback(worker.stop)
            self._workers.append(worker)

    def _bus(self) -> tuple[Any, str, Publisher]:
        """The subscriber to pull from, the project id and the publisher."""
        topology = build_topology()
        if self.bus_kind == "inprocess":
            from producers.inprocess_bus import InProcessBus  # noqa: PLC0415

            bus = InProcessBus(topology)
            self._stack.callback(bus.close)
            return bus, bus.project_id, bus
        from google.cloud import pubsub_v1  # noqa: PLC0415 - only the emulator mode needs it

        from producers.pubsub_publisher import build_pubsub_publisher  # noqa: PLC0415
        from producers.topology_apply import (  # noqa: PLC0415
            apply_topology,
            pubsub_admin_clients,
        )

        settings = PubSubSettings()
        admin_publisher, admin_subscriber = pubsub_admin_clients(settings.emulator_host)
        try:
            apply_topology(
                topology,
                settings.project_id,
                publisher=admin_publisher,
                subscriber=admin_subscriber,
            )
        finally:
            admin_subscriber.close()
        publisher = build_pubsub_publisher(settings)
        self._stack.callback(publisher.close)
        subscriber = pubsub_v1.SubscriberClient()
        self._stack.callback(subscriber.close)
        return subscriber, settings.project_id, publisher

    def _handlers(self, side_pool: Any, project_id: str) -> dict[str, EventHandler]:
        storage_settings = StorageSettings()
        storage = build_storage(storage_settings, project_id)
        consumer = build_blueprint_consumer(
            side_pool,
            storage,
            gemini=gemini_parser_from_settings(GeminiSettings()),
            limits=SongSettings().limits(),
        )
        dispatcher_settings = DispatcherSettings()
        runner = local_runner(dispatcher_settings, side_pool)
        runner_stop = threading.Event()
        runner_thread = threading.Thread(
            target=runner.run_forever, args=(runner_stop,), name="job-runner", daemon=True
        )
        runner_thread.start()

        def stop_runner() -> None:
            # Before the pools close (callbacks run in reverse): a job's exit is still recorded.
            # A job still running at exit (Ctrl-C) is stopped: the demo owns its process tree.
            runner_stop.set()
            runner_thread.join(10)
            runner.close(stop_running=True)

        self._stack.callback(stop_runner)
        stash = StorageBlueprintStash(storage, bucket=storage_settings.blueprints_bucket)
        dispatcher = Dispatcher(stash, max_env_bytes=dispatcher_settings.blueprint_env_max_bytes)
        return {
            "blueprint": blueprint_handler(consumer),
            "dispatcher": dispatcher_handler(dispatcher),
            "status": status_recorder(),
        }

    def _start_relay(self, publisher: Publisher) -> None:
        relay = OutboxRelay(self.pool, publisher, batch_size=100, poll_interval_s=RELAY_POLL_S)
        thread = threading.Thread(
            target=relay.run_forever, args=(self._stop,), name="outbox-relay", daemon=True
        )
        thread.start()

        def stop_relay() -> None:
            self._stop.set()
            thread.join(10)

        self._stack.callback(stop_relay)

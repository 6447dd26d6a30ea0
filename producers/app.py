"""Composition root of the producer service: ``python -m producers`` (or ``choreo request serve``).

Serves ``POST /requests`` and the songs-bucket upload trigger on ``HTTP_HOST:PORT``
(:mod:`producers.request_http`), with its own outbox relay thread while ``OUTBOX_RELAY_ENABLED``.
All settings come from the environment (``.env.example``). A bad configuration ends as one line
on stderr and exit 1, before anything is served.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from typing import Any

from psycopg_pool import ConnectionPool

from blobstore.gcs import gcs_client
from delivery.http import serve as serve_http
from delivery.oidc import push_verifier, refusal
from lifecycle.database import open_pool
from producers.outbox_relay import OutboxRelay
from producers.publishing import Publisher
from producers.pubsub_publisher import build_pubsub_publisher
from producers.request_http import Authorize, create_producer_app
from producers.song_registry import GcsObjectReader
from schemas.errors import ChoreoError
from schemas.logs import configure_logging
from schemas.settings import (
    CoreSettings,
    DatabaseSettings,
    HttpSettings,
    OutboxSettings,
    ProducerSettings,
    PubSubSettings,
    PushAuthSettings,
    SongSettings,
    StorageSettings,
)

log = logging.getLogger(__name__)
EXIT_ERROR = 1


def serve() -> None:
    """Serve until SIGTERM; :class:`ChoreoError` for a configuration that cannot start."""
    core, http, storage = CoreSettings(), HttpSettings(), StorageSettings()
    outbox = OutboxSettings()
    configure_logging(core.log_level, json_lines=core.log_json)
    authorize = upload_authorizer(PushAuthSettings())  # a half-configured start is refused here
    immediately = ProducerSettings().publish_immediately
    pubsub = PubSubSettings()
    with ExitStack() as stack:
        pool = open_pool(DatabaseSettings(), name="choreo-producer")
        stack.callback(pool.close)
        publisher = None
        if immediately or outbox.relay_enabled:
            publisher = build_pubsub_publisher(pubsub)
            stack.callback(publisher.close)
        stack.enter_context(outbox_relay(pool, publisher, outbox))
        app = create_producer_app(
            pool,
            publisher=publisher if immediately else None,
            reader=GcsObjectReader(gcs_client(storage.emulator_host, pubsub.project_id)),
            songs_bucket=storage.songs_bucket,
            song_sources=SongSettings().limits().sources,
            authorize=authorize,
        )
        serve_http(app, http)


def upload_authorizer(settings: PushAuthSettings) -> Authorize | None:
    """The OIDC check guarding the upload trigger, or None with ``PUSH_AUTH_ENABLED=false``."""
    verifier = push_verifier(settings)
    return None if verifier is None else partial(refusal, verifier)


@contextmanager
def outbox_relay(
    pool: ConnectionPool[Any], publisher: Publisher | None, outbox: OutboxSettings
) -> Iterator[None]:
    """The producer's own outbox relay (``OUTBOX_RELAY_ENABLED``) for the life of the service.

    Without it, requests stored while Pub/Sub was down (or every request, with
    ``PRODUCER_PUBLISH_IMMEDIATELY=false``) would wait for a relay that may not publish them.
    """
    if publisher is None or not outbox.relay_enabled:
        yield
        return
    relay = OutboxRelay.from_settings(pool, publisher, outbox)
    stop = threading.Event()
    thread = threading.Thread(target=relay.run_forever, args=(stop,), name="outbox", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)


def main() -> int:
    """``python -m producers``: serve; a configuration error is one line and exit 1."""
    try:
        serve()
    except ChoreoError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR
    return 0

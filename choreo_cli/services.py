"""`choreo worker NAME`, `serve NAME`, `runner` and `relay`: the long-running services.

One table, :data:`consumers.services.SERVICES`, names each consumer's handler (a composition root
the runtime calls once at start-up) and the subscription its pull worker reads; the images run
the same through ``python -m consumers.<package>`` and ``python -m producers``. ``worker``
streams that subscription; ``serve`` answers Pub/Sub push and Eventarc deliveries on
``HTTP_HOST:PORT`` with ``GET /healthz``; ``serve producer`` is the request API; ``runner``
runs recorded local video jobs; ``relay`` publishes the outbox (and runs the task recoverer every
``REAPER_INTERVAL``) until SIGTERM. All settings come from the environment (``.env.example``).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Annotated, NoReturn

import typer

from consumers.services import SERVICES
from consumers.services import run as run_service
from schemas.errors import ChoreoError

EXIT_ERROR = 1


SERVABLE = (*SERVICES, "producer")

ConsumerName = Annotated[str, typer.Argument(help=f"One of: {', '.join(SERVICES)}.")]
ServableName = Annotated[str, typer.Argument(help=f"One of: {', '.join(SERVABLE)}.")]


def worker(name: ConsumerName) -> None:
    """Pull the consumer's subscription (project from PUBSUB_PROJECT_ID) until SIGTERM."""
    _service(name)
    _exit_with(lambda: run_service(name, "worker"))


def serve(name: ServableName) -> None:
    """Serve push / Eventarc deliveries (or, for producer, POST /requests) on PORT."""
    if name == "producer":
        from choreo_cli.request import serve as serve_producer  # noqa: PLC0415

        serve_producer()
        return
    _service(name)
    _exit_with(lambda: run_service(name, "serve"))


def relay(
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit.")] = False,
) -> None:
    """Publish outbox rows (OUTBOX_POLL_INTERVAL apart) and reap stale tasks until SIGTERM."""
    from consumers.runtime.bootstrap import start_reaper  # noqa: PLC0415
    from lifecycle.database import open_pool  # noqa: PLC0415
    from producers.outbox_relay import OutboxRelay  # noqa: PLC0415
    from producers.pubsub_publisher import build_pubsub_publisher  # noqa: PLC0415
    from schemas.logs import configure_logging  # noqa: PLC0415
    from schemas.settings import (  # noqa: PLC0415
        CoreSettings,
        DatabaseSettings,
        OutboxSettings,
        PublisherSettings,
        PubSubSettings,
        ReaperSettings,
    )

    core, outbox, reaper = CoreSettings(), OutboxSettings(), ReaperSettings()
    configure_logging(core.log_level, json_lines=core.log_json)
    try:
        pool = open_pool(DatabaseSettings(), name="choreo-relay")
        publisher = build_pubsub_publisher(PubSubSettings(), PublisherSettings())
    except ChoreoError as error:
        _fail(str(error))
    relay_ = OutboxRelay.from_settings(pool, publisher, outbox)
    try:
        if once:
            done = relay_.run_once()
            typer.echo(
                f"published {done.published}, failed {done.failed}, deferred {done.deferred}"
            )
            return
        stop = threading.Event()

        def on_signal(_signum: int, _frame: FrameType | None) -> None:
            stop.set()

        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, on_signal)
        reaper_thread = start_reaper(pool, reaper, stop)
        relay_.run_forever(stop)
        if reaper_thread is not None:
            reaper_thread.join(10)
    finally:
        publisher.close()
        pool.close()


def runner() -> None:
    """Run recorded local video jobs (the job_executions table) until SIGTERM.

    Survives its own death: jobs run in their own sessions with their own log files
    (LOCAL_JOB_LOG_DIR), and the next runner adopts the ones still running.
    """
    from consumers.dispatcher.app import local_runner  # noqa: PLC0415
    from lifecycle.database import open_pool  # noqa: PLC0415
    from schemas.logs import configure_logging  # noqa: PLC0415
    from schemas.settings import CoreSettings, DatabaseSettings, DispatcherSettings  # noqa: PLC0415

    core = CoreSettings()
    configure_logging(core.log_level, json_lines=core.log_json)
    try:
        pool = open_pool(DatabaseSettings(), name="choreo-runner")
    except ChoreoError as error:
        _fail(str(error))
    job_runner = local_runner(DispatcherSettings(), pool)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    try:
        job_runner.run_forever(stop)
    finally:
        job_runner.close()
        pool.close()


def _service(name: str) -> None:
    if name not in SERVICES:
        _fail(f"unknown service {name!r}: choose one of {', '.join(SERVICES)}")


def _exit_with(run: Callable[[], int]) -> None:
    """Run a runtime entrypoint; its exit code, or a one-line error for a bad configuration."""
    try:
        code = run()
    except ChoreoError as error:
        _fail(str(error))
    raise typer.Exit(int(code or 0))


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_ERROR)

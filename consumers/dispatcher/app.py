"""Composition root of the dispatcher: the handler, and the loop that starts what it records.

``python -m consumers.runtime worker consumers.dispatcher.app:dispatcher dispatcher`` (or
``http consumers.dispatcher.app:dispatcher``) calls :func:`dispatcher` once at start-up. The
handler only records each task's execution (``job_executions``); a loop beside it starts them:
``DISPATCHER_LAUNCHER=cloud-run`` runs :class:`CloudRunLaunches`, ``local`` (the default) runs a
:class:`LocalJobRunner` unless ``LOCAL_RUNNER_EMBEDDED=false`` (then ``choreo runner`` does).
Both use a small side pool of their own, never a handler's connection.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from psycopg_pool import ConnectionPool

from blobstore.configured import build_storage
from consumers.dispatcher.cloud_run import (
    CloudRunLauncher,
    CloudRunLaunches,
    executions_client,
    job_resource_name,
    jobs_client,
)
from consumers.dispatcher.handler import CONSUMER, Dispatcher
from consumers.dispatcher.launcher import StorageBlueprintStash
from consumers.dispatcher.local_runner import LocalJobRunner
from consumers.runtime.handler import EventHandler
from lifecycle.database import open_pool
from lifecycle.ports import Launcher
from lifecycle.unit_of_work import on_connection
from schemas.events import SOURCE_DISPATCHER
from schemas.settings import DatabaseSettings, DispatcherSettings, PubSubSettings, StorageSettings

SIDE_POOL_SIZE = 2


def cloud_run_launcher(settings: DispatcherSettings, project_id: str) -> CloudRunLauncher:
    """The Cloud Run Jobs launcher for the configured job."""
    name = job_resource_name(
        settings.cloud_run_job,
        project=settings.cloud_run_project or project_id,
        region=settings.cloud_run_region,
    )
    return CloudRunLauncher(
        jobs_client(settings.cloud_run_endpoint),
        name,
        task_timeout_s=settings.cloud_run_task_timeout_s,
        call_timeout_s=settings.cloud_run_call_timeout_s,
    )


def cloud_run_launches(
    settings: DispatcherSettings, project_id: str, pool: ConnectionPool
) -> CloudRunLaunches:
    """The loop that launches recorded Cloud Run executions, looking each up first."""
    return CloudRunLaunches(
        pool,
        cloud_run_launcher(settings, project_id),
        executions_client(settings.cloud_run_endpoint),
        max_attempts=settings.job_max_attempts,
    )


def local_runner(settings: DispatcherSettings, pool: ConnectionPool) -> LocalJobRunner:
    """The durable local runner, with the settings of ``settings``."""
    return LocalJobRunner(
        pool,
        base_env=dict(os.environ),
        log_dir=settings.local_job_log_dir,
        concurrency=settings.local_job_concurrency,
        timeout_s=settings.local_job_timeout_s,
        lease_s=settings.local_job_lease_s,
        max_attempts=settings.job_max_attempts,
    )


def run_local_runner(runner: LocalJobRunner) -> Callable[[threading.Event], None]:
    """A service loop: run ``runner`` until stopped, then release its leases."""

    def run(stop: threading.Event) -> None:
        try:
            runner.run_forever(stop)
        finally:
            runner.close()

    return run


def as_event_handler(
    dispatcher: Dispatcher, services: tuple[Callable[[threading.Event], None], ...] = ()
) -> EventHandler:
    """The runtime's view: dedupe name, failure stage, CloudEvent source, background loops."""
    return EventHandler(
        consumer=CONSUMER,
        stage="dispatch",
        handle=on_connection(dispatcher.handle),
        source=SOURCE_DISPATCHER,
        services=services,
    )


def dispatcher() -> EventHandler:
    """Read the environment and build the dispatcher and the loop that starts its jobs, once."""
    settings = DispatcherSettings()
    storage_settings = StorageSettings()
    project_id = PubSubSettings().project_id
    database = DatabaseSettings()
    side = database.model_copy(update={"pool_min_size": 1, "pool_max_size": SIDE_POOL_SIZE})
    services: tuple[Callable[[threading.Event], None], ...] = ()
    if settings.launcher == "cloud-run":
        launches = cloud_run_launches(settings, project_id, open_pool(side, name="launcher"))
        services = (launches.run_forever,)
    elif settings.local_runner_embedded:
        runner = local_runner(settings, open_pool(side, name="dispatcher-job-runner"))
        services = (run_local_runner(runner),)
    stash = StorageBlueprintStash(
        build_storage(storage_settings, project_id), bucket=storage_settings.blueprints_bucket
    )
    launcher: Launcher = "cloud-run" if settings.launcher == "cloud-run" else "local"
    dispatch = Dispatcher(stash, max_env_bytes=settings.blueprint_env_max_bytes, launcher=launcher)
    return as_event_handler(dispatch, services)

"""Composition root of the dispatcher: pick the launcher, build it once per process.

``python -m consumers.runtime worker consumers.dispatcher.app:dispatcher dispatcher`` (or
``http consumers.dispatcher.app:dispatcher``) calls :func:`dispatcher` once at start-up.
``DISPATCHER_LAUNCHER=cloud-run`` starts Cloud Run Job executions; ``local`` (the default) runs
``python -m job`` subprocesses and opens a small side pool so a job's exit can be recorded from
the supervising thread without borrowing a handler's connection.
"""

from __future__ import annotations

import os

from psycopg_pool import ConnectionPool

from consumers.dispatcher.cloud_run import CloudRunLauncher, job_resource_name, jobs_client
from consumers.dispatcher.handler import CONSUMER, Dispatcher
from consumers.dispatcher.job_exits import record_job_exit
from consumers.dispatcher.launcher import JobLauncher, StorageBlueprintStash
from consumers.dispatcher.local_runner import JobExit, LocalJobRunner
from consumers.runtime.handler import EventHandler
from job.main import build_storage
from producers.database import open_pool
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


def local_runner(settings: DispatcherSettings, pool: ConnectionPool) -> LocalJobRunner:
    """The subprocess launcher; a job that ends unfinished fails its task through ``pool``."""

    def on_exit(ended: JobExit) -> None:
        record_job_exit(pool, ended)

    return LocalJobRunner(
        base_env=dict(os.environ),
        on_exit=on_exit,
        concurrency=settings.local_job_concurrency,
        timeout_s=settings.local_job_timeout_s,
        queue_limit=settings.local_job_queue_limit,
    )


def as_event_handler(dispatcher: Dispatcher) -> EventHandler:
    """The runtime's view: dedupe name, failure stage and CloudEvent source."""
    return EventHandler(
        consumer=CONSUMER, stage="dispatch", handle=dispatcher.handle, source=SOURCE_DISPATCHER
    )


def dispatcher() -> EventHandler:
    """Read the environment and build the dispatcher with its launcher, once."""
    settings = DispatcherSettings()
    storage_settings = StorageSettings()
    project_id = PubSubSettings().project_id
    launcher: JobLauncher
    if settings.launcher == "cloud-run":
        launcher = cloud_run_launcher(settings, project_id)
    else:
        database = DatabaseSettings()
        side = database.model_copy(update={"pool_min_size": 1, "pool_max_size": SIDE_POOL_SIZE})
        launcher = local_runner(settings, open_pool(side, name="dispatcher-job-exits"))
    stash = StorageBlueprintStash(
        build_storage(storage_settings, project_id), bucket=storage_settings.blueprints_bucket
    )
    return as_event_handler(
        Dispatcher(launcher, stash, max_env_bytes=settings.blueprint_env_max_bytes)
    )

"""Composition root of ``python -m job``: settings, adapters, one run, one exit code.

Nothing here runs at import time. :func:`main` reads the environment, builds the storage
adapter, the task status (PostgreSQL when ``DATABASE_URL`` is set) and the publisher, runs the
job and maps every outcome to an :class:`ExitCode`.
"""

from __future__ import annotations

import logging
import shutil
import signal
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import FrameType

from pydantic import ValidationError

from blobstore.configured import buckets, build_storage, storage_rules
from blobstore.gcs import GcsStorage, gcs_client
from job.assemble import RenderOptions
from job.blueprint_source import (
    GcsReader,
    read_blueprint_text,
    task_id_hint,
    validate_blueprint,
)
from job.errors import JobFailure, JobInterrupted, StatusFailed
from job.ffmpeg_run import stop_all as stop_ffmpeg
from job.notify import JobPublisher, OutboxRowPublisher
from job.run import JobContext, record_failure, run_job
from job.segment_cache import SegmentCache
from job.task_status import NoTaskStatus, PostgresTaskStatus, TaskStatus
from schemas.blueprint import Blueprint
from schemas.job_exit import ExitCode
from schemas.logs import configure_logging
from schemas.settings import (
    CoreSettings,
    DatabaseSettings,
    JobSettings,
    PubSubSettings,
    StorageSettings,
)

log = logging.getLogger("job")


class TaskContext(logging.Filter):
    """Adds ``task_id`` to every log record once the blueprint names it."""

    task_id = ""

    def filter(self, record: logging.LogRecord) -> bool:
        """Stamp the record; never drops it."""
        record.task_id = self.task_id
        return True


def render_options(settings: JobSettings, work_dir: Path) -> RenderOptions:
    """Render options from the job settings."""
    return RenderOptions(
        cache=SegmentCache(settings.cache_dir),
        work_dir=work_dir,
        preset=settings.x264_preset,
        crf=settings.x264_crf,
        prepare_clips=settings.prepare_clips,
        workers=settings.render_workers,
        timeout_s=settings.ffmpeg_timeout_s,
        font_file=settings.font_file,
    )


@contextmanager
def work_directory(configured: str) -> Iterator[Path]:
    """A fresh scratch directory (under ``configured`` when set), removed afterwards."""
    parent = Path(configured) if configured else None
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix="choreo-job-", dir=parent)).resolve()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def on_sigterm(signum: int, frame: FrameType | None) -> None:
    """Cloud Run sends SIGTERM on a task timeout or a cancelled execution, then SIGKILL 10 s later.

    Kill FFmpeg and stop the main thread with :class:`JobInterrupted`, so the run records the
    task ``failed`` (with ``task.failed``) and exits with ``INTERRUPTED`` while it still can.
    """
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once is enough; the rest is cleanup
    stop_ffmpeg()
    raise JobInterrupted(
        f"stopped by signal {signum} (the task timed out or its execution was cancelled)",
        step="signal",
    )


def main() -> int:
    """Run the job once from the environment; the process exit code."""
    signal.signal(signal.SIGTERM, on_sigterm)
    core = CoreSettings()
    configure_logging(core.log_level, json_lines=core.log_json)
    context_filter = TaskContext()
    for handler in logging.getLogger().handlers:
        handler.addFilter(context_filter)
    try:
        settings, storage_settings = JobSettings(), StorageSettings()
        database, pubsub = DatabaseSettings(), PubSubSettings()
    except ValidationError as exc:
        log.error("invalid settings: %s", exc, extra={"step": "settings"})
        return ExitCode.UNEXPECTED
    with ExitStack() as stack:
        try:
            status, publisher = _task_status(stack, settings, database, pubsub)
        except JobFailure as failure:
            log.error(str(failure), extra={"step": failure.step})
            return failure.exit_code
        raw: bytes | str | None = None
        try:
            storage = build_storage(storage_settings, pubsub.project_id)
            raw = read_blueprint_text(
                settings.blueprint_json,
                settings.blueprint_uri,
                _gcs_reader(storage_settings, pubsub),
            )
            root, buckets = storage_rules(storage_settings)
            blueprint = validate_blueprint(raw, storage_root=root, allowed_buckets=buckets)
        except JobFailure as failure:
            task_id = task_id_hint(raw, settings.task_id)
            context_filter.task_id = task_id
            if task_id:
                record_failure(status, publisher, task_id, failure)
            else:
                log.error(str(failure), extra={"step": failure.step})
            return failure.exit_code
        context_filter.task_id = blueprint.task_id
        work_dir = stack.enter_context(work_directory(settings.work_dir))
        context = JobContext(
            storage=storage,
            status=status,
            publisher=publisher,
            render=render_options(settings, work_dir),
            download_workers=settings.download_workers,
            storage_retries=settings.storage_retries,
        )
        return _run(blueprint, context)


def _run(blueprint: Blueprint, context: JobContext) -> int:
    try:
        run_job(blueprint, context)
    except JobFailure as failure:
        return failure.exit_code
    except Exception:
        log.exception("unexpected error", extra={"step": "render"})
        return ExitCode.UNEXPECTED
    return ExitCode.DONE


def _task_status(
    stack: ExitStack, settings: JobSettings, database: DatabaseSettings, pubsub: PubSubSettings
) -> tuple[TaskStatus, JobPublisher | None]:
    if not database.database_url:
        log.info("DATABASE_URL is empty: no task status, no events", extra={"step": "settings"})
        return NoTaskStatus(), None
    from psycopg_pool import ConnectionPool, PoolTimeout  # noqa: PLC0415

    pool = ConnectionPool(
        database.database_url,
        min_size=1,
        max_size=max(2, min(database.pool_max_size, 4)),
        kwargs={"connect_timeout": max(1, round(database.connect_timeout_s))},
        open=True,
        name="choreo-job",
        # A connection broken by a database restart is replaced, not handed out.
        check=ConnectionPool.check_connection,
    )
    stack.callback(pool.close)
    try:
        pool.wait(timeout=database.connect_timeout_s)
    except PoolTimeout as exc:
        raise StatusFailed("PostgreSQL (DATABASE_URL) did not answer", step="claim") from exc
    publisher: JobPublisher | None = None
    if settings.publish == "direct" and (pubsub.emulator_host or pubsub.project_id):
        publisher = OutboxRowPublisher(pubsub.project_id, pubsub.emulator_host)
        stack.callback(publisher.close)
    status = PostgresTaskStatus(
        pool, execution=settings.execution, progress_interval_s=settings.progress_interval_s
    )
    return status, publisher


def _gcs_reader(settings: StorageSettings, pubsub: PubSubSettings) -> GcsReader:
    def read(uri: str, limit: int) -> bytes:
        client = gcs_client(settings.emulator_host, pubsub.project_id)
        return GcsStorage(client, buckets(settings)).read_bytes(uri, "blueprints", limit)

    return read

"""The job's use case: claim the task, fetch, assemble, upload, record and announce the result.

``render_blueprint`` is the part ``choreo render`` shares (no task row, no bus). ``run_job`` wraps
it in the task's life cycle: whatever goes wrong while the process can still write, the task
ends ``failed`` with a ``task.failed`` event, and a task already ``completed`` is left alone.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import backoff

from blobstore.storage import (
    PermanentStorageError,
    Storage,
    TransientStorageError,
    with_retries,
)
from job.assemble import Assembled, RenderOptions, assemble_video
from job.errors import JobFailure, NotOwner, StatusFailed, StorageFailed, SyncOutOfTolerance
from job.fetch import fetch_inputs
from job.notify import JobPublisher
from job.practice_page import practice_page
from job.renditions import RenditionFile, render_renditions, rendition_uri
from job.sync_measure import measure_sync
from job.sync_report import SyncReport
from job.task_status import OutboxMessage, Start, TaskStatus
from job.timeline import ClipFile
from lifecycle.task_failure import failure_event, failure_reason
from schemas.blueprint import Blueprint
from schemas.event_codec import new_event
from schemas.events import SOURCE_JOB, Rendition, SyncSummary, VideoCompleted
from schemas.task_state import State

log = logging.getLogger(__name__)

SYNC_SUFFIX = "-sync.json"
"""The sync report's name beside the video: ``videos/t.mp4`` -> ``videos/t-sync.json``."""


@dataclass(frozen=True)
class JobContext:
    """The collaborators one run needs (built by the composition root)."""

    storage: Storage
    status: TaskStatus
    publisher: JobPublisher | None
    render: RenderOptions
    download_workers: int = 8
    storage_retries: int = 3
    retry_base_delay_s: float = 0.5
    claim_retry_s: float = 30.0


@dataclass(frozen=True)
class JobOutcome:
    """How a run ended: the video (None when it was already done) and whether we uploaded it."""

    video_uri: str
    assembled: Assembled | None
    uploaded: bool
    announced: bool


def _fetch(blueprint: Blueprint, context: JobContext) -> tuple[ClipFile, dict[str, ClipFile]]:
    """Download the song and the clips into the work directory."""
    downloads = context.render.work_dir / "inputs"
    song, clips = fetch_inputs(
        context.storage,
        blueprint,
        downloads,
        workers=context.download_workers,
        retries=context.storage_retries,
        base_delay_s=context.retry_base_delay_s,
    )
    return song, clips


def render_blueprint(
    blueprint: Blueprint, context: JobContext, out: Path, on_progress: Callable[[float], None]
) -> Assembled:
    """Fetch the inputs into the work directory and assemble the video into ``out``."""
    song, clips = _fetch(blueprint, context)
    return assemble_video(blueprint, song, clips, out, context.render, on_progress=on_progress)


@dataclass(frozen=True)
class Rendered:
    """The main video, its sync report and the practice renditions rendered beside it."""

    assembled: Assembled
    renditions: tuple[RenditionFile, ...]
    sync: SyncReport
    sync_file: Path
    """The report as JSON in the work directory."""


def render_with_practice(
    blueprint: Blueprint,
    context: JobContext,
    out: Path,
    on_progress: Callable[[float], None],
    *,
    video_name: str,
    on_step: Callable[[str], None] = lambda _: None,
) -> Rendered:
    """:func:`render_blueprint`, its sync report (``SyncOutOfTolerance`` with the figures when
    it misses the blueprint's tolerances), then the renditions ``video_output.practice`` asks
    for; the page refers to the video and the renditions by names beside ``video_name``.
    ``on_progress`` follows the main render (0-100); ``on_step`` is told each later step."""
    song, clips = _fetch(blueprint, context)
    assembled = assemble_video(blueprint, song, clips, out, context.render, on_progress=on_progress)
    on_step("the sync report")
    sync, sync_file = check_sync(blueprint, assembled, context)
    practice = blueprint.video_output.practice
    if practice is None or not practice.wanted:
        return Rendered(assembled, (), sync, sync_file)
    made = render_renditions(
        blueprint,
        practice,
        main=out,
        song=song,
        clips=clips,
        options=context.render,
        on_step=on_step,
    )
    if practice.page:
        on_step("the practice page")
        started = time.monotonic()
        links = [(_link_label(item), rendition_uri(video_name, item.suffix)) for item in made
                 if item.kind != "loop"]  # fmt: skip
        page = context.render.work_dir / "renditions" / "page.html"
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(practice_page(blueprint, video_name, links), encoding="utf-8")
        made.append(RenditionFile("page", page, ".html", seconds=time.monotonic() - started))
    return Rendered(assembled, tuple(made), sync, sync_file)


def check_sync(
    blueprint: Blueprint, assembled: Assembled, context: JobContext
) -> tuple[SyncReport, Path]:
    """Measure the rendered file's sync report and write it as JSON into the work directory;
    raise ``SyncOutOfTolerance`` naming the figures when it misses the tolerances."""
    work_dir = context.render.work_dir
    report = measure_sync(
        blueprint, assembled.path, assembled.song, work_dir, timeout_s=context.render.timeout_s
    )
    path = work_dir / "sync" / "report.json"
    path.write_text(json.dumps(report.as_json(), indent=2) + "\n", encoding="utf-8")
    log.info(
        "sync measured",
        extra={"step": "sync", **report.summary(), "duration_ms": round(report.measure_s * 1000)},
    )
    if not report.passed:
        raise SyncOutOfTolerance(
            "sync report out of tolerance: " + "; ".join(report.failures),
            step="sync",
            video=assembled.path,
            report=path,
        )
    return report, path


def _link_label(item: RenditionFile) -> str:
    return "mirrored video" if item.kind == "mirror" else f"{item.speed:g}x video"


def run_job(blueprint: Blueprint, context: JobContext) -> JobOutcome:
    """Run the whole job for ``blueprint``'s task; raise ``JobFailure`` after recording it."""
    task_id = blueprint.task_id
    video_uri = blueprint.video_output.uri
    try:
        if claim(context, task_id) == Start.ALREADY_COMPLETED:
            log.info("task already completed: nothing to do", extra={"step": "claim"})
            return JobOutcome(video_uri, None, uploaded=False, announced=False)
        started = time.monotonic()
        out = context.render.work_dir / "video.mp4"
        rendered = render_with_practice(
            blueprint,
            context,
            out,
            lambda percent: context.status.progress(task_id, percent),
            video_name=video_uri.rsplit("/", 1)[-1],
            on_step=lambda what: log.info(f"rendering {what}", extra={"step": "renditions"}),
        )
        assembled = rendered.assembled
        renditions = upload_renditions(context, rendered.renditions, video_uri)
        sync_uri = rendition_uri(video_uri, SYNC_SUFFIX)
        upload_video(context, rendered.sync_file, sync_uri, what=f"sync report {sync_uri}")
        uploaded = upload_video(context, out, video_uri)
        event = new_event(
            VideoCompleted(
                task_id=task_id,
                video_uri=video_uri,
                duration_s=assembled.duration_s,
                width=blueprint.video_output.width,
                height=blueprint.video_output.height,
                fps=blueprint.video_output.fps,
                size_bytes=out.stat().st_size,
                completed_at=datetime.now(UTC),
                renditions=renditions,
                sync=SyncSummary(report_uri=sync_uri, **rendered.sync.summary()),
            ),
            source=SOURCE_JOB,
        )
        message = context.status.finish(
            task_id, State.COMPLETED, event, video_uri=video_uri, progress=100
        )
        log.info(
            "video completed",
            extra={"step": "complete", "video_uri": video_uri, "uploaded": uploaded,
                   "announced": message is not None, "event_id": event.id,
                   "duration_ms": round((time.monotonic() - started) * 1000)},
        )  # fmt: skip
    except StatusFailed as exc:
        if exc.step != "claim":
            record_failure(context.status, context.publisher, task_id, exc)
        else:
            # Never claimed: the task is not ours to fail. The runner starts the job again.
            log.error("could not claim the task: %s", exc, extra={"step": "claim"})
        raise
    except Exception as exc:
        record_failure(context.status, context.publisher, task_id, exc)
        raise
    announce(context.status, context.publisher, message)
    return JobOutcome(video_uri, assembled, uploaded, announced=message is not None)


def claim(context: JobContext, task_id: str) -> Start:
    """Claim the task, riding out a database restart for up to ``claim_retry_s`` seconds."""
    retrying = backoff.on_exception(
        backoff.expo,
        StatusFailed,
        max_time=context.claim_retry_s,
        max_value=4,
        giveup=lambda exc: getattr(exc, "step", "") != "claim",
        logger=None,
    )
    return retrying(context.status.start)(task_id)


def upload_video(
    context: JobContext, video: Path, uri: str, what: str = "video_output.uri"
) -> bool:
    """Upload without overwriting; False when a finished video was already there."""
    try:
        created = with_retries(
            lambda: context.storage.upload_new(video, uri, "videos"),
            what=uri,
            retries=context.storage_retries,
            base_delay_s=context.retry_base_delay_s,
        )
    except (PermanentStorageError, TransientStorageError) as exc:
        raise StorageFailed(f"{what}: upload failed: {exc}", step="upload") from exc
    if not created:
        # Same task, same deterministic name: an earlier run of this task got this far.
        log.warning(
            "%s already uploaded by an earlier run; keeping it", uri, extra={"step": "upload"}
        )
    return created


def upload_renditions(
    context: JobContext, renditions: tuple[RenditionFile, ...], video_uri: str
) -> list[Rendition]:
    """Upload each rendition beside the video under its deterministic name, keeping one an
    earlier run of the task already uploaded (a retry neither duplicates nor loses any)."""
    listed = []
    for item in renditions:
        uri = rendition_uri(video_uri, item.suffix)
        upload_video(context, item.path, uri, what=f"{item.kind} rendition {uri}")
        listed.append(Rendition(kind=item.kind, uri=uri, speed=item.speed, label=item.label))
    return listed


def record_failure(
    status: TaskStatus, publisher: JobPublisher | None, task_id: str, error: BaseException
) -> bool:
    """CAS the task to ``failed`` with a ``task.failed`` event; False if it could not.

    A run that does not own the task (:class:`NotOwner`) records nothing: the task is another
    execution's to finish.
    """
    if isinstance(error, NotOwner):
        log.warning(str(error), extra={"step": error.step})
        return False
    failure = error if isinstance(error, JobFailure) else None
    reason = str(error) if failure else f"unexpected error: {type(error).__name__}: {error}"
    step = (failure.step if failure else "") or "render"
    code = failure.error_code if failure else "unexpected"
    reason = failure_reason(reason, type(error).__name__)
    event = failure_event(
        task_id, reason=reason, stage="render", error_code=code, source=SOURCE_JOB
    )
    try:
        message = status.finish(task_id, State.FAILED, event, error=reason, error_stage=step)
    except JobFailure as exc:
        log.error("could not record the failure: %s", exc, extra={"step": "fail"})
        return False
    log.error(reason, extra={"step": step, "error_code": code, "recorded": message is not None})
    try:
        announce(status, publisher, message)
    except JobFailure as exc:
        log.error("task.failed stays in the outbox for the relay: %s", exc, extra={"step": "fail"})
    return message is not None


def announce(
    status: TaskStatus, publisher: JobPublisher | None, message: OutboxMessage | None
) -> None:
    """Publish the outbox row now (direct mode); on failure leave it to the relay and raise."""
    if message is None or publisher is None:
        return
    try:
        message_id = status.publish_once(message, publisher.publish)
    except Exception as exc:
        if isinstance(exc, StatusFailed):
            raise
        raise StatusFailed(f"publishing to {message.topic} failed: {exc}", step="publish") from exc
    if message_id is None:
        log.info("event left to the outbox relay, which holds it", extra={"step": "publish"})
        return
    log.info("event published", extra={"step": "publish", "message_id": message_id})

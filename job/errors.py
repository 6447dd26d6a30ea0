"""The job's failures and the exit codes (:mod:`schemas.job_exit`) they map onto, in one place.

Every failure the job raises on purpose is a :class:`JobFailure` carrying its exit code, the
``error_code`` slug published in ``task.failed`` and the step it happened in; the composition
root turns anything else into :attr:`ExitCode.UNEXPECTED`.
"""

from __future__ import annotations

from pathlib import Path

from schemas.errors import ChoreoError
from schemas.job_exit import ExitCode


class JobFailure(ChoreoError):
    """A failure with a known exit code; ``step`` says where (intake, fetch, assemble, ...)."""

    exit_code = ExitCode.UNEXPECTED
    error_code = "unexpected"

    def __init__(self, message: str, *, step: str = "") -> None:
        super().__init__(message)
        self.step = step


class BlueprintRejected(JobFailure):
    """The blueprint is missing, unreadable or breaks its contract."""

    exit_code = ExitCode.INVALID_BLUEPRINT
    error_code = "invalid-blueprint"


class AssetUnavailable(JobFailure):
    """A song or clip does not exist, may not be read, or is not a playable media file."""

    exit_code = ExitCode.ASSET_UNAVAILABLE
    error_code = "asset-unavailable"


class StorageFailed(JobFailure):
    """Storage kept failing after the retries, or refused the upload."""

    exit_code = ExitCode.STORAGE_FAILED
    error_code = "storage-failed"


class FfmpegFailed(JobFailure):
    """FFmpeg (or ffprobe) exited non-zero, timed out, or produced the wrong output."""

    exit_code = ExitCode.FFMPEG_FAILED
    error_code = "ffmpeg-failed"


class StatusFailed(JobFailure):
    """The task row could not be read or written, or the event could not be published."""

    exit_code = ExitCode.STATUS_FAILED
    error_code = "status-failed"


class JobInterrupted(JobFailure):
    """SIGTERM arrived (the task timed out or its execution was cancelled): stop, record, exit."""

    exit_code = ExitCode.INTERRUPTED
    error_code = "interrupted"


class NotOwner(JobFailure):
    """Another execution owns the task: this run leaves it alone and records nothing."""

    exit_code = ExitCode.NOT_OWNER
    error_code = "not-owner"


class SyncOutOfTolerance(FfmpegFailed):
    """The rendered file's sync report misses the blueprint's tolerances (a wrong output)."""

    error_code = "sync-out-of-tolerance"

    def __init__(
        self, message: str, *, step: str = "", video: Path | None = None, report: Path | None = None
    ) -> None:
        super().__init__(message, step=step)
        self.video = video
        """The rendered file that missed (in the work directory), for a local run to keep."""
        self.report = report
        """The sync report's JSON beside it."""

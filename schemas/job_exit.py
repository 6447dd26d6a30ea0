"""The exit codes of ``python -m job``: the contract between the video job and what runs it.

The dispatcher's local runner and Cloud Run execution watcher, and ``choreo render``, read a
finished job's exit code to decide what the task's outcome was (``consumers.dispatcher.job_exits``);
the job (``job.errors``) exits by them. Documented in ``job/README.md``.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes of ``python -m job`` (documented in ``job/README.md``)."""

    DONE = 0
    UNEXPECTED = 1
    INVALID_BLUEPRINT = 2
    ASSET_UNAVAILABLE = 3
    STORAGE_FAILED = 4
    FFMPEG_FAILED = 5
    STATUS_FAILED = 6
    INTERRUPTED = 7
    NOT_OWNER = 8

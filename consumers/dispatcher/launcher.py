"""The ``JobLauncher`` port and the environment contract of one video job execution.

The job reads its blueprint from ``BLUEPRINT_JSON``, or from ``BLUEPRINT_URI`` when the document
is too large for one environment variable (Cloud Run caps a value at 32768 bytes, so the guard,
``BLUEPRINT_ENV_MAX_BYTES``, defaults below it). ``JOB_TASK_ID`` names the task even when the
blueprint turns out too broken to name it itself, so the job can still mark it failed.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from blobstore.storage import LocalStorage, Storage
from schemas.errors import PermanentError, TransientError

BLUEPRINT_KEY = "blueprints/{task_id}.json"


class LaunchRejected(PermanentError):
    """The job runner refused the execution for good (permission, missing job, bad request)."""

    error_code = "launch-rejected"


class LaunchUnavailable(TransientError):
    """The job runner could not start the execution now (unavailable, quota, timeout, busy)."""


@dataclass(frozen=True)
class LaunchRequest:
    """One execution to start: the task and the environment variables it gets on top."""

    task_id: str
    env: Mapping[str, str] = field(default_factory=dict)


class JobLauncher(Protocol):
    """Starts one video job execution and returns its name without waiting for it to finish."""

    def launch(self, request: LaunchRequest) -> str:
        """Start the execution; its name (``projects/.../executions/...`` or ``local-...``)."""
        ...


class BlueprintStash(Protocol):
    """Where a blueprint too large for the environment is put for the job to read."""

    def put(self, task_id: str, document: bytes) -> str:
        """Store the document (once per task); the URI the job reads it from."""
        ...


@dataclass(frozen=True)
class JobEnvironment:
    """The variables for the job and how the blueprint travels (``env`` or ``uri``)."""

    env: dict[str, str]
    via: Literal["env", "uri"]
    size_bytes: int


def job_environment(
    task_id: str, blueprint_json: str, *, max_env_bytes: int, stash: BlueprintStash
) -> JobEnvironment:
    """``BLUEPRINT_JSON`` if it fits ``max_env_bytes`` (UTF-8), else a stored ``BLUEPRINT_URI``."""
    encoded = blueprint_json.encode()
    if len(encoded) <= max_env_bytes:
        env = {"BLUEPRINT_JSON": blueprint_json, "JOB_TASK_ID": task_id}
        return JobEnvironment(env, "env", len(encoded))
    uri = stash.put(task_id, encoded)
    return JobEnvironment({"BLUEPRINT_URI": uri, "JOB_TASK_ID": task_id}, "uri", len(encoded))


class StorageBlueprintStash:
    """Blueprints at ``blueprints/<task_id>.json`` in the configured storage (local or GCS)."""

    def __init__(self, storage: Storage, *, bucket: str = "") -> None:
        self.storage = storage
        self.bucket = bucket

    def put(self, task_id: str, document: bytes) -> str:
        """Upload unless present (a task's blueprint never changes); the URI the job can read."""
        key = BLUEPRINT_KEY.format(task_id=task_id)
        with tempfile.TemporaryDirectory(prefix="choreo-blueprint-") as scratch:
            source = Path(scratch) / "blueprint.json"
            source.write_bytes(document)
            self.storage.upload_new(source, key, "blueprints")
        if isinstance(self.storage, LocalStorage):
            # The job opens a local BLUEPRINT_URI as a path, not under its storage root.
            return f"file://{self.storage.path(key)}"
        return f"gs://{self.bucket}/{key}"
